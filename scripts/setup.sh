#!/usr/bin/env bash
# Installs what building and testing need and what a fresh machine may lack:
# the wasm32-wasip2 Rust target and Node.js 20 or later with a C++ toolchain,
# because better-sqlite3 compiles from source. Then it installs the npm
# packages of the CAP test service and of the SAP Cloud SDK comparison. Safe
# to run again: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

apt_install() {
  if ! command -v apt-get >/dev/null; then
    log "missing $*, and apt-get is not available: install them and run again"
    exit 1
  fi
  log "installing Debian packages: $*"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# The toolchain file pins the Rust version; rustup installs it on first use
# but adds targets only to a toolchain it installs itself.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  log "adding the wasm32-wasip2 target"
  rustup target add wasm32-wasip2
fi

missing=()
command -v node >/dev/null || missing+=(nodejs npm)
command -v make >/dev/null || missing+=(make)
command -v g++ >/dev/null || missing+=(g++)
command -v python3 >/dev/null || missing+=(python3)
command -v curl >/dev/null || missing+=(curl)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  log "Node.js $(node --version) is too old: @sap/cds 9 needs Node.js 20 or later"
  exit 1
fi

# npm ci runs only when package-lock.json changed since the last install.
npm_ci() {
  local dir=$1 what=$2
  local stamp="$dir/node_modules/.installed-from-lock"
  local lock_sum
  lock_sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
    log "installing $what"
    (cd "$dir" && npm_config_build_from_source=true npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > "$stamp"
  fi
}

npm_ci tests/cap "the CAP test service's npm packages (about a minute: better-sqlite3 compiles)"
npm_ci tests/sdk-compare "the SAP Cloud SDK for the comparison test (tests/sdk-compare)"

# The OCI registry tests run Debian's docker-registry as a plain process on
# 127.0.0.1. `apt-get install` would also enable a system service listening
# on every interface, so the package is only unpacked into a user folder.
registry_root="$HOME/.cache/btp-gateway/tools/docker-registry"
if ! command -v docker-registry >/dev/null && [ ! -x "$registry_root/usr/bin/docker-registry" ]; then
  if ! command -v apt-get >/dev/null; then
    log "missing docker-registry, and apt-get is not available: install it and run again"
    exit 1
  fi
  log "unpacking Debian's docker-registry into $registry_root"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  download_dir=$(mktemp -d)
  if ! (cd "$download_dir" && apt-get download -qq docker-registry 2>/dev/null); then
    $sudo apt-get update -qq
    (cd "$download_dir" && apt-get download -qq docker-registry)
  fi
  mkdir -p "$registry_root"
  dpkg-deb -x "$download_dir"/docker-registry_*.deb "$registry_root"
  rm -rf "$download_dir"
fi

# The Cloud Foundry build in mta.yaml links the gateway statically against
# musl; musl-gcc compiles the C code in ring, zstd-sys and wasmtime for it.
if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  log "adding the x86_64-unknown-linux-musl target"
  rustup target add x86_64-unknown-linux-musl
fi
command -v musl-gcc >/dev/null || apt_install musl-tools
# The staging test in tests/tests/deployment.rs starts the built binary in a
# network namespace of its own (unshare) and brings up its loopback with ip.
command -v ip >/dev/null || apt_install iproute2

# The deployment tests validate mta.yaml with pykwalify. It goes into a
# virtual environment because Debian's Python rejects `pip install` outside
# one (PEP 668); the versions are the ones the tests were run with.
pykwalify_venv="$HOME/.cache/btp-gateway/tools/pykwalify"
if [ ! -x "$pykwalify_venv/bin/pykwalify" ]; then
  python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  log "installing pykwalify into $pykwalify_venv"
  python3 -m venv "$pykwalify_venv"
  "$pykwalify_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    'pykwalify==1.8.0' 'ruamel.yaml==0.19.1'
fi
