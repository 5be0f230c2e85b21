#!/usr/bin/env bash
# The side-by-side load test (`./dev loadtest [--duration S] [--write]`).
#
# Starts, on loopback ports 18000-18005 and a private root:
#   - the host (release, full governance: JWT, schema, policy with the sample
#     rules, rate-limit check, fresh sandbox, durable audit, log), trusting
#     the upstream's CA through `--outbound-ca-file`,
#   - a second host on a copy of the root with outbound pooling off
#     (`--outbound-pool-idle-per-origin 0`): the "before" of the brokered
#     scenarios, in the same run,
#   - the development upstream (for the brokered scenarios), on http (18001)
#     and https (18004, HTTP/2 by ALPN, a CA generated at start),
#   - two more copies exporting traces: one to a local OTLP receiver
#     (`fastmcp-otlp-receiver`, counting only; 18006, receiver on
#     18007/18008), one to a collector that is down (18009 -> 18010): the
#     cost of tracing on, and of a dead collector, in the same run,
#   - the floor: a bare axum JSON echo on the same route shape.
# Then runs wrk against the floor and the host alternately, at 1, 16 and 64
# connections, for each scenario:
#   - echo:     util:echo with a ~100-byte argument;
#   - mcp:      the same call as an MCP 2026-07-28 `tools/call` of util.echo
#               at POST /mcp (the floor echoes a JSON-RPC result);
#   - brokered: ads:listCampaigns, one outbound request to the upstream with a
#               brokered, host-injected token (pooled connections);
#   - brokered-https: the same tool as `adstls`, over https;
#   - brokered-nopool, brokered-https-nopool: the same two on the unpooled host;
#   - echo-traced, echo-collector-down: `echo` on the tracing hosts (their
#     host/echo column is the overhead of tracing, as a ratio).
# Prints req/s, p50, p99, non-2xx, the host/floor ratio, the host's RSS, and
# verifies the audit trail the host wrote. With --write, the table replaces the
# generated section of BENCHMARKS.md, with the MCP/REST ratio at 64
# connections (same run, same load generator).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=10
WRITE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --write) WRITE=1; shift ;;
    *) echo "usage: ./dev loadtest [--duration S] [--write]" >&2; exit 2 ;;
  esac
done
if ! command -v wrk >/dev/null 2>&1; then
  # The load generator, from Debian, as .ci/run installs redis-server.
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "loadtest: installing wrk (apt-get install -y wrk)" >&2
  $sudo apt-get install -y wrk >/dev/null || { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; } \
    || { echo "loadtest: cannot install wrk; install it and run again" >&2; exit 1; }
fi

BIN=target/release
HOST=127.0.0.1:18000
UPSTREAM=127.0.0.1:18001
FLOOR=127.0.0.1:18002
METRICS=127.0.0.1:18003
UPSTREAM_TLS=127.0.0.1:18004
UNPOOLED=127.0.0.1:18005
TRACED=127.0.0.1:18006
OTLP_HTTP=127.0.0.1:18007
OTLP_GRPC=127.0.0.1:18008
COLLECTOR_DOWN=127.0.0.1:18009
DEAD_COLLECTOR=127.0.0.1:18010
ROOT=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$ROOT" "${ROOT2:-}" "${ROOT3:-}" "${ROOT4:-}"; }
trap cleanup EXIT

# A private root: the example plugins, their manifests pointed at the
# upstream, the sample policy plus a `bench` role, and a providers file.
mkdir -p "$ROOT/manifests" "$ROOT/policies" "$ROOT/plugins/util" "$ROOT/plugins/ads" "$ROOT/.runtime"
cp plugins/util/util.wasm "$ROOT/plugins/util/"
cp plugins/ads/ads.wasm "$ROOT/plugins/ads/"
cp manifests/util.yaml "$ROOT/manifests/"
sed "s/127.0.0.1:8001/$UPSTREAM/g" manifests/ads.yaml > "$ROOT/manifests/ads.yaml"
# The same plugin as `adstls`, calling the Ads API over https.
sed -e "s|http://127.0.0.1:8001|https://$UPSTREAM_TLS|g" -e "s/127.0.0.1:8001/$UPSTREAM_TLS/g" \
  -e "s/^plugin: ads$/plugin: adstls/" manifests/ads.yaml > "$ROOT/manifests/adstls.yaml"
