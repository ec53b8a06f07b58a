#!/usr/bin/env bash
# The GPU measurements of issue #15 in one prepared script: the matmul sweep, training of the
# 25 M, ~150 M and ~1 B LLaMAs on WebGPU beside the device's PyTorch (eager fp32 and bf16), and
# codec-gpu, each under its own time limit so the whole run stays under 8 minutes. Matmul and
# training run on WebGPU in f32 and, where the device has shader-f16, with f16 operands
# (--precision f16), paired with PyTorch fp32 and bf16 respectively. Within the train part's
# limit each model trains four times (PyTorch fp32, bf16; ours f32, f16), models in order of
# size, so if the limit is hit it is the 1 B model's last runs that are cut.
#
# The GPU machine has no network, no Bun and no Node (../shared/reference/toolchain.md), so:
#
#   bench/device.sh prepare            HERE (Bun, network): bundles the benches for Node into
#                                      .carry/device/ and puts beside them the xz'd Node binary,
#                                      the `webgpu` package's linux-x64 Dawn and the Vulkan
#                                      loader's .deb (.carry/ is git-ignored; about 35 MB)
#   bench/device.sh run [--dry-run] [--out FILE]
#                                      THERE (carry .carry/device): unpacks Node and the loader,
#                                      runs everything, writes the table to FILE (default
#                                      $OUT/device-results.md when $OUT is set, else
#                                      .carry/device/results.md) and the full log beside it
#
# --dry-run: the same path end to end at toy sizes (debug model, 256-wide matmul, a 2-layer
# codec model, PyTorch on the CPU), to check the script on a machine without a GPU (lavapipe):
# about a minute.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=.carry/device
mode=${1:-}
shift || true

if [ "$mode" = prepare ]; then
  set -e
  rm -rf "$DIR" && mkdir -p "$DIR/node_modules/webgpu/dist" "$DIR/debs"
  for b in matmul train codec-gpu; do
    npx bun build "bench/$b.ts" --target=node --format=esm --outfile "$DIR/$b.mjs" \
      --external webgpu --external bun-webgpu --external bun:ffi >/dev/null
  done
  cp bench/torch_train.py "$DIR/"
  # gemmWorker.ts is only started by the fast CPU backend, which the device run does not use
  cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$DIR/node_modules/webgpu/"
  mkdir -p "$DIR/node_modules/webgpu/dist/linux-x64"
  # xz'd: 21 MB -> ~6 MB of the 64 MiB that travel; `run` unpacks it in place
  xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node >"$DIR/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
  xz -T0 -6 -c "$(command -v node)" >"$DIR/node.xz"
  # the Vulkan loader (the NVIDIA driver brings the ICD); amd64 whatever this machine is
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists'
  mkdir -p /tmp/amd64-lists/partial
  # shellcheck disable=SC2086
  apt-get $o update >/dev/null && (cd "$DIR/debs" && apt-get $o download libvulkan1 >/dev/null)
  du -sh "$DIR"
  echo "prepared $DIR: carry it (run's carry: [\"$DIR\"]) and run: bench/device.sh run"
  exit 0
fi

if [ "$mode" != run ]; then
  echo "usage: bench/device.sh prepare | run [--dry-run] [--out FILE]" >&2
  exit 2
fi

dry=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --out) out=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -f "$DIR/train.mjs" ] || { echo "$DIR is missing: run bench/device.sh prepare first (and carry $DIR)" >&2; exit 2; }
if [ -z "$out" ]; then
  if [ -n "${OUT:-}" ]; then out=$OUT/device-results.md; else out=$DIR/results.md; fi
fi
log=${out%.md}.log
: >"$log"
started=$(date +%s)

# Node: the carried one (a machine that has a node of its own uses it only in --dry-run)
NODE=/tmp/covenant-node/node
if [ ! -x "$NODE" ]; then
  mkdir -p /tmp/covenant-node && xz -dc "$DIR/node.xz" >"$NODE" && chmod +x "$NODE"
