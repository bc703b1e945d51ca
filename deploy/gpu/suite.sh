#!/usr/bin/env bash
# The GPU suite: unpack the package made by deploy/package.sh on a GPU host and run the kernel
# correctness check and the benchmarks; logs and tables go to $OUT (default ./gpu-results).
#
#   deploy/gpu/suite.sh [PACKAGE.tar.xz] [STEP...]     steps: check bench bench-fp16 train (default: check bench)
set -uo pipefail
package=$(realpath "${1:-.carry/orchestrator-linux-x64.tar.xz}")
shift || true
steps=${*:-check bench}
out=$(realpath -m "${OUT:-gpu-results}")
mkdir -p "$out"

work=$(mktemp -d)
tar -C "$work" -xJf "$package" || exit 1
cd "$work/orchestrator"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/device.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$out/device.txt"
date -u +%Y-%m-%dT%H:%MZ | tee -a "$out/device.txt"

status=0
run() {
  local name=$1; shift
  echo "=== $name: orchestrator $*"
  ./with-system-torch ./orchestrator "$@" > >(tee "$out/$name.log") 2>&1 || { echo "=== $name FAILED"; status=1; }
}
for step in $steps; do
  case $step in
    check)      run gpu-check gpu-check --cluster --output "$out/gpu-check.md" ;;
    bench)      run bench-bf16 bench --json "$out/bench-bf16.json"
                run bench-bf16-repeat bench --json "$out/bench-bf16-repeat.json" ;;
    bench-fp16) run bench-fp16 bench --dtype f16 --json "$out/bench-fp16.json" ;;
    train)      run train-gpu train --local-devices cuda:0 --devices cuda:0 --steps 300 ;;
    *) echo "unknown step $step"; status=1 ;;
  esac
done
exit $status
