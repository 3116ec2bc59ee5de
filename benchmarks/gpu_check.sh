#!/usr/bin/env bash
# A short paper-profile training on a CUDA GPU (under 5 minutes): images/s, GPU memory, and the
# projected time of the whole paper schedule. See benchmarks/gpu_check.py. Without CUDA it stops
# with one line. Extra arguments go to the script (e.g. --chips 2000 --out runs/gpu_check).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 300 "$PYTHON" -m benchmarks.gpu_check "$@"
