"""The GPU check's multi-GPU mode: training images/s on 1 and on N GPUs, the scaling efficiency, and the
paper schedule's projected wall time on N GPUs.

    bash benchmarks/gpu_check.sh --gpus 4        (or: python -m benchmarks.gpu_scaling --gpus 4 [--chips 4000] [--out DIR])

The short paper-profile training of benchmarks/gpu_check.py (its `SHORT` schedule on synthetic-sar chips),
trained twice by the course's own command, `helpers.train --method three-stage`: in one process on GPU 0,
then under torchrun on GPUs 0..N-1 (NCCL, SyncBatchNorm on, as the settings say). By default both keep the
paper's global batch of 128 (128 / N a GPU: the run a course user makes, whose numbers equal one GPU's);
`--batch-per-gpu B` instead gives every GPU B images (a global batch of B x N, the learning rates scaled
linearly from 128 with `lr_reference_batch`), which measures how far the hardware scales. Rates leave out
each stage's first epoch (cuDNN's autotuning, the workers' start). Efficiency = rate on N / (N x rate on 1).
Without N CUDA GPUs it stops at once with one line (exit status 2). Not run where it was written (no CUDA).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks.gpu_check import FACT_SHEET_GPU_HOURS, SHORT, paper_schedule, rate

ROOT = Path(__file__).resolve().parents[1]
PAPER_BATCH = 128


def need_gpus(n: int) -> str | None:
    """The one-line error when this machine has fewer than `n` CUDA GPUs, else None."""
    import torch
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if have >= n:
        return None
    return (f"error: benchmarks/gpu_check --gpus {n} needs {n} CUDA GPUs, and torch sees {have} here; "
            f"run it on a machine with {n} NVIDIA GPUs and a CUDA build of torch")


def command(run: Path, gpus: int, chips: int, batch_per_gpu: int | None) -> list[str]:
    """`helpers.train` for the short schedule on `gpus` GPUs (torchrun when more than one)."""
    launch = [] if gpus == 1 else ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(gpus)]
    settings = {"data_size": chips, **SHORT}
    if batch_per_gpu:
        settings.update(batch_size=batch_per_gpu * gpus, lr_reference_batch=PAPER_BATCH)
    flags = [x for k, v in settings.items() for x in ("-p", k, str(v))]
    return [sys.executable, *launch, "-m", "helpers.train", "--run-dir", str(run), "--profile", "paper",
            "--method", "three-stage", *flags]


def rates(run: Path) -> dict:
    """Images/s of the whole-model stages (stage 1) and of the classifier only (stage 3b), from metrics.csv."""
    read = lambda stage: pd.read_csv(run / stage / "metrics.csv")
    return {"whole model": rate(read("stage1")), "classifier only": rate(read("stage3b"))}


def projected_hours(r: dict) -> float:
    images = paper_schedule()
    return (images["whole model"] / r["whole model"] + images["classifier only"] / r["classifier only"]) / 3600


def efficiency(rate_n: float, rate_1: float, n: int) -> float:
    return rate_n / (n * rate_1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_scaling", description=__doc__.splitlines()[0])
    p.add_argument("--gpus", type=int, required=True, help="N: GPUs of the data-parallel run (>= 2)")
    p.add_argument("--chips", type=int, default=4000, help="synthetic-sar training chips (default 4000)")
    p.add_argument("--batch-per-gpu", type=int, help="every GPU this many images (default: the global batch of 128, split)")
    p.add_argument("--out", default=None, help="folder for the runs and gpu_scaling.json (default: a tmp folder)")
    a = p.parse_args(argv)
    if a.gpus < 2:
        p.error("--gpus must be 2 or more (one GPU: bash benchmarks/gpu_check.sh)")
    missing = need_gpus(a.gpus)
    if missing:
        print(missing, file=sys.stderr)
        return 2
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="gpu_scaling_"))
    env = {**os.environ, "SAR_DATA_DIR": os.environ.get("SAR_DATA_DIR", str(out / "data")), "TQDM_DISABLE": "1"}
    measured = {}
    for n in (1, a.gpus):
        run = out / f"gpus{n}"
        print(f"== training on {n} GPU(s): {run}", flush=True)
        done = subprocess.run(command(run, n, a.chips, a.batch_per_gpu), cwd=ROOT, capture_output=True, text=True,
                              env={**env, "CUDA_VISIBLE_DEVICES": ",".join(map(str, range(n)))})
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"error: the {n}-GPU training failed (exit {done.returncode}): {tail}", file=sys.stderr)
            return 1
        measured[n] = rates(run)
    one, many = measured[1], measured[a.gpus]
    result = {"gpus": a.gpus, "chips": a.chips, "batch_per_gpu": a.batch_per_gpu or PAPER_BATCH / a.gpus,
              "images_per_s_1_gpu": one, f"images_per_s_{a.gpus}_gpus": many,
              "efficiency_whole_model": efficiency(many["whole model"], one["whole model"], a.gpus),
              "efficiency_classifier_only": efficiency(many["classifier only"], one["classifier only"], a.gpus),
              "projected_paper_hours_1_gpu": projected_hours(one),
              f"projected_paper_hours_{a.gpus}_gpus": projected_hours(many),
              "fact_sheet_hours_2080ti": FACT_SHEET_GPU_HOURS}
    from helpers.settings import config
    config.save_json(result, out / "gpu_scaling.json")
    print(f"whole model: {one['whole model']:,.0f} images/s on 1 GPU, {many['whole model']:,.0f} on {a.gpus} "
          f"(efficiency {result['efficiency_whole_model']:.0%}); classifier only: {one['classifier only']:,.0f} and "
          f"{many['classifier only']:,.0f} ({result['efficiency_classifier_only']:.0%})")
    print(f"paper schedule on MAVOC: projected {result['projected_paper_hours_1_gpu']:.1f} h on 1 GPU, "
          f"{result[f'projected_paper_hours_{a.gpus}_gpus']:.1f} h on {a.gpus} (fact sheet: "
          f"{FACT_SHEET_GPU_HOURS:g} GPU-hours on a 2080 Ti); numbers in {out / 'gpu_scaling.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
