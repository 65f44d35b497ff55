#!/usr/bin/env bash
# The GPU checks, in one prepared script for a lent GPU machine (must finish in under 8 minutes):
#   bash benchmarks/gpu.sh            # on the GPU machine: installs the CUDA extra, then measures
#   bash benchmarks/gpu.sh --small    # a seconds-long check of the same code on a CPU
# Results: benchmarks/results/gpu_checks.json (and gpu_frozen_phase.json); copy the figures and
# the card's name into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" != "--small" ]]; then
  test -x .venv/bin/python || { python3.11 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e .; }
  .venv/bin/pip install -q -c constraints.txt "tensorflow[and-cuda]==2.21.0"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
exec timeout 470 .venv/bin/python -m benchmarks.gpu_checks "$@"
