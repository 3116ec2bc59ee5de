"""Where the comparison's and the sweep's independent jobs run: N local processes, or SLURM, through submitit.

    python -m helpers.compare --profile quick --data digits-lt --executor local --jobs 4
    python -m helpers.sweep --profile quick --data digits-lt --executor slurm --partition gpu --time 240 --gpus-per-job 1

A job is what runs on its own without waiting for another: one (seed, budget) with all its methods
(helpers/evidence/compare.py `seed_job`; the methods share stage folders, so they stay together).
Each job trains into its own resumable run folder and leaves its table there, so the command that
submitted them assembles the tables when all are done, and the same command run again submits only
the jobs without a table. `run_jobs` waits for every job, then names each failed or pre-empted one in
one line with its log (`JobsFailed`); on Ctrl-C it cancels the jobs it started.

* local: submitit's LocalExecutor, at most `jobs` processes at a time; where CUDA GPUs are visible,
  job slot k uses GPU k mod (number of GPUs); each job gets cores / jobs torch threads unless
  OMP_NUM_THREADS is set.  (`jobs` = 1 is not run here: the commands then train in their own process,
  as they always did.)
* slurm: submitit's SLURM executor, one job array; `partition`, `time` (minutes), `gpus_per_job`,
  `cpus_per_job` and at most `jobs` running at once.  A job pre-empted or out of time is requeued by
  submitit (`Task` is checkpointable) and resumes from its run folder's checkpoints.
* debug: submitit's DebugExecutor, every job in this process one after the other (for tests).
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import Callable

from ..settings.paths import resolve_path

try:
    from submitit.helpers import Checkpointable
except ImportError:                    # without submitit only the in-process path of the commands works
    Checkpointable = object

EXECUTORS = ("local", "slurm", "debug")
LOCAL_TIMEOUT_MIN = 60 * 24 * 7        # submitit's local default is 2 minutes; a job here may take hours


class JobsFailed(RuntimeError):
    """Some jobs failed or did not finish; the message names each, with its log, in one line."""


@dataclass
class Job:
    name: str              # e.g. compare-quick-digits-lt-x2/seed1 (the run folder it trains)
    fn: Callable           # a module-level function (submitit pickles it by reference)
    args: tuple


class Task(Checkpointable):
    """What a submitted job runs: `fn(*args)` with `threads` torch threads; requeued as it is when pre-empted."""

    def __call__(self, fn, args, threads=None):
        if threads and "OMP_NUM_THREADS" not in os.environ:
            import torch
            torch.set_num_threads(threads)
        return fn(*args)


def _executor(kind: str, folder: Path, slurm: dict):
    import submitit
    if kind == "debug":
        return submitit.DebugExecutor(folder)
    if kind == "local":
        ex = submitit.LocalExecutor(folder)
        ex.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN)
        return ex
    if shutil.which("sbatch") is None:
        raise JobsFailed("--executor slurm needs SLURM (no sbatch on this machine's PATH); "
                         "use --executor local, or run the command on the cluster's login node")
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    params = {"timeout_min": slurm.get("time") or 60, "gpus_per_node": slurm.get("gpus_per_job") or 0,
              "cpus_per_task": slurm.get("cpus_per_job") or 1, "tasks_per_node": 1, "nodes": 1,
              "name": "sar-three-stage"}
    if slurm.get("partition"):
        params["slurm_partition"] = slurm["partition"]
    if slurm.get("jobs"):
        params["slurm_array_parallelism"] = slurm["jobs"]
    ex.update_parameters(**params)
    return ex


def reason(error) -> str:
    """One line of a job's error: the last line of its traceback, or the state it ended in."""
    text = str(error)
    if "----------------------" in text:                  # submitit's FailedJobError: the job's traceback inside
        trace = text.split("----------------------")[1]
        lines = [line.strip() for line in trace.splitlines() if line.strip()]
        return lines[-1] if lines else type(error).__name__
    first = text.strip().splitlines()[0] if text.strip() else ""
    state = text.split("(state: ")[1].split(")")[0] if "(state: " in text else ""
    return f"did not finish (state {state})" if state else f"{type(error).__name__}: {first}"


def _gpus() -> int:
    try:
        import torch
        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no torch or no driver: no GPUs
        return 0


