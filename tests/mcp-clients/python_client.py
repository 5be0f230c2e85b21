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

import httpx2
import mcp_types as types
from mcp import Client
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
