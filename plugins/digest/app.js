// `digest`: the example JavaScript plugin.
//
// - `digest:headline` formats a headline with the manifest's
//   `config: prefix` and writes a `log` line tagged with the call's
//   correlation id.
// - `digest:latestCampaigns` reads the Ads API's newest campaigns with
//   `fetch` (which the JS runtime sends through `wasi:http`). The plugin holds
//   no credential: the host injects the `ads-api` bearer token into requests
//   to the granted origin.
//
// Build: `fastmcp plugin build digest` (componentize-js against ../../wit).

import { get as configValue } from "fastmcp:plugin/config@0.2.0";
import { log } from "fastmcp:plugin/log@0.2.0";

// A tool error: the host maps each case to an HTTP status (wit/plugin.wit).
const fail = (tag, message) => {
  throw { tag, val: message };
};

function headline(args) {
  const prefix = configValue("prefix") ?? "News";
  log("info", `headline of ${args.title.length} characters`);
  return { headline: `${prefix}: ${args.title.trim()}` };
}

async function latestCampaigns(ctx, args) {
  const apiUrl = configValue("api_url") ?? fail("internal", "the manifest sets no `config: api_url`");
  const limit = args.limit ?? 5;
  let response;
  try {
    response = await fetch(`${apiUrl}/v1/campaigns?limit=${limit}`, {
      headers: { "x-tenant": ctx.tenant },
    });
  } catch (e) {
    fail("upstream", `Ads API unreachable: ${e}`);
  }
  if (response.status === 401 || response.status === 403) {
    fail("upstream", `Ads API refused the brokered credential (${response.status})`);
  }
  if (response.status !== 200) fail("upstream", `Ads API answered ${response.status}`);
  const { campaigns } = await response.json();
  if (!Array.isArray(campaigns)) fail("upstream", "Ads API answered something that is not a campaign list");
  return { campaigns: campaigns.map((c) => ({ name: c.name, budget: c.budget })) };
}

export const tools = {
  declare() {
    return [
      { name: "headline", inputSchema: undefined },
      { name: "latestCampaigns", inputSchema: undefined },
    ];
  },

  async invoke(ctx, tool, argsJson) {
    const args = JSON.parse(argsJson);
    switch (tool) {
      case "headline":
        return JSON.stringify(headline(args));
      case "latestCampaigns":
        return JSON.stringify(await latestCampaigns(ctx, args));
      default:
        fail("internal", `unknown tool \`${tool}\``);
    }
  },
};
