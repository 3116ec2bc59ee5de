"""A short paper-profile training on a CUDA GPU: measured speed, memory, and the paper schedule's projected time.

    bash benchmarks/gpu_check.sh          (or: python -m benchmarks.gpu_check [--chips 4000] [--out DIR])

Under 5 minutes: synthetic-sar chips of MAVOC size (54-60 px, resized to the paper's 56 px),
fewer of them (default 4,000), the `paper` profile's settings otherwise (batch 128, 4 workers,
TTA 3), through all four stages with short epoch counts, via the course's own training loop
(helpers.method.stages / helpers.method.training), so it measures whatever that loop does on CUDA.

Prints training images/s of the whole-model stages (the first epoch, with cuDNN's autotuning,
is left out) and of the classifier-only stage 3b, the peak GPU memory, TTA inference images/s,
and the projected wall time of the whole paper schedule on the real MAVOC training set
(293,772 chips; stage 1 20 epochs, stage 2 100 epochs without class 0, stage 3a 20 and 3b 10
epochs of 50,000 balanced chips).  The anchor is the fact sheet's 16 GPU-hours on a 2080 Ti.
Without CUDA it stops at once with one line (exit status 2).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

FACT_SHEET_GPU_HOURS = 16.0           # the seed's training time, on one GeForce RTX 2080 Ti
# The short schedule of the check (the paper profile otherwise); benchmarks/gpu_scaling.py trains the same.
SHORT = dict(val_per_class=20, test_per_class=50, stage1_epochs=3, stage2_epochs=1, stage3_per_class=300,
             stage3a_epochs=1, stage3b_epochs=2, device="cuda")
NO_CUDA = ("error: benchmarks/gpu_check needs a CUDA GPU, and torch.cuda.is_available() is False here; "
           "run it on a machine with an NVIDIA GPU and a CUDA build of torch")


def paper_schedule() -> dict:
    """Images the paper's schedule trains on, per kind of stage (whole model / classifier only)."""
    from helpers.settings import config
    from helpers.datasets.synthetic_sar import MAVOC_TRAIN_COUNTS
    p = config.resolve("paper")
    total, tail = sum(MAVOC_TRAIN_COUNTS), sum(MAVOC_TRAIN_COUNTS[1:])
    balanced = 10 * p.stage3_per_class
    return {"whole model": p.stage1_epochs * total + p.stage2_epochs * tail + p.stage3a_epochs * balanced,
            "classifier only": p.stage3b_epochs * balanced}


def rate(history, skip_first: bool = True) -> float:
    rows = history.iloc[1:] if skip_first and len(history) > 1 else history
    return float(rows["images"].sum() / rows["seconds"].sum())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=4000, help="synthetic-sar training chips (default 4000)")
    parser.add_argument("--out", default=None, help="folder for the run and gpu_check.json (default: a tmp folder)")
    args = parser.parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gpu_check_"))
    os.environ.setdefault("SAR_DATA_DIR", str(out / "data"))
    from helpers.settings import config
    from helpers.method import inference, stages
    from helpers.datasets.data import load_data
    from helpers.method.training import seed_everything

    t_start = time.time()
    settings = config.resolve("paper", data_size=args.chips, **SHORT)
    t0 = time.time()
    bundle = load_data(settings)
    data_seconds = time.time() - t0
    run_dir = out / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(settings.seed)
    torch.cuda.reset_peak_memory_stats()
    _, h1 = stages.stage1(bundle, settings, run_dir, progress=False)
    _, h2 = stages.stage2(bundle, settings, run_dir, progress=False)
    _, h3a = stages.stage3a(bundle, settings, run_dir, progress=False)
    model, h3b = stages.stage3b(bundle, settings, run_dir, progress=False)
    inference.predict(model, bundle.test, k=settings.tta_views, device=torch.device("cuda"))   # warm-up
    torch.cuda.synchronize()
    t0 = time.time()
    inference.predict(model, bundle.test, k=settings.tta_views, device=torch.device("cuda"))
    torch.cuda.synchronize()
    infer_rate = len(bundle.test) / (time.time() - t0)
    peak_gib = torch.cuda.max_memory_allocated() / 2**30

    whole, head = rate(h1), rate(h3b)
    images = paper_schedule()
    projected_h = (images["whole model"] / whole + images["classifier only"] / head) / 3600
    anchor_rate = sum(images.values()) / (FACT_SHEET_GPU_HOURS * 3600)
    result = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "chips": len(bundle.train),
              "image_size": settings.image_size, "batch_size": settings.batch_size, "num_workers": settings.num_workers,
              "train_images_per_s_whole_model": whole, "train_images_per_s_classifier_only": head,
              "tta_images_per_s": infer_rate, "tta_views": settings.tta_views, "peak_gpu_memory_gib": peak_gib,
              "paper_schedule_images": images, "projected_paper_hours": projected_h,
              "fact_sheet_hours_2080ti": FACT_SHEET_GPU_HOURS, "fact_sheet_implied_images_per_s": anchor_rate,
              "data_seconds": data_seconds, "total_seconds": time.time() - t_start,
              "stage_seconds": {s: float(h["seconds"].sum()) for s, h in
                                (("stage1", h1), ("stage2", h2), ("stage3a", h3a), ("stage3b", h3b))}}
    config.save_json(result, out / "gpu_check.json")
    print(f"GPU: {result['gpu']} (torch {result['torch']}), {len(bundle.train):,} synthetic-sar chips at "
          f"{settings.image_size} px, batch {settings.batch_size}, {settings.num_workers} workers")
    print(f"training: {whole:,.0f} images/s (whole model), {head:,.0f} images/s (classifier only, stage 3b)")
    print(f"TTA inference ({settings.tta_views} views): {infer_rate:,.0f} chips/s; peak GPU memory {peak_gib:.2f} GiB")
    print(f"paper schedule on MAVOC ({sum(images.values()):,} training images): projected {projected_h:.1f} h here; "
          f"fact sheet: {FACT_SHEET_GPU_HOURS:g} GPU-hours on a 2080 Ti (= {anchor_rate:,.0f} images/s), "
          f"so this GPU runs at {whole / anchor_rate:.1f}x that rate")
    print(f"(data {data_seconds:.0f} s, total {result['total_seconds']:.0f} s; numbers in {out / 'gpu_check.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
