#!/usr/bin/env bash
# The GPU suite: unpack the package made by deploy/package.sh on a GPU host and run the kernel
# correctness check and the benchmarks; logs and tables go to $OUT (default ./gpu-results).
#
#   deploy/gpu/suite.sh [PACKAGE.tar.xz] [STEP...]     steps: kernels check cluster-check bench bench-fp16 step step-ab
#                                                      scaling transport-bench train checkpoint transport features
#                                                      (default: check bench; step-ab needs BASELINE, see below)
set -uo pipefail
repo=$(pwd)
package=$(realpath "${1:-.carry/orchestrator-linux-x64.tar.xz}")
shift || true
steps=${*:-check bench}
out=$(realpath -m "${OUT:-gpu-results}")
baseline=${BASELINE:+$(realpath "$BASELINE")}   # step-ab's baseline build, resolved before the suite changes directory
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
  local program=(./with-system-torch ./orchestrator)
  [ "$1" = python3 ] && program=()
  echo "=== $name: ${program[*]} $*"
  "${program[@]}" "$@" > >(tee "$out/$name.log") 2>&1 || { echo "=== $name FAILED"; status=1; }
}
for step in $steps; do
  case $step in
    kernels)    # every CUDA source as NVRTC sees it (dtypes.cuh first), through nvcc for sm_90: errors and registers
                for f in "$repo"/src/Kernels/Cuda/*.cu; do
                  cat "$repo/src/Kernels/Cuda/dtypes.cuh" "$f" > "$work/$(basename "$f")"
                  echo "=== nvcc $(basename "$f")"
                  nvcc -arch=sm_90 -std=c++17 -cubin -Xptxas -v -o "$work/$(basename "$f").cubin" "$work/$(basename "$f")" 2>&1 |
                    tee -a "$out/kernels.log" || status=1
                done ;;
    check)      run gpu-check gpu-check --cluster --output "$out/gpu-check.md" ;;
    cluster-check) run gpu-check-cluster gpu-check --quick --dtypes f32,f64 --cluster --output "$out/gpu-check-cluster.md" ;;
    bench)      run bench-bf16 bench --json "$out/bench-bf16.json"
                run bench-bf16-repeat bench --json "$out/bench-bf16-repeat.json" ;;
    bench-fp16) run bench-fp16 bench --dtype f16 --json "$out/bench-fp16.json" ;;
    transport-bench) run bench-transport bench-transport --sizes 1,8,32,64
                run bench-transport-1 bench-transport --sizes 1,8,32,64 --connections 1
                run bench-transport-chunk1m bench-transport --sizes 1,8,32,64 --chunk-kib 1024
                run bench-transport-8x1m bench-transport --sizes 1,8,32,64 --chunk-kib 1024 --connections 8 ;;
    step)       # ours and the same step in eager PyTorch, side by side in one call
                run bench-step bench-step --device cuda:0 --dtype bfloat16 --memory-steps 1000
                run step-reference python3 "$repo/deploy/gpu/step_reference.py" ;;
    step-ab)    # bench-step of this package and of a baseline build, alternately in one call (a refactor's before and
                # after): BASELINE is a tarball of the baseline's own files of orchestrator/ (its Orchestrator*.dll,
                # orchestrator*, *.deps.json, *.runtimeconfig.json), laid over a copy of this package
                cp -a "$work/orchestrator" "$work/baseline"
                tar -C "$work/baseline" -xJf "${baseline:?step-ab needs BASELINE=overlay.tar.xz}" || exit 1
                for round in 1 2; do
                  pushd "$work/baseline" >/dev/null
                  run "bench-step-baseline-$round" bench-step --device cuda:0 --dtype bfloat16
                  popd >/dev/null
                  run "bench-step-current-$round" bench-step --device cuda:0 --dtype bfloat16
                done ;;
    scaling)    run bench-scaling bench-scaling ;;   # every GPU of the host; with one, two workers share it
    train)      run train-gpu train --local-devices cuda:0 --devices cuda:0 --steps 300 ;;
    checkpoint) # checkpoints written on the GPU, then read the way PyTorch users will
                for dtype in bfloat16 float32; do
                  run "checkpoint-$dtype" train --name "ckpt-$dtype" --dtype "$dtype" --local-devices cuda:0 --devices cuda:0 \
                    --steps 40 --checkpoint-dir "$work/ckpt" --checkpoint-every 20
                  run "verify-$dtype" python3 "$repo/tools/verify_checkpoint.py" "$work/ckpt/ckpt-$dtype/step-000000040"
                done ;;
    transport)  # two silos sharing the GPU; the remote worker over each transport: two silos of this process for
                # message, channel and process, this process and a silo process beside it for ipc
                for transport in message channel process ipc; do
                  layout=(--local-silos 2)
                  [ "$transport" = ipc ] && layout=(--local-silos 1 --local-processes 1)
                  run "transport-$transport" train --name "t-$transport" "${layout[@]}" --local-devices cuda:0 --devices cuda:0 \
                    --transport "$transport" --groups 12 --features 256 --input 256 --hidden 512 --output 256 --batch-size 2048 --steps 60
                done ;;
    features)   # the training options on the GPU (bf16): weighted BCE, a cosine schedule, clipping, validation and early
                # stopping on a generated file, TensorBoard; then predict on the GPU and export to ONNX from its checkpoint
                python3 - "$work/clicks.safetensors" <<'PY'
import json, struct, sys, torch
g = torch.Generator().manual_seed(7)
f = torch.randn(60000, 32, generator=g)
t = (torch.rand(60000, 4, 16, generator=g) < torch.sigmoid(f[:, :4, None] * 2)).float()   # learnable labels
tensors = {"features": f, "targets": t}
header, offset, blobs = {}, 0, []
for name, x in tensors.items():
    b = x.numpy().tobytes(); header[name] = {"dtype": "F32", "shape": list(x.shape), "data_offsets": [offset, offset + len(b)]}
    offset += len(b); blobs.append(b)
h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PY
                run features-train train --name clicks --local-devices cuda:0 --devices cuda:0 --dtype bfloat16 \
                  --data-path "$work/clicks.safetensors" --loss bce --loss-weights 1,2,1,0.5 --val-fraction 0.1 --eval-every 100 \
                  --early-stop-patience 5 --lr 3e-3 --warmup-steps 50 --lr-schedule cosine --min-lr 1e-5 --clip-norm 1 \
                  --steps 600 --checkpoint-dir "$work/ckpt" --logdir "$out/tb-clicks"
                run features-predict predict --checkpoint "$work/ckpt/clicks" --best --data "$work/clicks.safetensors" \
                  --output "$work/preds.safetensors" --device cuda:0
                run features-export export --checkpoint "$work/ckpt/clicks" --onnx "$out/clicks.onnx"
                run features-tensorboard python3 -c 'import sys, glob
try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError:
    print("tensorboard is not installed here: event files not read back"); sys.exit(0)
acc = EventAccumulator(sys.argv[1]); acc.Reload()
for tag in acc.Tags()["scalars"]:
    s = acc.Scalars(tag); print(tag, len(s), "wall", s[0].wall_time, "->", s[-1].wall_time, "last", s[-1].value)' "$out/tb-clicks" ;;
    *) echo "unknown step $step"; status=1 ;;
  esac
done
exit $status
