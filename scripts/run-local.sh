#!/usr/bin/env bash
# Builds everything and runs the gateway locally with a sample OData V4
# service, all on 127.0.0.1:
#   - the CAP test service (tests/cap) on CAP_PORT, default 4004;
#   - the Destination service and XSUAA emulator on EMULATOR_PORT, default
#     4010, with the destinations in local/emulator.json;
#   - the gateway on PORT, default 8080, bound to the emulator through
#     local/vcap-services.json, as on Cloud Foundry.
# Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CAP_PORT="${CAP_PORT:-4004}"
EMULATOR_PORT="${EMULATOR_PORT:-4010}"
PORT="${PORT:-8080}"

scripts/setup.sh
echo "[run-local] building the gateway, its default component and the emulator" >&2
cargo build --locked -p btp-gateway -p btp-gateway-tests --bins
target_dir="${CARGO_TARGET_DIR:-target}"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for a line {"listening":"URL"} in a log file and prints the URL.
wait_listening() {
  local file=$1 what=$2
  for _ in $(seq 1 300); do
    if url=$(grep -o '"listening":"[^"]*"' "$file" 2>/dev/null | head -n1 | cut -d'"' -f4) && [ -n "$url" ]; then
      echo "$url"
      return 0
    fi
    sleep 0.2
  done
  echo "[run-local] $what did not start; its output:" >&2
  cat "$file" >&2
  return 1
}

PORT="$CAP_PORT" node tests/cap/serve.js > "$work/cap.log" 2>&1 &
pids+=($!)
cap_url=$(wait_listening "$work/cap.log" "the CAP service")

sed "s|\${CAP_URL}|$cap_url|g" local/emulator.json > "$work/emulator.json"
"$target_dir/debug/btp-emulator" --config "$work/emulator.json" --port "$EMULATOR_PORT" > "$work/emulator.log" 2>&1 &
pids+=($!)
emulator_url=$(wait_listening "$work/emulator.log" "the emulator")

sed "s|\${EMULATOR_URL}|$emulator_url|g" local/vcap-services.json > "$work/vcap-services.json"
PORT="$PORT" VCAP_SERVICES_FILE_PATH="$work/vcap-services.json" \
  "$target_dir/debug/btp-gateway" --config-dir "$work" &
pids+=($!)
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "[run-local] the gateway did not start" >&2; exit 1; }
  sleep 0.2
done

cat >&2 <<MSG

[run-local] CAP service:  $cap_url
[run-local] emulator:     $emulator_url  (destinations CAP_CATALOG, CAP_ORDERS, CAP_SECURE, CAP_OAUTH_ECHO)
[run-local] gateway:      http://127.0.0.1:$PORT

Try:
  curl 'http://127.0.0.1:$PORT/odata/CAP_CATALOG/Books?\$top=3&\$select=ID,title,price'
  curl 'http://127.0.0.1:$PORT/odata/CAP_SECURE/Books(%27A%2FB%27%271%27)'
  curl 'http://127.0.0.1:$PORT/odata/CAP_OAUTH_ECHO/echo/headers'
  curl -X POST -H 'content-type: application/json' -d '{"title":"Pens","quantity":3}' 'http://127.0.0.1:$PORT/odata/CAP_ORDERS/Orders'

MSG
wait "${pids[-1]}"
