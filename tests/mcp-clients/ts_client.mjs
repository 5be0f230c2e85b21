// Drive FastMCP's /mcp with the official TypeScript MCP SDK
// (@modelcontextprotocol/sdk, which speaks up to 2025-11-25: initialize,
// sessions, server-to-client elicitation/create).
//
// The end-to-end tests run one scenario per process and assert on the JSON
// it prints (the last line of stdout). Environment: MCP_URL, MCP_TOKEN.
//
// Usage: node ts_client.mjs SCENARIO [JSON-ARGUMENTS]

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  ElicitRequestSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const url = new URL(process.env.MCP_URL);
const token = process.env.MCP_TOKEN;

async function connect({ elicit, elicitation } = {}) {
  const capabilities = elicit ? { elicitation: elicitation ?? { form: {} } } : {};
  const client = new Client({ name: "fastmcp-e2e", version: "1.0.0" }, { capabilities });
  if (elicit) {
    client.setRequestHandler(ElicitRequestSchema, elicit);
  }
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
  await client.connect(transport);
  return { client, transport };
}

function resultJson(result) {
  return {
    is_error: Boolean(result.isError),
    structured: result.structuredContent ?? null,
    text: (result.content ?? []).filter((b) => b.type === "text").map((b) => b.text),
    meta: result._meta ?? {},
  };
}

async function call(client, name, args, meta) {
  try {
    const params = { name, arguments: args };
    if (meta) params._meta = meta;
    return resultJson(await client.callTool(params));
  } catch (e) {
    return { error: { code: e.code ?? null, message: String(e.message ?? e), data: e.data ?? null } };
  }
}

// The user's side of a connect flow: the provider's sign-in form, the
// redirect to the host's callback page, its "Connect". Returns the
// status of the last.
async function consent(authorizationUrl, login) {
  const page = await fetch(authorizationUrl);
  if (page.status !== 200) throw new Error(`consent page answered ${page.status}`);
  const url = new URL(authorizationUrl);
  const form = new URLSearchParams(url.searchParams);
  form.set("username", login);
  form.set("password", "dev");
  form.set("decision", "allow");
  const decided = await fetch(`${url.origin}${url.pathname}`, { method: "POST", body: form, redirect: "manual" });
  const location = decided.headers.get("location");
  if (!location) throw new Error(`the provider did not redirect (${decided.status})`);
  // The host's callback page asks whose account this is; the user connects.
  const asked = await fetch(location, { redirect: "manual" });
  if (asked.status !== 200) return asked.status;
  const back = new URL(location);
  const answer = new URLSearchParams({
    state: back.searchParams.get("state"),
    code: back.searchParams.get("code"),
    decision: "connect",
  });
  return (await fetch(`${back.origin}${back.pathname}`, { method: "POST", body: answer, redirect: "manual" })).status;
}

async function scenario(name, arg) {
  switch (name) {
    case "list": {
      const { client, transport } = await connect();
      const listed = await client.listTools();
      const out = {
        version: transport.protocolVersion,
        tools: listed.tools.map((t) => ({
          name: t.name,
          title: t.title ?? null,
          annotations: t.annotations ?? null,
          has_output_schema: t.outputSchema !== undefined,
        })),
      };
      await transport.terminateSession();
      await client.close();
      return out;
    }
    case "call": {
      const { client, transport } = await connect();
      const out = { version: transport.protocolVersion, ...(await call(client, arg.tool, arg.args ?? {})) };
      await client.close();
      return out;
    }
    case "confirm": {
      // arg.answer: accept | decline | cancel | none (the client cannot elicit)
      const asked = [];
      const elicit =
        arg.answer === "none"
          ? undefined
          : async (request) => {
              asked.push({ message: request.params.message, schema: request.params.requestedSchema });
              return arg.answer === "accept"
                ? { action: "accept", content: { approve: true } }
                : { action: arg.answer };
            };
      const { client, transport } = await connect({ elicit });
      const out = { version: transport.protocolVersion, asked, ...(await call(client, arg.tool, arg.args)) };
      await client.close();
      return out;
    }
    case "connect": {
      // A tool that needs the user's own account: arg.mode "url" declares
      // URL-mode elicitation and, on being asked, accepts and completes the
      // flow as the user's browser would (sign in, allow, follow the
      // redirect to the host's callback); "form" declares form mode only.
      const asked = [];
      const flows = [];
      const elicit = async (request) => {
        asked.push({ mode: request.params.mode, url: request.params.url ?? null, message: request.params.message });
        if (request.params.mode === "url") {
          flows.push(new Promise((r) => setTimeout(r, 200)).then(() => consent(request.params.url, arg.login)));
        }
        return { action: "accept" };
      };
      const elicitation = arg.mode === "url" ? { url: {} } : { form: {} };
      const { client, transport } = await connect({ elicit, elicitation });
      const result = await call(client, arg.tool, arg.args ?? {});
      const callback_status = await Promise.all(flows);
      await client.close();
      return { version: transport.protocolVersion, asked, callback_status, ...result };
    }
    case "idempotent": {
      const { client } = await connect();
      const meta = { "io.fastmcp/idempotency-key": arg.key };
      const first = await call(client, arg.tool, arg.args, meta);
      const second = await call(client, arg.tool, arg.args, meta);
      await client.close();
      return { first, second };
    }
    case "concurrent": {
      const { client } = await connect();
      const results = await Promise.all(
        Array.from({ length: arg.count }, (_, i) => call(client, arg.tool, { n: i })),
      );
      await client.close();
      return { results };
    }
    case "watch": {
      // A 2025-11-25 session hears notifications/tools/list_changed on its
      // GET stream; print "ready" once listening, then list again.
      const { client, transport } = await connect();
      const before = (await client.listTools()).tools.map((t) => t.name);
      const changed = new Promise((resolve) =>
        client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()),
      );
      // The GET stream opens after initialization; give it a moment.
      await new Promise((r) => setTimeout(r, 500));
      console.log("ready");
      await changed;
      const after = (await client.listTools()).tools.map((t) => t.name);
      await client.close();
      return { version: transport.protocolVersion, before, after };
    }
    case "unauthenticated": {
      try {
        const { client } = await connect();
        await client.listTools();
        return { connected: true };
      } catch (e) {
        return { connected: false, error: String(e).slice(0, 500) };
      }
    }
    default:
      throw new Error(`unknown scenario ${name}`);
  }
}

const [name, rawArg] = process.argv.slice(2);
const out = await scenario(name, rawArg ? JSON.parse(rawArg) : {});
console.log(JSON.stringify(out));
process.exit(0);
