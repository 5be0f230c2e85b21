"""`report`: the example Python plugin.

- `report:greet` greets someone with the manifest's `config: greeting` and
  writes a `log` line tagged with the call's correlation id.
- `report:campaignSummary` reads the Ads API's campaigns over `wasi:http`
  (`GET {api_url}/v1/campaigns`) and sums their budgets. The plugin holds no
  credential: the host injects the `ads-api` bearer token into requests to
  the granted origin.

Build: `fastmcp plugin build report` (componentize-py against ../../wit).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import config, log
from wit_world.imports.fastmcp_plugin_types import (
    CallContext,
    ToolDeclaration,
    ToolError_Internal,
    ToolError_Upstream,
)

import http_get


class Tools(exports.Tools):
    def declare(self) -> list[ToolDeclaration]:
        return [ToolDeclaration("greet", None), ToolDeclaration("campaignSummary", None)]

    def invoke(self, ctx: CallContext, tool: str, args_json: str) -> str:
        args = json.loads(args_json)
        if tool == "greet":
            return json.dumps(greet(args))
        if tool == "campaignSummary":
            return json.dumps(campaign_summary(ctx, args))
        raise Err(ToolError_Internal(f"unknown tool `{tool}`"))


def greet(args: dict) -> dict:
    greeting = config.get("greeting") or "Hello"
    log.log(log.Level.INFO, f"greeting {len(args['name'])} characters of name")
    return {"message": f"{greeting}, {args['name']}!"}


def campaign_summary(ctx: CallContext, args: dict) -> dict:
    api_url = config.get("api_url")
    if api_url is None:
        raise Err(ToolError_Internal("the manifest sets no `config: api_url`"))
    limit = args.get("limit", 100)
    try:
        status, body = http_get.get(f"{api_url}/v1/campaigns?limit={limit}", {"x-tenant": ctx.tenant})
    except http_get.HttpError as e:
        raise Err(ToolError_Upstream(f"Ads API unreachable: {e}"))
    if status in (401, 403):
        raise Err(ToolError_Upstream(f"Ads API refused the brokered credential ({status})"))
    if status != 200:
        raise Err(ToolError_Upstream(f"Ads API answered {status}"))
    try:
        campaigns = json.loads(body)["campaigns"]
    except (ValueError, KeyError, TypeError):
        raise Err(ToolError_Upstream("Ads API answered something that is not a campaign list"))
    if not isinstance(campaigns, list):
        raise Err(ToolError_Upstream("Ads API answered something that is not a campaign list"))
    return {
        "count": len(campaigns),
        "totalBudget": sum(c.get("budget", 0) for c in campaigns),
        "names": [c.get("name") for c in campaigns],
    }