fi
dawn=$DIR/node_modules/webgpu/dist/linux-x64/dawn.node
[ -f "$dawn" ] || xz -dc "$dawn.xz" >"$dawn"
# Vulkan loader: unpacked into / only where none is installed (the device README's way)
if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then
  for f in "$DIR"/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
export COVENANT_WEBGPU_BINDING=webgpu
export COVENANT_TORCH_SCRIPT=$ROOT/$DIR/torch_train.py
# the python that has torch (there: the plain python3; here Debian's /usr/bin/python3)
PY=${TORCH_PYTHON:-}
if [ -z "$PY" ]; then
  for p in python3 /usr/bin/python3; do
    if "$p" -c 'import torch' 2>/dev/null; then PY=$p; break; fi
  done
fi
export TORCH_PYTHON=${PY:=python3}

if [ $dry = 1 ]; then
  tdev=cpu; models=debug; msizes=256; mmax=256; codec=(--layers 2 --no-embed --repeat 1); steps=1; tthreads=1
  limits=(60 60 60)
else
  tdev=cuda; models=25m,150m,1b; msizes=1024,2048,4096,8192; mmax=8192; codec=(--repeat 2); steps=3; tthreads=16
  # seconds per part, 450 in all (+ start-up), so the run ends well inside 8 minutes
  limits=(90 270 90)
fi

# run NAME LIMIT ARGS...: one bench under `timeout`, its output appended to the log
run() {
  local name=$1 limit=$2
  shift 2
  echo "=== $name (limit ${limit}s): node $*" | tee -a "$log"
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$NODE" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $(( $(date +%s) - t0 )) s" | tee -a "$log"
  status+=("| $name | $rc | $(( $(date +%s) - t0 )) s |")
}
status=()

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } | sed 's/^/gpu: /' | tee -a "$log"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | sed 's/^/pytorch: /' | tee -a "$log"

run matmul "${limits[0]}" "$DIR/matmul.mjs" --backends=webgpu --sizes=$msizes --max=$mmax --min-seconds=0.5 --precision=f16 \
  --vs-torch --torch-device=$tdev --torch-dtypes=fp32,bf16 --torch-threads=$tthreads
run train "${limits[1]}" "$DIR/train.mjs" --backends webgpu --models $models --steps $steps --precision f16 \
  --vs-torch --torch-device $tdev --torch-dtypes fp32,bf16 --torch-threads $tthreads
run codec-gpu "${limits[2]}" "$DIR/codec-gpu.mjs" "${codec[@]}"

# the table: every measured line that a bench prints as a result, nothing else
{
  echo "# bench/device.sh $( [ $dry = 1 ] && echo '--dry-run ')results, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  grep -m1 '^gpu: ' "$log" | sed 's/^/- /'
  grep -m1 '^pytorch: ' "$log" | sed 's/^/- /'
  grep -m1 -o 'adapter[^]]*' "$log" | head -1 | sed 's/^/- WebGPU /'
  echo "- total $(( $(date +%s) - started )) s"
  echo
  echo "| part | exit | seconds |"
  echo "|---|---|---|"
  printf '%s\n' "${status[@]}"
  echo
  echo "## matmul (GFLOP/s; ratio to PyTorch on the same device, same run: f32 to fp32, f16 to bf16)"
  echo '```'
  sed -n '/^=== matmul (/,/^=== matmul:/p' "$log" | grep -E 'n=|^matmul on|ratio|PyTorch:' || true
  echo '```'
  echo "## train (tokens/s; forward + backward + clip + AdamW; f16: linear layers on f16 operands, ratio to PyTorch bf16 autocast)"
  echo '```'
  sed -n '/^=== train (/,/^=== train:/p' "$log" | grep -E 'tokens/s|^  [a-z0-9]+: |PyTorch:' || true
  echo '```'
  echo "## codec-gpu"
  echo '```'
  sed -n '/^=== codec-gpu (/,/^=== codec-gpu:/p' "$log" | grep -v '^===' || true
  echo '```'
} >"$out"
echo "table: $out (log: $log), $(( $(date +%s) - started )) s in all"
# what travels stays small: the unpacked Dawn is dropped again here (there the machine goes back)
[ $dry = 1 ] && rm -f "$dawn"
exit 0