sed 's/^roles:$/roles:\n  bench: { tools: ["util:*", "ads:*", "adstls:*"] }/' policies/policies.yml > "$ROOT/policies/policies.yml"
sed -e "s/127.0.0.1:8001/$UPSTREAM/g" -e "s|../.runtime/dev-upstream.secret|.runtime/dev-upstream.secret|" \
  -e "s/plugins: \[ads\([],]\)/plugins: [ads, adstls\1/" -e "s|origins: \[|origins: [\"https://$UPSTREAM_TLS\", |" \
  devtools/providers.yml > "$ROOT/providers.yml"

"$BIN/fastmcp-dev-upstream" --listen "$UPSTREAM" --secret-file "$ROOT/.runtime/dev-upstream.secret" \
  --tls-listen "$UPSTREAM_TLS" --tls-ca-file "$ROOT/.runtime/dev-ca.pem" 2>/dev/null &
UPSTREAM_PID=$!
PIDS+=($UPSTREAM_PID)
for _ in $(seq 100); do [ -s "$ROOT/.runtime/dev-upstream.secret" ] && [ -s "$ROOT/.runtime/dev-ca.pem" ] && break; sleep 0.05; done
# One token drives every connection: its fair share of sandbox slots (32 by
# default) is raised to the whole pool, as the test measures throughput, not
# fairness.
serve() { # ROOT LISTEN METRICS [ARGS]
  "$BIN/fastmcp" serve --root "$1" --listen "$2" --metrics-listen "$3" --no-watch \
    --providers "$ROOT/providers.yml" --outbound-allow-internal 127.0.0.1/32 \
    --outbound-ca-file "$ROOT/.runtime/dev-ca.pem" --runtime-max-calls-per-principal 128 "${@:4}" > "$1/host.log" &
}
serve "$ROOT" "$HOST" "$METRICS"
HOST_PID=$!
PIDS+=($HOST_PID)
"$BIN/fastmcp-floor" --listen "$FLOOR" &
PIDS+=($!)
for _ in $(seq 300); do curl -sf "http://$HOST/health" >/dev/null && curl -s "http://$FLOOR/" >/dev/null && break; sleep 0.1; done
# The unpooled host: a copy of the root (same keys, a trail of its own).
ROOT2=$(mktemp -d)
cp -r "$ROOT/manifests" "$ROOT/policies" "$ROOT/plugins" "$ROOT/.runtime" "$ROOT2/"
serve "$ROOT2" "$UNPOOLED" off --outbound-pool-idle-per-origin 0
UNPOOLED_PID=$!
PIDS+=($UNPOOLED_PID)
for _ in $(seq 300); do curl -sf "http://$UNPOOLED/health" >/dev/null && break; sleep 0.1; done
# The tracing hosts: one exporting to a receiver, one to a dead collector.
OTLP_RECEIVER_COUNT_ONLY=1 "$BIN/fastmcp-otlp-receiver" "$OTLP_HTTP" "$OTLP_GRPC" 2>"$ROOT/otlp.log" &
PIDS+=($!)
ROOT3=$(mktemp -d)
ROOT4=$(mktemp -d)
for r in "$ROOT3" "$ROOT4"; do cp -r "$ROOT/manifests" "$ROOT/policies" "$ROOT/plugins" "$ROOT/.runtime" "$r/"; done
OTEL_EXPORTER_OTLP_ENDPOINT="http://$OTLP_HTTP" serve "$ROOT3" "$TRACED" off
TRACED_PID=$!
PIDS+=($TRACED_PID)
OTEL_EXPORTER_OTLP_ENDPOINT="http://$DEAD_COLLECTOR" serve "$ROOT4" "$COLLECTOR_DOWN" off
DOWN_PID=$!
PIDS+=($DOWN_PID)
for h in "$TRACED" "$COLLECTOR_DOWN"; do
  for _ in $(seq 300); do curl -sf "http://$h/health" >/dev/null && break; sleep 0.1; done
