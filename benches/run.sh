#!/usr/bin/env bash
# Benchmarks the gateway in one run, so that every ratio compares figures
# taken side by side on the same machine:
#   - sandbox cost per request (Criterion, a per-request timer, and
#     callgrind's instruction count);
#   - throughput and latency with wrk through the gateway, a native Rust
#     proxy, SAP's approuter and, when installed, `wasmtime serve`, against
#     a local OData backend (about 1 KB and 1 MiB responses);
#   - the gateway's resident memory idle, under load and with a 100 MiB
#     response in flight;
#   - start to ready with and without the compiled-code cache, the time a
#     swap through the admin API takes, and failed requests during swaps
#     under load;
#   - throughput with destinations from the emulated Destination service,
#     and the calls made to it.
#
# Usage: benches/run.sh [--smoke]
#   BENCH_GATEWAY_CANDIDATE=PATH also measures another gateway binary in
#            the throughput part, as `gateway-candidate`.
#   WASMTIME=PATH is the wasmtime CLI for `wasmtime serve` (default
#            $HOME/.cache/btp-gateway/tools/bin/wasmtime); without one, that
#            row shows "not installed". BENCH_INSTALL_WASMTIME=1 installs it
#            there first (a long build: see BENCHMARKS.md).
#   --smoke  runs every part briefly with debug builds, to check that the
#            script works; its figures are not measurements of the gateway.
#            BENCH_PROFILE=release makes it use release builds.
# Every server binds 127.0.0.1. The Markdown tables go to stdout and to
# benches/results/results-{full,smoke}.md (or $BENCH_RESULTS_FILE).
# With 2 or more CPUs, the system under test runs on CPU 1, and wrk, the
# backend and the emulator on CPU 0 (BENCH_PIN=0 turns this off).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

mode=full
case "${1:-}" in
  --smoke) mode=smoke ;;
  "") ;;
  *) echo "usage: benches/run.sh [--smoke]" >&2; exit 2 ;;
esac

log() { printf '[bench %ss] %s\n' "$SECONDS" "$*" >&2; }
fail() { log "error: $*"; exit 1; }

# --- settings ---------------------------------------------------------------

if [ "$mode" = full ]; then
  profile=release
  load_secs=10
  warmup_secs=2
  concurrencies="1 16 64"
  criterion_args=(--warm-up-time 2 --measurement-time 5)
  probe_requests=2000
  callgrind_requests=20
  start_runs=3
  swaps=10
else
  profile=dev
  load_secs=1
  warmup_secs=0
  concurrencies="16"
  criterion_args=(--warm-up-time 0.1 --measurement-time 0.3 --sample-size 10)
  probe_requests=50
  callgrind_requests=0
  start_runs=1
  swaps=2
fi
# The connection count of the runs that the memory, swap and Destination
# service parts use.
busy_connections=64
[ "$mode" = smoke ] && busy_connections=16

# BENCH_PROFILE=release gives a smoke run with the builds of a full one.
profile="${BENCH_PROFILE:-$profile}"
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")
if [ "$profile" = release ]; then bin="$target_dir/release"; else bin="$target_dir/debug"; fi
results_file="${BENCH_RESULTS_FILE:-$root/benches/results/results-$mode.md}"
wasmtime_bin="${WASMTIME:-$HOME/.cache/btp-gateway/tools/bin/wasmtime}"
# A second gateway binary, for example a build with a change to compare,
# measured beside the current one in the throughput part.
candidate_bin="${BENCH_GATEWAY_CANDIDATE:-}"
gateways=gateway
if [ -n "$candidate_bin" ]; then
  [ -x "$candidate_bin" ] || { echo "BENCH_GATEWAY_CANDIDATE: $candidate_bin is not an executable" >&2; exit 2; }
  gateways="gateway candidate"
fi