def run_jobs(jobs: list[Job], executor: str = "local", workers: int | None = None, folder=None,
             slurm: dict | None = None, poll_s: float | None = None) -> dict:
    """Run every job, at most `workers` at a time (slurm: None = all); {name: result}. Raises JobsFailed
    naming the failed ones once all have ended."""
    if executor not in EXECUTORS:
        raise JobsFailed(f"unknown executor {executor!r}; valid: local, slurm")
    if not jobs:
        return {}
    folder = resolve_path(folder or "runs/jobs")
    folder.mkdir(parents=True, exist_ok=True)
    slurm = dict(slurm or {}, jobs=workers if executor == "slurm" else None)
    ex = _executor(executor, folder, slurm)
    width = (workers or len(jobs)) if executor == "slurm" else max(1, workers or 1)
    threads = slurm.get("cpus_per_job") if executor == "slurm" else max(1, (os.cpu_count() or 1) // width)
    gpus = _gpus() if executor == "local" else 0
    poll_s = poll_s if poll_s is not None else (30.0 if executor == "slurm" else 1.0)
    print(f"== {len(jobs)} job(s) on the {executor} executor, {min(width, len(jobs))} at a time; logs in {folder}",
          flush=True)
    queue, running, results, failed, t0 = list(jobs), {}, {}, [], time.time()
    free = list(range(width))

    def start(job):
        slot = free.pop(0)
        if gpus:
            ex.update_parameters(gpus_per_node=1, visible_gpus=[slot % gpus])
        running[job.name] = (job, ex.submit(Task(), job.fn, job.args, threads), slot)

    def finish(name):
        job, handle, slot = running.pop(name)
        if slot is not None:
            free.append(slot)
        error = handle.exception()           # never raises, never opens a debugger (as result() would, in debug)
        if error is None:
            results[name] = handle.result()
        else:
            failed.append(f"{name} ({reason(error)}; log {handle.paths.stderr})")
        print(f"job {name} {'failed' if error is not None else 'finished'} ({len(results) + len(failed)}/{len(jobs)}), "
              f"{time.time() - t0:.0f} s so far", flush=True)

    try:
        if executor == "slurm":
            with ex.batch():                   # one job array
                handles = [ex.submit(Task(), job.fn, job.args, threads) for job in queue]
            running.update({job.name: (job, h, None) for job, h in zip(queue, handles)})
            queue = []
        while queue or running:
            while queue and free:
                start(queue.pop(0))
            done = [name for name, (_, handle, _) in running.items() if executor == "debug" or handle.done()]
            for name in done:
                finish(name)
            if not done:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        for _, handle, _ in running.values():
            if executor != "debug":
                handle.cancel(check=False)
        raise
    if failed:
        raise JobsFailed(f"{len(failed)} of {len(jobs)} job(s) failed: {'; '.join(failed)}; their run folders keep "
                         f"what they trained: run the same command again to re-submit only the unfinished jobs")
    return results


def add_arguments(parser) -> None:
    """The options of `helpers.compare` and `helpers.sweep` that say where their jobs run."""
    g = parser.add_argument_group("where the runs go (helpers/evidence/executors.py)")
    g.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local: this machine (default); slurm: a SLURM cluster, through submitit")
    g.add_argument("--jobs", type=_positive, help="local: seeds trained at a time, each in its own process "
                   "(default 1: all in this process, one after another); slurm: jobs running at once (default: all)")
    g.add_argument("--partition", help="slurm: the partition")
    g.add_argument("--time", type=_positive, help="slurm: minutes a job may run (default 60)")
    g.add_argument("--gpus-per-job", type=int, help="slurm: GPUs of a job (default 0)")
    g.add_argument("--cpus-per-job", type=_positive, help="slurm: CPU cores of a job (default 1; its torch threads)")


def _positive(text: str) -> int:
    import argparse
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def options(args) -> dict:
    """The keyword arguments of compare.run / sweep.run from the parsed options."""
    return {"executor": args.executor, "jobs": args.jobs,
            "slurm": {"partition": args.partition, "time": args.time, "gpus_per_job": args.gpus_per_job,
                      "cpus_per_job": args.cpus_per_job}}
