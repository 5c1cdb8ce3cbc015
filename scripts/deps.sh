#!/usr/bin/env bash
# Installs the Debian packages Shoal needs to build and test, when they are missing (Debian 12; root or sudo).
set -euo pipefail
pkgs=(build-essential cmake ninja-build clang-14 lld-14 libclang-rt-14-dev wasi-libc libclang-rt-14-dev-wasm32
      wabt libcjson-dev libcmocka-dev libpcre2-dev nettle-dev libxxhash-dev python3 python3-numpy python3-regex nodejs valgrind)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "shoal: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
