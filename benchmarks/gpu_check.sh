#!/usr/bin/env bash
# A short paper-profile training on a CUDA GPU (under 5 minutes): images/s, GPU memory, and the
# projected time of the whole paper schedule. See benchmarks/gpu_check.py. Without CUDA it stops
# with one line. Extra arguments go to the script (e.g. --chips 2000 --out runs/gpu_check).
# Multi-GPU mode: `--gpus N` trains the same short schedule on 1 GPU and on N (torchrun) and prints
# images/s on both, the scaling efficiency and the paper schedule's projected time on N GPUs
# (benchmarks/gpu_scaling.py; under 15 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
module=benchmarks.gpu_check limit=300
for arg in "$@"; do
    if [ "$arg" = "--gpus" ]; then module=benchmarks.gpu_scaling limit=900; fi
done
exec timeout "$limit" "$PYTHON" -m "$module" "$@"
