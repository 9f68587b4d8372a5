#!/usr/bin/env bash
# Runs every check and test: formatting, lints for the host and for the
# guest's wasm32-wasip2 build, unit tests, and the end-to-end tests against
# the CAP test service and the Destination service emulator on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p btp-gateway-guest -p test-guest-misbehave -p test-guest-versioned -p test-guest-command --target wasm32-wasip2 --locked -- -D warnings
# The summary at the end counts every test binary's results, so the last
# line reports the whole run rather than the last (often empty) doc-test.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
