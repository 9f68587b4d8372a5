#!/usr/bin/env bash
# Runs every check and test: formatting, lints for the host and for the
# guest's wasm32-wasip2 build, unit tests, and the end-to-end tests against
# the CAP test service and the Destination service emulator on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p btp-gateway-guest -p test-guest-misbehave --target wasm32-wasip2 --locked -- -D warnings
cargo test --workspace --locked
