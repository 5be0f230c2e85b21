"""`{{name}}`: a FastMCP plugin (`fastmcp:plugin@0.2.0`, see wit/plugin.wit).

- `{{name}}:hello` greets someone with the manifest's `config: greeting`
  and writes a log line tagged with the call's correlation id.

Build with `fastmcp plugin build {{name}}` (componentize-py). The bindings
(`wit_world`) are generated at build time.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import config, log
from wit_world.imports.fastmcp_plugin_types import CallContext, ToolDeclaration, ToolError_Internal


class Tools(exports.Tools):
    def declare(self) -> list[ToolDeclaration]:
        """The tools this component implements; the host checks them
        against the manifest when it loads the component."""
        return [ToolDeclaration("hello", None)]

    def invoke(self, ctx: CallContext, tool: str, args_json: str) -> str:
        """One tool call. `args_json` has passed the manifest's input schema."""
        args = json.loads(args_json)
        if tool == "hello":
            greeting = config.get("greeting") or "Hello"
            log.log(log.Level.INFO, "saying hello")
            return json.dumps({"message": f"{greeting}, {args['name']}!"})
        raise Err(ToolError_Internal(f"unknown tool `{tool}`"))
