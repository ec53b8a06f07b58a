#!/usr/bin/env bash
# Installs the system packages the project needs, when they are missing:
#  - Mesa >= 25 lavapipe (a CPU Vulkan driver Dawn accepts; Debian 12's own Mesa 22 is rejected),
#    from bookworm-backports, so WebGPU runs on machines without a GPU (`npm start` and the tests);
#  - Chromium, which opens the HTML run report in a test and runs a peer in a tab (headless, SwiftShader WebGPU);
#  - numpy for some python3, which cross-checks our .npy and safetensors files in a test.
# Usage: ensure-system.sh [all|webgpu]: `webgpu` (npm start) installs only the Vulkan driver,
# `all` (npm test, the default) everything above.
# Idempotent and quiet when all is present. Without root it prints exactly what is missing.
set -euo pipefail
scope="${1:-all}"
case "$scope" in all|webgpu) ;; *) echo "usage: ensure-system.sh [all|webgpu]" >&2; exit 2 ;; esac

have_mesa() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 25
}
have_chromium() { [ "$scope" = webgpu ] || command -v chromium >/dev/null 2>&1; }
have_numpy() {
  [ "$scope" = webgpu ] && return 0
  local py
  for py in python3 /usr/bin/python3; do "$py" -c "import numpy" >/dev/null 2>&1 && return 0; done
  return 1
}

missing=()
have_mesa || missing+=("mesa-vulkan-drivers>=25 (bookworm-backports)")
have_chromium || missing+=("chromium")
have_numpy || missing+=("python3-numpy")
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "covenant-ts: missing system packages: ${missing[*]}" >&2
  echo "  As root on Debian 12: add a bookworm-backports source, then" >&2
  echo "  apt-get install -t bookworm-backports mesa-vulkan-drivers && apt-get install chromium python3-numpy" >&2
  echo "  (the tests that need them fail, saying so; COVENANT_ALLOW_NO_GPU=1, COVENANT_ALLOW_NO_CHROMIUM=1" >&2
  echo "  and COVENANT_ALLOW_NO_NUMPY=1 skip them instead)" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo "covenant-ts: installing system packages: ${missing[*]}"
if ! have_mesa && [ ! -f /etc/apt/sources.list.d/backports.sources ]; then
  # Same URI and key as the machine's main Debian source, suite bookworm-backports.
  awk 'BEGIN{RS="";ORS="\n\n"} NR==1' /etc/apt/sources.list.d/debian.sources \
    | sed 's/^Suites:.*/Suites: bookworm-backports/' > /etc/apt/sources.list.d/backports.sources
fi
apt-get update -qq
have_mesa || apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
have_chromium || apt-get install -y -qq --no-install-recommends chromium >/dev/null
have_numpy || apt-get install -y -qq --no-install-recommends python3-numpy >/dev/null
echo "covenant-ts: system packages ready"