done

TOKEN=$("$BIN/fastmcp" token --root "$ROOT" --sub bench --role bench --scope tools.invoke:write --ttl 2h)
cat > "$ROOT/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.body = os.getenv("BODY")
for header in string.gmatch(os.getenv("HEADERS") or "", "[^|]+") do
  local name, value = header:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end
LUA

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$HOST_PID/status"; }
# CPU time (user + system, clock ticks) of process $1 so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

# run URL CONNECTIONS BODY [HEADERS] -> "req/s p50 p99 non2xx"
run() {
  local threads=$(( $2 < 2 ? 1 : 2 ))
  local out
  out=$(BODY="$3" HEADERS="${4:-}" wrk -t"$threads" -c"$2" -d"${DURATION}s" --latency -s "$ROOT/post.lua" "$1")
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' <<<"$out")
  echo "$rps $p50 $p99 ${non2xx:-0}"
}

ECHO_BODY='{"message":"the quick brown fox jumps over the lazy dog","n":42,"tags":["a","b","c"],"ok":true}'
LIST_BODY='{"limit":10}'
MCP_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"util.echo","arguments":{"message":"the quick brown fox jumps over the lazy dog","n":42,"tags":["a","b","c"],"ok":true},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}'
MCP_HEADERS='Accept: application/json, text/event-stream|MCP-Protocol-Version: 2026-07-28|Mcp-Method: tools/call|Mcp-Name: util.echo'
rss_start=$(rss_kib)
TABLE="| scenario | conns | floor req/s | host req/s | host/floor | host/echo | floor p50 / p99 | host p50 / p99 | host non-2xx | cores: host / upstream |
|---|---|---|---|---|---|---|---|---|---|"
declare -A ECHO_RPS
for scenario in echo echo-traced echo-collector-down mcp brokered brokered-https brokered-nopool brokered-https-nopool; do
  headers=""
  host=$HOST
  host_pid=$HOST_PID
  case $scenario in
    echo) tool=util:echo; body=$ECHO_BODY; path="/tools/$tool/invoke"; label="\`$tool\`" ;;
    echo-traced) tool=util:echo; body=$ECHO_BODY; path="/tools/$tool/invoke"; host=$TRACED; host_pid=$TRACED_PID; label="traced, OTLP/HTTP" ;;
    echo-collector-down) tool=util:echo; body=$ECHO_BODY; path="/tools/$tool/invoke"; host=$COLLECTOR_DOWN; host_pid=$DOWN_PID; label="collector down" ;;
    mcp) tool=util:echo; body=$MCP_BODY; path="/mcp"; headers=$MCP_HEADERS; label="\`tools/call util.echo\`" ;;
    brokered) tool=ads:listCampaigns; body=$LIST_BODY; path="/tools/$tool/invoke"; label="\`$tool\`, http" ;;
    brokered-https) tool=adstls:listCampaigns; body=$LIST_BODY; path="/tools/$tool/invoke"; label="\`$tool\`, https" ;;
    brokered-nopool) tool=ads:listCampaigns; body=$LIST_BODY; path="/tools/$tool/invoke"; host=$UNPOOLED; host_pid=$UNPOOLED_PID; label="http, no pooling" ;;
    brokered-https-nopool) tool=adstls:listCampaigns; body=$LIST_BODY; path="/tools/$tool/invoke"; host=$UNPOOLED; host_pid=$UNPOOLED_PID; label="https, no pooling" ;;
  esac
  for conns in 1 16 64; do
    read -r f_rps f_p50 f_p99 _ <<<"$(run "http://$FLOOR$path" "$conns" "$body" "$headers")"
    h0=$(cpu_ticks "$host_pid"); u0=$(cpu_ticks "$UPSTREAM_PID")
    read -r h_rps h_p50 h_p99 h_non <<<"$(run "http://$host$path" "$conns" "$body" "$headers")"
    cores=$(awk -v h=$(( $(cpu_ticks "$host_pid") - h0 )) -v u=$(( $(cpu_ticks "$UPSTREAM_PID") - u0 )) -v t="$TICKS" -v d="$DURATION" \
      'BEGIN { printf "%.2f / %.2f", h / t / d, u / t / d }')
    [ "$conns" = 64 ] && [ "$scenario" = echo ] && rest64=$h_rps
    [ "$conns" = 64 ] && [ "$scenario" = mcp ] && mcp64=$h_rps
    [ "$scenario" = echo ] && ECHO_RPS[$conns]=$h_rps
    ratio=$(awk -v h="$h_rps" -v f="$f_rps" 'BEGIN { r = f > 0 ? 100 * h / f : 0; printf "%.1f%%", r }')
    vs_echo=$(awk -v h="$h_rps" -v e="${ECHO_RPS[$conns]:-0}" 'BEGIN { r = e > 0 ? 100 * h / e : 0; printf "%.1f%%", r }')
    row="| $scenario ($label) | $conns | $f_rps | $h_rps | **$ratio** | $vs_echo | $f_p50 / $f_p99 | $h_p50 / $h_p99 | $h_non | $cores |"
    echo "$row"
    TABLE+=$'\n'"$row"
  done
