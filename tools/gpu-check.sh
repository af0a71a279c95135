#!/usr/bin/env bash
# On a machine with a real NVIDIA GPU: NVML readings, the PTX compute probe (result and time), a
# health monitor pass, and whether an ONNX Runtime CUDA session loads, as one JSON report on
# stdout. Needs the repository installed (`npm ci`); takes well under 5 minutes.
#   bash tools/gpu-check.sh > gpu-report.json
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 280 node tools/use-node.mjs node --conditions=@marie/source --import tsx tools/gpu-check.ts
