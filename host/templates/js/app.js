// `{{name}}`: a FastMCP plugin (`fastmcp:plugin@0.2.0`, see wit/plugin.wit).
//
// - `{{name}}:hello` greets someone with the manifest's `config: greeting`
//   and writes a log line tagged with the call's correlation id.
//
// Build with `fastmcp plugin build {{name}}` (componentize-js). `fetch` is
// available for outbound HTTP (the host's allowlist and credentials apply).

import { get as configValue } from "fastmcp:plugin/config@0.2.0";
import { log } from "fastmcp:plugin/log@0.2.0";

export const tools = {
  // The tools this component implements; the host checks them against the
  // manifest when it loads the component.
  declare() {
    return [{ name: "hello", inputSchema: undefined }];
  },

  // One tool call. `argsJson` has passed the manifest's input schema. A
  // thrown `{ tag, val }` is a tool error (`internal`, `invalid-input`,
  // `denied`, `upstream`).
  invoke(ctx, tool, argsJson) {
    const args = JSON.parse(argsJson);
    if (tool === "hello") {
      const greeting = configValue("greeting") ?? "Hello";
      log("info", "saying hello");
      return JSON.stringify({ message: `${greeting}, ${args.name}!` });
    }
    throw { tag: "internal", val: `unknown tool \`${tool}\`` };
  },
};