done
rss_end=$(rss_kib)
metric() { curl -s "http://$METRICS/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }
UPSTREAM_CONNECTIONS=$(curl -s "http://$UPSTREAM/_dev/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"])')
POOL="outbound connections: pooled host opened $(metric fastmcp_outbound_connections_opened_total), reused $(metric fastmcp_outbound_connections_reused_total); the upstream accepted ${UPSTREAM_CONNECTIONS} in all (both hosts, http and https)"
BATCH=$(awk -v b="$(metric fastmcp_audit_batches_total)" -v r="$(metric fastmcp_audit_batched_records_total)" \
  'BEGIN { m = b > 0 ? r / b : 0; printf "%d audit batches, %.1f records per batch on average", b, m }')
DROPPED=$(metric fastmcp_log_lines_dropped_total)
SPANS=$(tail -n 1 "$ROOT/otlp.log" 2>/dev/null || true)
TRACING="tracing: the receiver ${SPANS:-received nothing}"

kill -TERM "$HOST_PID"
wait "$HOST_PID" || true
VERIFY=$("$BIN/fastmcp" audit verify --root "$ROOT" 2>/dev/null) || { echo "loadtest: audit verify FAILED" >&2; exit 1; }
LOG_BYTES=$(wc -c < "$ROOT/host.log")
MCP_VS_REST=$(awk -v m="${mcp64:-0}" -v r="${rest64:-0}" 'BEGIN { printf "MCP tools/call at 64 connections: %.1f%% of REST invoke (%d vs %d req/s, same run)", (r > 0 ? 100 * m / r : 0), m, r }')
echo "$MCP_VS_REST"
SUMMARY="${MCP_VS_REST}; ${TRACING}; ${POOL}; wrk ${DURATION} s per cell, floor and host alternately; host RSS ${rss_start} KiB at the start, ${rss_end} KiB at the end; ${BATCH}; ${LOG_BYTES} bytes of host log, ${DROPPED:-0} lines dropped; audit verify: ${VERIFY}"
echo
echo "$SUMMARY"

if [ "$WRITE" = 1 ]; then
  python3 - "$TABLE" "$SUMMARY" <<'PY'
import sys, re
table, summary = sys.argv[1], sys.argv[2]
path = "BENCHMARKS.md"
text = open(path).read()
block = f"<!-- loadtest:begin (generated by ./dev loadtest --write) -->\n{table}\n\n{summary}\n<!-- loadtest:end -->"
pattern = re.compile(r"<!-- loadtest:begin.*?<!-- loadtest:end -->", re.S)
text = pattern.sub(block, text) if pattern.search(text) else text.rstrip() + "\n\n## Load test (`./dev loadtest`)\n\n" + block + "\n"
open(path, "w").write(text)
PY
  echo "loadtest: BENCHMARKS.md updated"
fi
