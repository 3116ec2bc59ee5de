"""Notebook 04's (and each comparison seed's) trainings side by side: the stage folders that do not wait on
each other train at the same time, each in a process of its own.

On a CPU the small Shake-Shake steps of the course do not keep many threads busy: on the project's 2-core
machine two processes of one thread each trained 1.22x the images a second of one process with both
threads (stage 1 at 16 px, batch 128, bf16; docs/running.md). So plain CE and LDAM-DRW train together, and
cRT and LWS together once plain CE is done. Each folder is trained exactly as in one process (its weights,
draws and batches come from (seed, stage), helpers/method/training.py), and a folder already finished is
only loaded. `train_processes` = 0 (auto) uses 2 processes on a CPU where this process has 2 or more torch
threads, each with half of them, and 1 (this process, as before) on a GPU or with one thread; N forces N.
helpers.compare trains each seed's folders the same way (each local job with the threads it was given).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
import traceback
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..method.checkpoints import is_complete
from ..method.devices import pick_device
from ..settings import config
from . import experiments, train


class ParallelTrainingError(RuntimeError):
    """A folder failed in its worker process; the message names it, in one line."""


def processes_for(settings) -> int:
    """How many processes train side by side: `train_processes`, or (0, auto) 2 on a CPU where this process has
    2 or more torch threads (OMP_NUM_THREADS=1, or a job given one core, keeps it at 1), else 1."""
    if settings.train_processes:
        return settings.train_processes
    return 2 if pick_device(settings.device).type == "cpu" and torch.get_num_threads() >= 2 else 1


def folders_needed(ablations: bool, extras: bool) -> list[str]:
    """The stage folders that experiments.train_all trains with these switches, each after its source."""
    kinds = ("method", "variant", "tta") + (("ablation",) if ablations else ())
    wanted = {st for m in experiments.method_names(kinds, extras=extras) for st in experiments.METHODS[m]["path"]}
    return [st for st in train.every_folder() if st in wanted]


def _start(threads: int) -> None:
    torch.set_num_threads(threads)
    os.environ["TQDM_DISABLE"] = "1"


def log_path(run_dir, folder: str) -> Path:
    return Path(run_dir) / "logs" / f"{folder}.log"


def _train_one(run_dir: str, profile: str, values: dict, folder: str) -> float:
    """In a worker process: load the data and train (or resume) one folder; returns its seconds. What the worker
    prints (a loading bar, a warning) goes to the folder's log, not into the notebook between the parent's lines."""
    from ..datasets.data import load_data
    t0 = time.time()
    log = log_path(run_dir, folder)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(f.fileno(), 1), os.dup2(f.fileno(), 2)
        try:
            settings = config.resolve(profile, **values)
            train.train_folder(folder, load_data(settings), settings, run_dir, progress=False)
        except BaseException:
            traceback.print_exc()          # into the log the parent's one-line error names
            raise
        finally:
            sys.stdout.flush(), sys.stderr.flush()
    return time.time() - t0


def train_side_by_side(settings, run_dir, folders, processes: int, progress: bool = True) -> list[str]:
    """Train `folders` (each after its source) in `processes` worker processes; returns those trained."""
    sources = train.sources()
    todo = [f for f in folders if not is_complete(run_dir, f)]
    if not todo:
        return []
    profile = json.loads((run_dir / "config.json").read_text())["profile"]
    threads = max(1, torch.get_num_threads() // processes)
    values = settings.to_dict()
    pending, running, done = list(todo), {}, []
    bar = tqdm(total=len(todo), desc=f"training {len(todo)} folder(s) in {processes} processes of {threads} thread(s)",
               disable=not progress)
    pool = multiprocessing.get_context("spawn").Pool(processes, initializer=_start, initargs=(threads,))
    try:
        while pending or running:
            for folder in [f for f in pending if sources.get(f) not in pending and sources.get(f) not in running]:
                if len(running) == processes:
                    break
                pending.remove(folder)
                running[folder] = pool.apply_async(_train_one, (str(run_dir), profile, values, folder))
            bar.set_postfix_str(", ".join(running))
            time.sleep(0.5)
            for folder in [f for f, job in running.items() if job.ready()]:
                job = running.pop(folder)
                try:
                    seconds = job.get()
                except Exception as e:
                    raise ParallelTrainingError(f"training {folder} in a worker process failed: {type(e).__name__}: "
                                                f"{str(e).splitlines()[0] if str(e) else ''} (log: {log_path(run_dir, folder)}); "
                                                f"the folders finished so far are kept, and running this again resumes") from None
                done.append(folder)
                bar.update(1)
                if progress:
                    bar.write(f"{folder}: trained in {seconds:.0f} s")
    finally:
        pool.terminate()                   # on an error or Ctrl-C too: the epochs written so far are kept
        pool.join()
        bar.close()
    return done


def train_all(bundle, settings, run_dir, progress: bool = True, ablations: bool = True, extras: bool = True) -> None:
    """experiments.train_all, the independent folders trained side by side first where `processes_for` > 1."""
    n = processes_for(settings)
    if n > 1:
        train_side_by_side(settings, run_dir, folders_needed(ablations, extras), n, progress)
    experiments.train_all(bundle, settings, run_dir, progress, ablations=ablations, extras=extras)
