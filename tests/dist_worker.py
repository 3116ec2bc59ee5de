"""`python -m helpers.train` under the controls of tests/test_distributed.py (run as a script, alone or by torchrun).

Environment:
  WORKER_RUN_DIR      every write of this process under this folder is recorded (an audit hook: open for
                      writing, rename/replace, mkdir, remove) and listed, at exit, in
                      WORKER_LOG_DIR/writes-rank<R>-<pid>.json
  WORKER_PLAIN_SHAKE  "1": Shake-Shake's random mix replaced by its expectation (0.5, 0.5) in training too,
                      so that two trainings differ only by how their arithmetic is split over processes
  WORKER_STOP_AFTER   "k": every process stops (exit status 3) once epoch k of a stage is written
  WORKER_FLOAT64      "1": the model (weights, activations, gradients, BatchNorm) in float64, so that the
                      order of a sum changes a result by ~1e-16 of it, not by float32's ~1e-7
"""
import atexit
import json
import os
import sys

RUN_DIR = os.path.realpath(os.environ["WORKER_RUN_DIR"])
WRITES = []


def _under_run(path) -> bool:
    try:
        return isinstance(path, (str, bytes, os.PathLike)) and os.path.realpath(os.fsdecode(path)).startswith(RUN_DIR)
    except (TypeError, ValueError):
        return False


def _audit(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in mode for c in "wax+")) or \
            (mode is None and flags is not None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writing and _under_run(path):
            WRITES.append(f"open {path}")
    elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree") and args and _under_run(args[0]):
        WRITES.append(f"{event} {args[0]}")


def _report():
    rank = os.environ.get("RANK", "0")
    out = os.path.join(os.environ["WORKER_LOG_DIR"], f"writes-rank{rank}-{os.getpid()}.json")
    with open(out, "w") as f:
        json.dump(WRITES, f)


sys.addaudithook(_audit)
atexit.register(_report)

if os.environ.get("WORKER_PLAIN_SHAKE") == "1":
    import helpers.method.model as model
    model.shake = lambda x1, x2, training: 0.5 * (x1 + x2)

if os.environ.get("WORKER_FLOAT64") == "1":
    import torch
    import helpers.method.model as model
    torch.set_default_dtype(torch.float64)
    forward = model.ShakeShakeNet.forward
    model.ShakeShakeNet.forward = lambda self, x: forward(self, x.double())

if os.environ.get("WORKER_STOP_AFTER"):
    import helpers.method.stages as stages
    stop, train_stage = int(os.environ["WORKER_STOP_AFTER"]), stages.train_stage

    def stop_after(epoch):
        if epoch + 1 == stop:
            sys.exit(3)

    stages.train_stage = lambda *a, **k: train_stage(*a, after_epoch=stop_after, **k)

from helpers.evidence.train import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
