#!/usr/bin/env bash
# Builds a self-contained tarball of the client (`orchestrator`) and the silo host for Linux x64 GPU
# hosts that have PyTorch (or libtorch) but no .NET: TorchBackend=system, started via with-system-torch.
#
#   deploy/package.sh [OUTPUT.tar.xz]      (default: artifacts/orchestrator-linux-x64.tar.xz)
#
# On the GPU host:  tar xJf orchestrator-linux-x64.tar.xz && cd orchestrator && ./with-system-torch ./orchestrator gpu-check
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-artifacts/orchestrator-linux-x64.tar.xz}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

for project in src/Client src/Silo; do
  dotnet publish "$project" -c Release -r linux-x64 --self-contained -p:TorchBackend=system \
    -o "$stage/orchestrator" --nologo -v quiet
done
# No libtorch of our own may travel: mixing it with the host's CUDA libtorch is unsafe.
if find "$stage/orchestrator" -name 'libtorch*.so' | grep -q .; then
  echo "package.sh: a libtorch library ended up in the package; refusing to ship it" >&2
  exit 1
fi
# The systemd unit template for running a silo from this package (deploy/systemd, docs/deploy.md).
mkdir -p "$stage/orchestrator/systemd"
cp deploy/systemd/orchestrator-silo@.service "$stage/orchestrator/systemd/"
mkdir -p "$(dirname "$out")"
tar -C "$stage" -cf - orchestrator | xz -T0 -6 > "$out"
echo "$out ($(du -h "$out" | cut -f1))"
