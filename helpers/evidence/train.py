"""Train stage folders of a run folder from the command line: in one process, or data-parallel on N
processes with torchrun (one GPU each, or CPU processes with gloo).

    python -m helpers.train --run-dir runs/mine --stage stage1                               # one process
    torchrun --nproc-per-node 4 -m helpers.train --run-dir runs/mine --method three-stage      # 4 GPUs
    torchrun --nproc-per-node 8 -m helpers.train --run-dir runs/paper --profile paper --data /data/mavoc --method all
    torchrun --nproc-per-node 2 -m helpers.train --run-dir runs/mine --stage stage1 -p sync_batchnorm false

`--stage` names stage folders (stage1, stage2, stage3a, stage3b, plain, crt, lws, crt_frozen_bn,
lws_frozen_bn, balanced_softmax, ldam_drw, and the folders of the other paths, e.g. stage3a_from1); `--method` a method of the comparison (its whole path, e.g. "three-stage"), or
"all" for every folder the comparison trains. A stage resumes from its checkpoint, and a finished one
is only loaded, so the same command continues an interrupted training. The run folder is the course's:
the notebooks open it as if one process had trained it (helpers/method/distributed.py says why the
numbers are those of one process). The profile is the run folder's own when it has one.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from ..datasets.data import load_data
from ..method import distributed, runs, stages
from ..method.devices import pick_device
from ..publishing import cli
from ..settings.config import SettingsError
from ..settings.paths import resolve_path
from . import experiments, rebalancing

SPECIAL = {   # stage folders that are not one of the three-stage method's stages on another path
    "plain": experiments.train_plain,
    "ldam_drw": experiments.train_ldam_drw,
    "crt": lambda b, s, r, progress: rebalancing.train_crt(b, s, r, stages.steps_of(b, s, "crt"), progress),
    "lws": lambda b, s, r, progress: rebalancing.train_lws(b, s, r, stages.steps_of(b, s, "lws"), progress),
    "crt_frozen_bn": lambda b, s, r, progress: rebalancing.train_crt(b, s, r, stages.steps_of(b, s, "crt_frozen_bn"),
                                                                     progress, "crt_frozen_bn", "frozen"),
    "lws_frozen_bn": lambda b, s, r, progress: rebalancing.train_lws(b, s, r, stages.steps_of(b, s, "lws_frozen_bn"),
                                                                     progress, "lws_frozen_bn", "frozen"),
    "balanced_softmax": experiments.train_balanced_softmax,
}
KINDS = {"stage1": stages.stage1, "stage2": stages.stage2, "stage3a": stages.stage3a, "stage3b": stages.stage3b}


def sources() -> dict:
    """Each stage folder's starting model: the folder before it on its method's path (experiments.METHODS)."""
    out = {}
    for spec in experiments.METHODS.values():
        out.update({b: a for a, b in zip(spec["path"], spec["path"][1:])})
    return out


def every_folder() -> list[str]:
    """Every stage folder of the comparison, each after the folder it starts from."""
    return list(dict.fromkeys(st for spec in experiments.METHODS.values() for st in spec["path"]))


def folders_to_train(stage_names, method: str | None) -> list[str]:
    if method == "all":
        return every_folder()
    if method is not None:
        if method not in experiments.METHODS:
            raise SettingsError(f"unknown method {method!r}; valid: all, {', '.join(experiments.METHODS)}")
        return list(experiments.METHODS[method]["path"])
    unknown = [st for st in stage_names if st not in every_folder()]
    if unknown:
        raise SettingsError(f"unknown stage folder(s) {', '.join(unknown)}; valid: {', '.join(every_folder())}")
    return list(stage_names)


def train_folder(folder: str, bundle, settings, run_dir, progress: bool = True):
    """Train (or resume, or just load) one stage folder, as the comparison does."""
    if folder in SPECIAL:
        return SPECIAL[folder](bundle, settings, run_dir, progress=progress)
    kind = stages.plan(bundle, settings)[folder]["made_of"][0]
    kwargs = {} if folder == kind else {"source": sources()[folder], "stage": folder}
    return KINDS[kind](bundle, settings, run_dir, progress=progress, **kwargs)


def saved_profile(run_dir) -> str | None:
    path = resolve_path(run_dir) / "config.json"
    try:
        return json.loads(path.read_text())["profile"] if path.is_file() else None
    except (ValueError, KeyError, TypeError):
        return None                      # open_run says what is wrong with it


def run(run_dir, stage_names, method, profile, overrides: dict) -> None:
    folders = folders_to_train(stage_names, method)
    profile = profile or saved_profile(run_dir) or "quick"
    _, wanted = runs.open_run(run_dir, profile, write=False, **overrides)   # read only: the device the run trains on
    group = distributed.init(pick_device(wanted.device))
    main = group is None or group.main
    try:
        if not main:
            group.barrier()              # rank 0 first: it creates the run folder and any data cache
        run_dir, settings = runs.open_run(run_dir, profile, write=main, **overrides)
        bundle = load_data(settings)
        if main and group:
            group.barrier()
        n = group.world_size if group else 1
        t0 = time.time()
        for k, folder in enumerate(folders, 1):
            if main:
                print(f"== {folder} ({k}/{len(folders)}) on {n} process{'es' if n > 1 else ''}, "
                      f"{time.time() - t0:.0f} s so far", flush=True)
            train_folder(folder, bundle, settings, run_dir, progress=main)
        if main:
            print(f"trained {', '.join(folders)} in {run_dir} ({time.time() - t0:.0f} s, {n} process"
                  f"{'es' if n > 1 else ''})")
    finally:
        distributed.shutdown()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", required=True, help="the run folder (runs/<name>); created if missing")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--stage", nargs="+", help="stage folders to train, in order")
    what.add_argument("--method", help="a method's whole path (e.g. three-stage), or all")
    p.add_argument("--profile", help="settings profile (default: the run folder's, else quick)")
    p.add_argument("--data", help="synthetic-sar, digits-lt, or a path to MAVOC-style folders")
    p.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"), help="override a setting")
    a = p.parse_args(argv)
    overrides = {**dict(a.p), **({"data": a.data} if a.data else {})}
    return cli.guarded(lambda: run(a.run_dir, a.stage, a.method, a.profile, overrides))


if __name__ == "__main__":
    sys.exit(main())
