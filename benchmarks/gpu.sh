#!/usr/bin/env bash
# The GPU checks, in one prepared script for a GPU machine (see benchmarks/gpu_checks.py for the list):
#   bash benchmarks/gpu.sh            # on the GPU machine: sets up TensorFlow with CUDA, then measures
#   bash benchmarks/gpu.sh --small    # a minutes-long check of the same code on a CPU (run by the tests)
# Results: benchmarks/results/gpu_checks.json, gpu_precision.json, gpu_rehearsal.json and
# gpu_frozen_phase.json; copy the figures and the card's name into BENCHMARKS.md.
# It needs TensorFlow 2.21 with CUDA on the machine: from PyPI when the machine reaches it, or installed
# beforehand (its wheel is hundreds of MB: it cannot travel with a 64 MiB working-tree copy).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" != "--small" ]]; then
  test -x .venv/bin/python || python3.11 -m venv .venv
  if ! .venv/bin/python -c "import tensorflow" 2>/dev/null; then
    .venv/bin/pip install -q -c constraints.txt -e . "tensorflow[and-cuda]==2.21.0" || {
      echo "gpu.sh: TensorFlow 2.21 with CUDA could not be installed here (no route to PyPI?); install it first" >&2
      exit 2
    }
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
exec timeout 470 .venv/bin/python -m benchmarks.gpu_checks "$@"