sut_cpu="" load_cpu=""
if [ "${BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  sut_cpu=1
  load_cpu=0
fi

# --- installation -----------------------------------------------------------

apt_install() {
  command -v apt-get >/dev/null || fail "missing $*, and apt-get is not available: install them and run again"
  log "installing Debian packages: $*"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

install_tools() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v curl >/dev/null || missing+=(curl)
  command -v python3 >/dev/null || missing+=(python3)
  command -v taskset >/dev/null || missing+=(util-linux)
  if [ "$mode" = full ]; then command -v valgrind >/dev/null || missing+=(valgrind); fi
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
  command -v node >/dev/null || fail "Node.js is missing: run scripts/setup.sh first"

  rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

  if [ "${BENCH_INSTALL_WASMTIME:-0}" = 1 ] && [ ! -x "$wasmtime_bin" ]; then
    log "installing the wasmtime CLI 48.0.8 into $HOME/.cache/btp-gateway/tools (a long build)"
    cargo install wasmtime-cli --version 48.0.8 --locked --root "$HOME/.cache/btp-gateway/tools"
  fi

  # npm ci runs only when package-lock.json changed since the last install.
  local dir="$root/benches/approuter"
  local stamp="$dir/node_modules/.installed-from-lock"
  local lock_sum
  lock_sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
    log "installing @sap/approuter into benches/approuter"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > "$stamp"
  fi
}

# One cargo command builds every program, so that features unify the same
# way for all of them and the host compiles once. The debug build selects
# what `cargo test --workspace` builds, so that the smoke test reuses the
# test run's builds instead of compiling tokio and the host again with
# other features.
build() {
  local selection=(--release -p btp-gateway -p btp-gateway-tests -p btp-gateway-benches --bins)
  [ "$profile" = dev ] && selection=(--workspace --bins --tests)
  log "building the gateway, the emulator and the benchmark programs ($profile)"
  cargo build --locked "${selection[@]}" --bench sandbox --message-format=json-render-diagnostics \
    > "$work/cargo-build.json"
  criterion_bench=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    message = json.loads(line)
    target = message.get("target", {})
    if message.get("reason") == "compiler-artifact" and target.get("name") == "sandbox" and "bench" in target.get("kind", []):
        print(message["executable"])
' "$work/cargo-build.json")
  [ -x "$criterion_bench" ] || fail "cargo built no Criterion benchmark executable"

  for label in bench-a bench-b bench-c; do
    build_versioned_guest "$label"
  done
  if [ -x "$wasmtime_bin" ]; then
    log "building the default component as a file for wasmtime serve"
    cargo build --locked --release --target wasm32-wasip2 -p btp-gateway-guest
    cp "$target_dir/wasm32-wasip2/release/btp_gateway_guest.wasm" "$work/default-guest.wasm"
  fi
}

# The test component of tests/guests/versioned returns its label for GET /.
build_versioned_guest() {
  local label=$1
  VERSIONED_GUEST_LABEL="$label" cargo build --locked --release --target wasm32-wasip2 \
    -p test-guest-versioned 2>/dev/null
  cp "$target_dir/wasm32-wasip2/release/test_guest_versioned.wasm" "$work/$label.wasm"
}

# --- processes --------------------------------------------------------------

pids=()
work=""
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a command pinned to a CPU when pinning is on; $1 is the CPU or "".
pinned() {
  local cpu=$1
  shift
  if [ -n "$cpu" ]; then taskset -c "$cpu" "$@"; else "$@"; fi
}

# Starts a server in the background, with its output in $work/$name.log,
# and sets $started to its process id. The command starts as a simple
# command, not through a function, so that $! is the server's own process
# (taskset and env exec it in place).
start() {
  local name=$1 cpu=$2
  shift 2
  local command=("$@")
  [ -n "$cpu" ] && command=(taskset -c "$cpu" "$@")
  "${command[@]}" > "$work/$name.log" 2>&1 &
  started=$!
  pids+=("$started")
}

stop() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Prints the URL of a {"listening":"URL"} line that a server wrote to its log.
wait_listening() {
  local name=$1 url
  for _ in $(seq 1 600); do
    url=$(grep -o '"listening":"[^"]*"' "$work/$name.log" 2>/dev/null | head -n1 | cut -d'"' -f4 || true)
    if [ -n "$url" ]; then echo "$url"; return 0; fi
    sleep 0.05
  done
  cat "$work/$name.log" >&2
  fail "$name did not start"
}

# Waits until a URL responds with 200, or with any status when the third
# argument is "any status".
wait_ok() {
  local url=$1 name=$2 accept=${3:-200}
  local curl_args=(-sf)
  [ "$accept" = "any status" ] && curl_args=(-s)
  for _ in $(seq 1 1200); do
    curl "${curl_args[@]}" -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.05
  done
  cat "$work/$name.log" >&2
  fail "$name did not respond with $accept at $url"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

now_ns() { date +%s%N; }

# Starts the gateway, or $gateway_program when set; the variables in "$@"
# come on top of a clean environment. Sets $started and $gateway_url.
start_gateway() {
  local name=$1
  shift
  local port
  port=$(free_port)
  mkdir -p "$work/config-$name"
  start "$name" "$sut_cpu" env -i PATH="$PATH" HOME="$HOME" PORT="$port" "$@" \
    "${gateway_program:-$bin/btp-gateway}" --config-dir "$work/config-$name"
  gateway_url="http://127.0.0.1:$port"
}

# Prints a field of a process's /proc status in KiB (VmRSS, VmHWM).
proc_kib() {
  awk -v field="$2:" '$1 == field { print $2 }' "/proc/$1/status"
}

# Prints the CPU time of a process, user and system, in clock ticks.
cpu_ticks() {
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# Prints one field of a one-line JSON object.
json_field() {
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# Runs wrk and prints the JSON line of benches/wrk/report.lua.
wrk_run() {
  local connections=$1 secs=$2 url=$3
  pinned "$load_cpu" wrk -t1 -c"$connections" -d"${secs}s" --timeout 10s \
    -s "$root/benches/wrk/report.lua" "$url" | grep '^{"requests"'
}

# --- sandbox cost -----------------------------------------------------------

measure_sandbox() {
  log "sandbox cost: Criterion"
  local criterion_home="$work/criterion"
  CRITERION_HOME="$criterion_home" BENCH_VERSIONED_WASM="$work/bench-a.wasm" \
    BENCH_COMPILED_CACHE_DIR="$work/compiled-sandbox" \
    pinned "$sut_cpu" "$criterion_bench" --bench "${criterion_args[@]}" >&2

  local case_name component_args
  for case_name in default versioned; do
    component_args=()
    [ "$case_name" = versioned ] && component_args=(--component "$work/bench-a.wasm")
    local estimates
    estimates=$(criterion_estimates "$criterion_home/sandbox/${case_name}_guest_get_root/new")

    log "sandbox cost: per-request timer ($case_name)"
    local probe
    probe=$(pinned "$sut_cpu" "$bin/sandbox-probe" "${component_args[@]}" --requests "$probe_requests" \
      --compiled-cache-dir "$work/compiled-sandbox" 2> "$work/probe-$case_name.err")
    if grep -q "on-demand allocation" "$work/probe-$case_name.err"; then
      fail "the pooling allocator was not available to sandbox-probe"
    fi

    local instructions="skipped in smoke mode"
    if [ "$callgrind_requests" -gt 0 ]; then
      log "sandbox cost: callgrind ($case_name, $callgrind_requests requests)"
      instructions=$(count_instructions "$case_name" "${component_args[@]}")
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$case_name" "$estimates" \
      "$(json_field "$probe" median_us)" "$(json_field "$probe" p99_us)" "$instructions" \
      >> "$work/sandbox.tsv"
  done
}

# Prints Criterion's median estimate and the 99th percentile of its samples
# (each the mean time per iteration of one sample), in microseconds.
criterion_estimates() {
  python3 - "$1" <<'PY'
import json, math, sys
folder = sys.argv[1]
estimates = json.load(open(f"{folder}/estimates.json"))
sample = json.load(open(f"{folder}/sample.json"))
per_iteration = sorted(t / n for t, n in zip(sample["times"], sample["iters"]))
rank = max(1, math.ceil(0.99 * len(per_iteration)))
print(f'{estimates["median"]["point_estimate"] / 1000:.1f}\t{per_iteration[rank - 1] / 1000:.1f}')
PY
}

# Prints the instructions per request that callgrind counts inside the
# measured loop of sandbox-probe.
count_instructions() {
  local case_name=$1
  shift
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind-$case_name.out" \
    --collect-atstart=no --toggle-collect='*run_measured_requests*' \
    "$bin/sandbox-probe" "$@" --requests "$callgrind_requests" --warmup 5 --max-instances 4 \
    --compiled-cache-dir "$work/compiled-sandbox" > /dev/null 2> "$work/callgrind-$case_name.err"
  if grep -q "on-demand allocation" "$work/callgrind-$case_name.err"; then
    fail "the pooling allocator was not available under valgrind"
  fi
  callgrind_annotate --inclusive=yes "$work/callgrind-$case_name.out" 2>/dev/null | head -n 80 \
    > "$(dirname "$results_file")/callgrind-$case_name.txt" || true
  local collected
  collected=$(grep -o 'Collected : [0-9]*' "$work/callgrind-$case_name.err" | grep -o '[0-9]*$')
  [ -n "$collected" ] || fail "callgrind reported no count; see its output: $(tail -5 "$work/callgrind-$case_name.err")"
  echo $(( collected / callgrind_requests ))
}

# --- throughput -------------------------------------------------------------

start_backend() {
  start backend "$load_cpu" "$bin/bench-backend"
  backend_pid=$started
  backend_url=$(wait_listening backend)
  destination_url="$backend_url/odata/v4/bench"
}

# Starts every system under test; sets url_<system> and pid_<system>.
start_systems() {
  local destinations
  destinations="[{\"name\":\"BENCH\",\"url\":\"$destination_url\",\"username\":\"bench\",\"password\":\"bench-secret\"}]"
  start_gateway gateway destinations="$destinations" BTP_GATEWAY_COMPILED_CACHE_DIR="$work/compiled-gateway"
  pid_gateway=$started
  url_gateway=$gateway_url
  wait_ok "$url_gateway/health/readiness" gateway
  if [ -n "$candidate_bin" ]; then
    gateway_program=$candidate_bin start_gateway candidate destinations="$destinations" \
      BTP_GATEWAY_COMPILED_CACHE_DIR="$work/compiled-candidate"
    pid_candidate=$started
    url_candidate=$gateway_url
    wait_ok "$url_candidate/health/readiness" candidate
  fi

  start native-proxy "$sut_cpu" "$bin/native-proxy" --name BENCH --url "$destination_url" \
    --user bench --password bench-secret
  pid_native=$started
  url_native=$(wait_listening native-proxy)

  local port
  port=$(free_port)
  local approuter="$root/benches/approuter"
  start approuter "$sut_cpu" env -i PATH="$PATH" HOME="$HOME" PORT="$port" \
    XS_BIND_ADDRESS=127.0.0.1 destinations="[{\"name\":\"BENCH\",\"url\":\"$destination_url\"}]" \
    node "$approuter/node_modules/@sap/approuter/approuter.js" -w "$approuter"
  pid_approuter=$started
  url_approuter="http://127.0.0.1:$port"
  wait_ok "$url_approuter/odata/BENCH/Small" approuter

  printf 'native-proxy idle after start\t%s\t%s\n' "$(proc_kib "$pid_native" VmRSS)" \
    "$(proc_kib "$pid_native" VmHWM)" >> "$work/memory.tsv"
  printf 'approuter idle after its first request\t%s\t%s\n' "$(proc_kib "$pid_approuter" VmRSS)" \
    "$(proc_kib "$pid_approuter" VmHWM)" >> "$work/memory.tsv"

  pid_wasmtime=""
  if [ -x "$wasmtime_bin" ]; then
    port=$(free_port)
    start wasmtime-serve "$sut_cpu" "$wasmtime_bin" serve --addr "127.0.0.1:$port" \
      -Scli -Sconfig -Skeyvalue "$work/default-guest.wasm"
    pid_wasmtime=$started
    url_wasmtime="http://127.0.0.1:$port"
    # The default component responds to GET / with 404.
    wait_ok "$url_wasmtime/" wasmtime-serve "any status"
  fi
}

# Checks that each proxy returns the backend's document and sends the
# backend the destination's Basic credentials.
check_systems() {
  local expected system url size
  expected=$(curl -sf "$destination_url/Small" | wc -c)
  for system in $gateways native approuter; do
    url="url_$system"
    size=$(curl -sf "${!url}/odata/BENCH/Small" | wc -c) \
      || fail "$system did not answer 200 for the small document"
    [ "$size" -eq "$expected" ] || fail "$system returned $size bytes for the small document, expected $expected"
  done
  local basic="Basic YmVuY2g6YmVuY2gtc2VjcmV0"
  for system in $gateways native; do
    url="url_$system"
    curl -sf "${!url}/odata/BENCH/Headers" | grep -q "\"authorization\":\"$basic\"" \
      || fail "$system did not send the destination's Basic credentials"
  done
}

# Runs one load and appends a row to $work/load.tsv.
load() {
  local system=$1 pid=$2 response=$3 connections=$4 url=$5
  local ticks_before ticks_after result requests cpu_us
  ticks_before=$(cpu_ticks "$pid")
  result=$(wrk_run "$connections" "$load_secs" "$url")
  ticks_after=$(cpu_ticks "$pid")
  requests=$(json_field "$result" requests)
  # GET / is a 404 of the default component by design, so only socket
  # errors count there.
  local errors
  errors="$(json_field "$result" status_errors) status, $(json_field "$result" socket_errors) socket"
  [ "$response" = root ] && errors="$(json_field "$result" socket_errors) socket"
  cpu_us=$(( (ticks_after - ticks_before) * 1000000 / $(getconf CLK_TCK) / (requests > 0 ? requests : 1) ))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$system" "$response" "$connections" \
    "$(json_field "$result" rps)" "$(json_field "$result" p50_us)" \
    "$(json_field "$result" p99_us)" "$errors" "$cpu_us" >> "$work/load.tsv"
}

measure_throughput() {
  start_systems
  check_systems
  local response system connections url pid
  for response in Small Large; do
    for system in $gateways native approuter; do
      url="url_$system"
      pid="pid_$system"
      log "load: $system, ${response,,} response"
      [ "$warmup_secs" -gt 0 ] && wrk_run 16 "$warmup_secs" "${!url}/odata/BENCH/$response" > /dev/null
      for connections in $concurrencies; do
        load "$system" "${!pid}" "${response,,}" "$connections" "${!url}/odata/BENCH/$response"
      done
    done
  done

  # The same 1 MiB as a binary body, which the component passes on without
  # looking for links to rewrite: the difference to the JSON runs is the
  # cost of the link rewriting.
  for system in $gateways native; do
    url="url_$system"
    pid="pid_$system"
    log "load: $system, large binary response"
    [ "$warmup_secs" -gt 0 ] && wrk_run 16 "$warmup_secs" "${!url}/odata/BENCH/LargeBinary" > /dev/null
    load "$system" "${!pid}" large-binary "$busy_connections" "${!url}/odata/BENCH/LargeBinary"
  done

  # The sandbox without a backend: GET / on the gateway and on wasmtime serve.
  for system in $gateways wasmtime; do
    url="url_$system"
    pid="pid_$system"
    if [ "$system" = wasmtime ] && [ -z "$pid_wasmtime" ]; then
      printf 'wasmtime\troot\t-\tnot installed\t\t\t\t\n' >> "$work/load.tsv"
      continue
    fi
    log "load: $system, GET / (no backend)"
    [ "$warmup_secs" -gt 0 ] && wrk_run 16 "$warmup_secs" "${!url}/" > /dev/null
    for connections in $concurrencies; do
      load "$system" "${!pid}" root "$connections" "${!url}/"
    done
  done

  # wrk counts error statuses but not which ones, so the gateway's request
  # log gives them; the 404 responses of the `root` runs are expected.
  local name
  for name in $gateways; do
    grep -o 'response_status=[45][0-9][0-9]' "$work/$name.log" | cut -d= -f2 | grep -vx 404 \
      | sort | uniq -c | awk -v system="$name" '{ print system "\t" $2 "\t" $1 }' \
      >> "$work/error-statuses.tsv" || true
  done

  stop "$pid_gateway"
  [ -n "$candidate_bin" ] && stop "$pid_candidate"
  stop "$pid_native"
  stop "$pid_approuter"
  [ -n "$pid_wasmtime" ] && stop "$pid_wasmtime"
  return 0
}

# --- memory -----------------------------------------------------------------

# Samples VmRSS of a process every 50 ms while another process runs, and
# prints the largest value in KiB.
max_rss_while() {
  local pid=$1 watched=$2 max=0 value
  while kill -0 "$watched" 2>/dev/null; do
    value=$(proc_kib "$pid" VmRSS)
    [ "$value" -gt "$max" ] && max=$value
    sleep 0.05
  done
  echo "$max"
}

measure_memory() {
  log "memory: idle, under load and with a 100 MiB response"
  local destinations
  destinations="[{\"name\":\"BENCH\",\"url\":\"$destination_url\",\"username\":\"bench\",\"password\":\"bench-secret\"}]"
  start_gateway memory destinations="$destinations" BTP_GATEWAY_COMPILED_CACHE_DIR="$work/compiled-gateway"
  local pid=$started
  wait_ok "$gateway_url/health/readiness" memory
  sleep 1
  printf 'gateway idle after start\t%s\t%s\n' "$(proc_kib "$pid" VmRSS)" "$(proc_kib "$pid" VmHWM)" >> "$work/memory.tsv"

  wrk_run "$busy_connections" "$load_secs" "$gateway_url/odata/BENCH/Small" > "$work/memory-load.json" &
  local wrk_pid=$!
  local peak
  peak=$(max_rss_while "$pid" "$wrk_pid")
  wait "$wrk_pid"
  printf 'gateway under load (%s connections, small responses)\t%s\t%s\n' "$busy_connections" "$peak" \
    "$(proc_kib "$pid" VmHWM)" >> "$work/memory.tsv"

  # The client reads at 25 MB/s, so the response is in flight for about
  # 4 seconds, and a gateway that buffered it would show it in VmRSS.
  curl -sf --limit-rate 25M -o /dev/null -w '%{size_download}' \
    "$gateway_url/odata/BENCH/Huge" > "$work/huge.size" &
  local curl_pid=$!
  peak=$(max_rss_while "$pid" "$curl_pid")
  wait "$curl_pid" || fail "the 100 MiB download through the gateway failed"
  printf 'gateway with a 100 MiB response in flight (%s bytes read at 25 MB/s)\t%s\t%s\n' "$(cat "$work/huge.size")" \
    "$peak" "$(proc_kib "$pid" VmHWM)" >> "$work/memory.tsv"
  sleep 1
  printf 'gateway idle after these runs\t%s\t%s\n' "$(proc_kib "$pid" VmRSS)" "$(proc_kib "$pid" VmHWM)" >> "$work/memory.tsv"
  stop "$pid"
}

# --- start and swap ---------------------------------------------------------

# Sets $ready_ms to the milliseconds from process start to
# /health/readiness 200. It sets a variable instead of printing, because a
# server started in a command substitution would outlive a failed run.
measure_start_to_ready() {
  local cache_dir=$1 started_ns ready_ns
  started_ns=$(now_ns)
  start_gateway start BTP_GATEWAY_COMPILED_CACHE_DIR="$cache_dir"
  local pid=$started
  wait_ok "$gateway_url/health/readiness" start
  ready_ns=$(now_ns)
  stop "$pid"
  ready_ms=$(( (ready_ns - started_ns) / 1000000 ))
}

median() {
  sort -n | awk '{ values[NR] = $1 } END { print values[int((NR + 1) / 2)] }'
}

measure_start() {
  log "start: without and with the compiled-code cache"
  local run cold=() warm=()
  for run in $(seq 1 "$start_runs"); do
    measure_start_to_ready "$work/compiled-$run"
    cold+=("$ready_ms")
    measure_start_to_ready "$work/compiled-$run"
    warm+=("$ready_ms")
  done
  printf 'start to ready, empty compiled-code cache\t%s ms (median of %s: %s)\n' \
    "$(printf '%s\n' "${cold[@]}" | median)" "$start_runs" "${cold[*]}" >> "$work/start.tsv"
  printf 'start to ready, warm compiled-code cache\t%s ms (median of %s: %s)\n' \
    "$(printf '%s\n' "${warm[@]}" | median)" "$start_runs" "${warm[*]}" >> "$work/start.tsv"
}

# Uploads a component to the route `swap` and prints the milliseconds until
# GET /swap/ returns its label.
swap_ms() {
  local label=$1 started_ns ready_ns
  started_ns=$(now_ns)
  curl -sf -o /dev/null -H "Authorization: Bearer $admin_token" --data-binary "@$work/$label.wasm" \
    "$gateway_url/admin/components/swap/versions" || fail "the upload of $label was rejected"
  for _ in $(seq 1 2000); do
    [ "$(curl -s "$gateway_url/swap/")" = "$label" ] && break
    sleep 0.001
  done
  ready_ns=$(now_ns)
  echo $(( (ready_ns - started_ns) / 1000000 ))
}

measure_swaps() {
  log "swaps: time to serve, and failed requests under load"
  admin_token="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  local routes="[{\"path\":\"/\",\"component\":\"bundled\"},{\"path\":\"/swap\",\"component\":\"file:$work/bench-a.wasm\",\"name\":\"swap\"}]"
  start_gateway swap BTP_GATEWAY_ROUTES="$routes" BTP_GATEWAY_ADMIN_TOKEN="$admin_token" \
    BTP_GATEWAY_COMPILED_CACHE_DIR="$work/compiled-swap"
  local pid=$started
  wait_ok "$gateway_url/health/readiness" swap

  local first kept=() index label
  first=$(swap_ms bench-b)
  for index in $(seq 1 "$swaps"); do
    if [ $((index % 2)) -eq 1 ]; then label=bench-a; else label=bench-b; fi
    kept+=("$(swap_ms "$label")")
  done
  printf 'swap to a new component (upload, compile, smoke request, activate)\t%s ms\n' "$first" >> "$work/start.tsv"
  printf 'swap to a kept version (upload of a known digest)\t%s ms (median of %s)\n' \
    "$(printf '%s\n' "${kept[@]}" | median)" "$swaps" >> "$work/start.tsv"

  # Swaps under load: the route is loaded by wrk while the script swaps
  # back and forth, once to a new component that compiles meanwhile.
  wrk_run 16 "$load_secs" "$gateway_url/swap/" > "$work/swap-load.json" &
  local wrk_pid=$! swapped=0
  local pause
  pause=$(python3 -c "print($load_secs / ($swaps + 2))")
  for label in bench-c $(for index in $(seq 1 "$swaps"); do [ $((index % 2)) -eq 1 ] && echo bench-a || echo bench-b; done); do
    sleep "$pause"
    kill -0 "$wrk_pid" 2>/dev/null || break
    curl -sf -o /dev/null -H "Authorization: Bearer $admin_token" --data-binary "@$work/$label.wasm" \
      "$gateway_url/admin/components/swap/versions" || fail "the upload of $label under load was rejected"
    swapped=$((swapped + 1))
  done
  wait "$wrk_pid"
  local result
  result=$(cat "$work/swap-load.json")
  swap_failures=$(json_field "$result" errors)
  printf 'failed requests during %s swaps under load (16 connections, %s requests)\t%s\n' "$swapped" \
    "$(json_field "$result" requests)" "$swap_failures" >> "$work/start.tsv"
  stop "$pid"
}

# --- destinations from the Destination service ------------------------------

measure_destination_service() {
  log "destination lookups through the emulated Destination service"
  cat > "$work/emulator.json" <<JSON
{
  "clients": [{ "client_id": "sb-bench!b1|destination-xsappname!b404", "client_secret": "bench-client-secret" }],
  "instance_destinations": [{
    "Name": "BENCH", "Type": "HTTP", "URL": "$destination_url", "ProxyType": "Internet",
    "Authentication": "BasicAuthentication", "User": "bench", "Password": "bench-secret"
  }]
}
JSON
  start emulator "$load_cpu" "$bin/btp-emulator" --config "$work/emulator.json"
  local emulator_pid=$started emulator_url
  emulator_url=$(wait_listening emulator)
  cat > "$work/vcap-services.json" <<JSON
{ "destination": [{ "label": "destination", "name": "bench-destination", "plan": "lite",
    "credentials": { "clientid": "sb-bench!b1|destination-xsappname!b404",
      "clientsecret": "bench-client-secret", "url": "$emulator_url", "uri": "$emulator_url" } }] }
JSON
  start_gateway destination-service VCAP_SERVICES_FILE_PATH="$work/vcap-services.json" \
    BTP_GATEWAY_COMPILED_CACHE_DIR="$work/compiled-gateway"
  local pid=$started
  wait_ok "$gateway_url/health/readiness" destination-service

  # The gateway starts with an empty destination cache, so the first
  # requests of all connections arrive together and must share one lookup.
  local before after result
  before=$(curl -sf "$emulator_url/_emulator/stats")
  result=$(wrk_run "$busy_connections" "$load_secs" "$gateway_url/odata/BENCH/Small")
  after=$(curl -sf "$emulator_url/_emulator/stats")
  local lookups tokens
  lookups=$(( $(json_field "$after" destination_lookups) - $(json_field "$before" destination_lookups) ))
  tokens=$(( $(json_field "$after" token_requests) - $(json_field "$before" token_requests) ))
  printf 'gateway-destination-service\t%s\t%s\t%s\t%s\t%s\t%s\n' "$busy_connections" \
    "$(json_field "$result" rps)" "$(json_field "$result" p99_us)" "$(json_field "$result" errors)" \
    "$lookups" "$tokens" >> "$work/destination.tsv"
  stop "$pid"
  stop "$emulator_pid"
}

# --- report -----------------------------------------------------------------

write_settings() {
  local pinning="not pinned"
  [ -n "$sut_cpu" ] && pinning="each system under test on CPU $sut_cpu, wrk, the backend and the emulator on CPU $load_cpu"
  local wasmtime="not installed"
  [ -x "$wasmtime_bin" ] && wasmtime=$("$wasmtime_bin" --version)
  printf '%s builds; %s s per load run with wrk (1 thread), %s connections; CPUs: %s; wasmtime CLI: %s.\n' \
    "$profile" "$load_secs" "${concurrencies// /, }" "$pinning" "$wasmtime" > "$work/settings.txt"
}

main() {
  # Only the report goes to stdout; what the tools print goes to stderr.
  exec 3>&1 1>&2
  install_tools
  work=$(mktemp -d)
  mkdir -p "$(dirname "$results_file")"
  build
  start_backend
  measure_sandbox
  measure_throughput
  measure_memory
  measure_start
  measure_swaps
  measure_destination_service
  stop "$backend_pid"

  write_settings
  python3 "$root/benches/report.py" "$work" "$mode" | tee "$results_file" >&3
  log "results written to $results_file"
  [ "$swap_failures" -eq 0 ] || fail "$swap_failures requests failed during swaps under load"
}

main
