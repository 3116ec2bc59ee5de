"""CPU benchmark of the course's backbone: Shake-Shake-26 2x32d against torchvision's ResNet-50.

    python -m benchmarks.benchmark [--out runs/benchmark] [--threads 2] [--sizes 16 56] [--quick]

Measures, with a fixed number of torch threads and at each input size (default: the quick
profile's 16 px and the paper's 56 px):

1. size of the models: parameters, saved state_dict (MB = 1e6 bytes, MiB = 2**20 bytes), MACs/image
   (`benchmarks.models`);
2. eval-mode latency (batch 1: median and p90 after warm-up) and throughput (images/s, batch 256;
   64 above 32 px) with helpers.evidence.speed, exactly as notebook 04 measures them (`benchmarks.models`);
3. training throughput of Shake-Shake, raw against end to end through the real pipeline, plus a
   prototype of batched augmentation (`benchmarks.pipeline`);
4. CPU inference speed-ups for Shake-Shake in eval (`benchmarks.speedups`).

Writes <out>/benchmark.md (tables, `benchmarks.markdown`) and <out>/benchmark.json (raw numbers).
The machine may be busy: /proc/loadavg is recorded at the start and the end, and variants that are
compared to each other are timed round-robin so that a change in load hits them all alike.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

# Whether the user chose torch.compile's cache folder; read before importing torch, whose imports set a default.
USER_INDUCTOR_CACHE = os.environ.get("TORCHINDUCTOR_CACHE_DIR")

import torch  # noqa: E402

from helpers.settings.config import resolve, save_json   # noqa: E402
from helpers.datasets.data import load_data   # noqa: E402
from helpers.settings.paths import PROJECT_ROOT, resolve_path   # noqa: E402

from .common import FULL, QUICK, T0, log  # noqa: E402
from .machine import machine_info, read_loadavg  # noqa: E402
from .markdown import write_markdown  # noqa: E402
from .models import bench_models  # noqa: E402
from .pipeline import bench_train  # noqa: E402
from .speedups import bench_speedups  # noqa: E402


def chips_for(size: int, data_size: int | None):
    """The quick profile's data at `size` px: (bundle, eval-transformed test images)."""
    settings = resolve("quick", image_size=size, data_size=data_size)
    bundle = load_data(settings)
    test = bundle.test
    x = torch.stack([test[i][0] for i in range(len(test))])
    return settings, bundle, x


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="output folder, relative to the project root "
                    "(default runs/benchmark; runs/benchmark-quick with --quick, so a check never overwrites a full run)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 56], help="input sizes in px")
    ap.add_argument("--train-sizes", type=int, nargs="+", default=None,
                    help="sizes for the training benchmark (default: the quick profile's image size, 16)")
    ap.add_argument("--data-size", type=int, default=None, help="synthetic-sar training images (default: the quick profile's)")
    ap.add_argument("--compile", choices=("auto", "on", "off"), default="auto", help="torch.compile variant (auto: on unless --quick)")
    ap.add_argument("--quick", action="store_true", help="tiny repeat counts, to check the script (< 1 minute)")
    args = ap.parse_args(argv)
    do_compile = args.compile == "on" or (args.compile == "auto" and not args.quick)
    # torch.compile's on-disk caches go to a fresh folder (unless the user set one), so that the first compile is a
    # cold one (importing torch already put the default folder into the environment; inductor reads it when used).
    own_cache, before = None, os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if do_compile and USER_INDUCTOR_CACHE is None:
        own_cache = os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="benchmark-inductor-")
    try:
        return _run(args, argv, do_compile, "a fresh temporary folder" if own_cache else
                    f"TORCHINDUCTOR_CACHE_DIR={USER_INDUCTOR_CACHE}, as set by the user")
    finally:
        if own_cache:
            if before is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = before
            shutil.rmtree(own_cache, ignore_errors=True)


def _run(args, argv, do_compile: bool, compile_cache: str) -> dict:
    torch.set_num_threads(args.threads)
    P = dict(QUICK if args.quick else FULL)
    train_sizes = args.train_sizes or [resolve("quick").image_size]
    out = resolve_path(args.out or ("runs/benchmark-quick" if args.quick else "runs/benchmark"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        python = os.path.relpath(sys.executable, PROJECT_ROOT)
        python = python if not python.startswith("..") else sys.executable
    except ValueError:
        python = sys.executable
    R = {"command": " ".join([python, "-m", "benchmarks.benchmark", *(argv if argv is not None else sys.argv[1:])]),
         "quick": args.quick, "sizes": args.sizes, "train_sizes": train_sizes, "params": P, "compile": do_compile,
         "compile_cache": compile_cache if do_compile else None,
         "machine": machine_info(args.threads)}
    log(f"machine: {R['machine']['cpu']}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load {R['machine']['loadavg_start']}")

    data = {}
    for s in sorted(set(args.sizes) | set(train_sizes)):
        data[s] = chips_for(s, args.data_size)
        log(f"data at {s}px: {len(data[s][1].train)} train / {len(data[s][2])} test chips")
    test_x = {s: data[s][2] for s in data}

    R["models"] = bench_models(args.sizes, test_x, P)
    R["train"] = {}
    for s in train_sizes:
        settings, bundle, _ = data[s]
        R["train"][str(s)] = bench_train(s, bundle, settings, P)
    R["speedups"] = {}
    for s in args.sizes:
        R["speedups"][str(s)] = bench_speedups(s, test_x[s], P, do_compile)

    R["machine"]["loadavg_end"] = read_loadavg()
    R["machine"]["wall_s"] = time.perf_counter() - T0
    save_json(R, out / "benchmark.json")
    write_markdown(out / "benchmark.md", R)
    log(f"wrote {out / 'benchmark.md'} and {out / 'benchmark.json'} (load at end {R['machine']['loadavg_end']})")
    return R



if __name__ == "__main__":
    main()
