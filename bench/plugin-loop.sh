#!/usr/bin/env bash
# The tool author's inner loop, measured (`./dev plugin-loop`).
#
# For each language (Rust, Python, JavaScript), in a private root served by
# the release host on 127.0.0.1:18010:
#   0. a cold build of a throwaway plugin in another root (toolchain installs
#      happen before it and are not timed; for Rust an empty target directory);
#   1. `fastmcp plugin new` + the printed grant, then `fastmcp plugin build`
#      (the first build in this root) and the time from then until the host
#      serves the new tool (it compiles the component);
#   2. `fastmcp plugin dev --rounds 2`, one edit of the source, and the times
#      of the edit's round: build, check (which compiles the component into
#      the compile cache the host shares) and, from the component in place,
#      until the host answers with the new version.
# Prints one line per language; the figures go into BENCHMARKS.md by hand.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT_DIR=$(pwd)
FASTMCP="$ROOT_DIR/target/release/fastmcp"
PORT=18010
export FASTMCP_TOOLS_DIR="$ROOT_DIR/.fastmcp/tools"
export CARGO_TARGET_DIR="$ROOT_DIR/target/plugin-templates"

work=$(mktemp -d)
trap 'kill "${host:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/manifests" "$work/policies"
printf 'version: 1\nroles:\n' > "$work/policies/policies.yml"
cd "$work"
"$FASTMCP" serve --root "$work" --listen "127.0.0.1:$PORT" --metrics-listen off > host.log 2>&1 &
host=$!
for _ in $(seq 200); do curl -sf "127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.05; done

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

# Poll the tool until its message ends with $2; print the seconds taken.
wait_for_answer() {
  local tool=$1 suffix=$2 token=$3 started
  started=$(now)
  for _ in $(seq 6000); do
    if curl -s -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        "127.0.0.1:$PORT/tools/$tool/invoke" -d '{"name":"Ada"}' | grep -q "$suffix\"}"; then
      secs "$started" "$(now)"
      return
    fi
    sleep 0.01
  done
  echo "timeout"
}

printf '%-11s %-11s %-12s %-12s %-10s %-10s %-12s\n' language cold-build first-build first-serve build check in-place→serving
for lang in rust python js; do
  name="loop_$lang"
  "$FASTMCP" plugin new "$name" --lang "$lang" > new.txt
  grant=$(grep '{ tools: \[' new.txt | sed 's/^ *//')
  sed -i "s/^roles:\$/roles:\n  $grant/" policies/policies.yml
  token=$("$FASTMCP" token --root "$work" --sub author --role "$name-user" --scope tools.invoke:write)
  # A throwaway plugin in another root installs the toolchain if needed
  # (not timed) and then gives the cold build: for Rust with an empty target
  # directory, so the dependencies (wit-bindgen, serde_json) compile.
  mkdir -p "$work/warm/manifests"
  (cd "$work/warm" && "$FASTMCP" plugin new "warm_$lang" --lang "$lang" --root . > /dev/null \
    && "$FASTMCP" plugin build "warm_$lang" --root . > /dev/null 2>&1 \
    && rm -f "plugins/warm_$lang/warm_$lang.wasm" && rm -rf "$work/warm/cold-target")
  started=$(now)
  (cd "$work/warm" && CARGO_TARGET_DIR="$work/warm/cold-target" "$FASTMCP" plugin build "warm_$lang" --root . > /dev/null 2>&1)
  cold_build=$(secs "$started" "$(now)")
  started=$(now)
  "$FASTMCP" plugin build "$name" > build.txt 2>&1
  first_build=$(secs "$started" "$(now)")
  first_serve=$(wait_for_answer "$name:hello" 'Ada!' "$token")

  "$FASTMCP" plugin dev "$name" --rounds 2 2> dev.txt &
  dev=$!
  for _ in $(seq 6000); do grep -q '^loaded: ' dev.txt && break; sleep 0.05; done
  case "$lang" in
    rust) src="plugins/$name/src/lib.rs"; sed -i 's/{greeting}, {name}!/{greeting}, {name}! v2/' "$src" ;;
    python) src="plugins/$name/app.py"; sed -i "s/{greeting}, {args\['name'\]}!/{greeting}, {args['name']}! v2/" "$src" ;;
    js) src="plugins/$name/app.js"; sed -i 's/${greeting}, ${args.name}!/${greeting}, ${args.name}! v2/' "$src" ;;
  esac
  wait "$dev"
  placed=$(grep -c '^loaded: ' dev.txt)
  [ "$placed" -eq 2 ] || { cat dev.txt; echo "plugin-loop: the edit did not load" >&2; exit 1; }
  serve=$(wait_for_answer "$name:hello" 'v2' "$token")
  build=$(grep 'built in' dev.txt | tail -1 | sed 's/.*built in \([0-9.]*\) s.*/\1/')
  in_place=$(grep '^loaded: ' dev.txt | tail -1 | sed 's/.*in place after \([0-9.]*\) s.*/\1/')
  check=$(echo "$in_place - $build" | bc)
  printf '%-11s %-11s %-12s %-12s %-10s %-10s %-12s\n' "$lang" "${cold_build}s" "${first_build}s" "${first_serve}s" "${build}s" "${check}s" "${serve}s"
done
