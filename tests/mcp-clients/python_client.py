"""Drive FastMCP's /mcp with the official Python MCP SDK (`mcp` on PyPI).

The end-to-end tests run one scenario per process and assert on the JSON it
prints (the last line of stdout). Environment:

  MCP_URL    the endpoint, e.g. http://127.0.0.1:8000/mcp
  MCP_TOKEN  a bearer token (omit for the unauthenticated scenario)
  MCP_MODE   "auto" (2026-07-28, falling back) or "legacy" (2025-11-25)

Usage: python_client.py SCENARIO [JSON-ARGUMENTS]
"""

import asyncio
import json
import os
import sys
from typing import Any, Literal

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.extension import ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

URL = os.environ["MCP_URL"]
TOKEN = os.environ.get("MCP_TOKEN")
MODE = os.environ.get("MCP_MODE", "auto")


def http_client():
    headers = {"Authorization": f"Bearer {TOKEN}"} if TOKEN else {}
    return httpx2.AsyncClient(headers=headers, timeout=60)


def client(elicit=None, **kwargs):
    return Client(
        streamable_http_client(URL, http_client=http_client()),
        mode=MODE,
        elicitation_callback=elicit,
        **kwargs,
    )


def result_json(result):
    return {
        "is_error": bool(result.is_error),
        "structured": result.structured_content,
        "text": [block.text for block in result.content if getattr(block, "type", None) == "text"],
        "meta": result.meta or {},
    }


async def call(c, tool, args, meta=None):
    try:
        return result_json(await c.call_tool(tool, args, meta=meta))
    except MCPError as e:
        return {"error": {"code": e.error.code, "message": e.error.message, "data": e.error.data}}


def answering(action):
    """An elicitation callback that answers `action` and remembers the questions."""
    asked = []

    async def elicit(ctx, params):
        asked.append({"message": params.message, "schema": params.requested_schema})
        if action == "accept":
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action=action)

    return elicit, asked


# The Tasks extension (SEP-2663) as this SDK lets a client add it: the SDK
# ships no tasks client, but takes extensions that claim a result type and
# resolve it. This one claims `resultType: "task"` and polls `tasks/get`
# until the task ends, printing "ready" once the task exists.
TASKS = "io.modelcontextprotocol/tasks"


class TaskCreated(types.Result):
    result_type: Literal["task"]
    task_id: str
    status: str
    status_message: str | None = None
    poll_interval_ms: int | None = None


class TaskState(types.Result):
    task_id: str
    status: str
    status_message: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class GetTask(types.Request[dict[str, Any], Literal["tasks/get"]]):
    name_param = "taskId"


class CancelTask(types.Request[dict[str, Any], Literal["tasks/cancel"]]):
    name_param = "taskId"


class Tasks(ClientExtension):
    identifier = TASKS

    def __init__(self):
        self.seen = []

    def claims(self):
        return [ResultClaim(result_type="task", model=TaskCreated, resolve=self.poll)]

    async def poll(self, created, ctx):
        self.seen.append({"task_id": created.task_id, "status": created.status, "message": created.status_message})
        print("ready", flush=True)
        while True:
            await asyncio.sleep((created.poll_interval_ms or 1000) / 1000 / 10)
            state = await ctx.session.send_request(
                GetTask(method="tasks/get", params={"taskId": created.task_id}), TaskState
            )
            self.seen.append({"task_id": state.task_id, "status": state.status, "message": state.status_message})
            if state.status == "completed":
                return types.CallToolResult.model_validate(state.result)
            if state.status in ("failed", "cancelled"):
                raise RuntimeError(f"task {state.status}: {state.error}")


async def scenario(name, arg):
    if name == "list":
        async with client() as c:
            listed = await c.list_tools()
            return {
                "version": c.protocol_version,
                "tools": [
                    {
                        "name": t.name,
                        "title": t.title,
                        "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True)
                        if t.annotations
                        else None,
                        "has_output_schema": t.output_schema is not None,
                    }
                    for t in listed.tools
                ],
            }
    if name == "call":
        async with client() as c:
            return {"version": c.protocol_version, **await call(c, arg["tool"], arg.get("args", {}))}
    if name == "confirm":
        # arg["answer"]: accept | decline | cancel | none (the client cannot elicit)
        if arg["answer"] == "none":
            elicit, asked = None, []
        else:
            elicit, asked = answering(arg["answer"])
        async with client(elicit) as c:
            out = await call(c, arg["tool"], arg["args"])
            return {"version": c.protocol_version, "asked": asked, **out}
    if name == "idempotent":
        meta = {"io.fastmcp/idempotency-key": arg["key"]}
        async with client() as c:
            first = await call(c, arg["tool"], arg["args"], meta)
            second = await call(c, arg["tool"], arg["args"], meta)
            return {"first": first, "second": second}
    if name == "concurrent":
        async with client() as c:
            results = await asyncio.gather(
                *(call(c, arg["tool"], {"n": i}) for i in range(arg["count"]))
            )
            return {"results": results}
    if name == "watch":
        # Listen for tool-list changes; print "ready" once listening, then
        # wait for the change the test makes and list again.
        async with client() as c:
            before = [t.name for t in (await c.list_tools()).tools]
            if c.protocol_version >= "2026-07-28":
                async with c.listen(tools_list_changed=True) as sub:
                    print("ready", flush=True)
                    async for event in sub:
                        break
            else:
                raise SystemExit("watch needs 2026-07-28")
            after = [t.name for t in (await c.list_tools(cache_mode="refresh")).tools]
            return {"version": c.protocol_version, "before": before, "after": after, "event": type(event).__name__}
    if name == "approval_task":
        # A call that waits for approvers, followed as a task to its result.
        tasks = Tasks()
        async with client(extensions=[tasks]) as c:
            out = await call(c, "util.echo", {"message": "from python"})
            return {"version": c.protocol_version, "seen": tasks.seen, **out}
    if name == "approval_cancel":
        # The task handle itself, then tasks/cancel and tasks/get.
        async with client(extensions=[Tasks()]) as c:
            created = await c.session.call_tool("util.echo", {"message": "never"}, allow_claimed=True)
            await c.session.send_request(
                CancelTask(method="tasks/cancel", params={"taskId": created.task_id}), types.EmptyResult
            )
            state = await c.session.send_request(
                GetTask(method="tasks/get", params={"taskId": created.task_id}), TaskState
            )
            return {"created": created.model_dump(by_alias=True), "after": state.model_dump(by_alias=True)}
    if name == "unauthenticated":
        try:
            async with client() as c:
                await c.list_tools()
            return {"connected": True}
        except BaseException as e:  # the SDK wraps the 401 in an exception group
            return {"connected": False, "error": repr(e)[:500]}
    raise SystemExit(f"unknown scenario {name}")


def main():
    name = sys.argv[1]
    arg = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    out = asyncio.run(scenario(name, arg))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
