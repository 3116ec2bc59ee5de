"""Checkpoints: written atomically, checked when read, and named after the notebook that makes them."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..settings.catalog import PRODUCER  # noqa: F401  (which notebook writes which stage; re-exported)
from .model import ShakeShakeNet


class CheckpointError(RuntimeError):
    """A missing, incomplete or mismatched checkpoint; the message says what to run or change."""


def save_atomic(obj, path: Path) -> None:
    """Write to a temporary file, then rename: a crash mid-write never spoils the last good file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())      # the bytes are on disk before the rename makes them the checkpoint
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)   # a half-written temporary file is never left behind
        raise


def checkpoint_path(run_dir, stage: str) -> Path:
    return Path(run_dir) / stage / "checkpoint.pt"


CHECKPOINT_KEYS = ("stage", "config", "arch", "model", "optimizer", "scheduler", "epoch", "epochs", "metrics", "rng")


def load_checkpoint(path: Path) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise CheckpointError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}); delete it and re-run its stage") from None
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt] if isinstance(ckpt, dict) else list(CHECKPOINT_KEYS)
    if missing:
        raise CheckpointError(f"{path} is not a checkpoint written by this course's train_stage (missing {', '.join(missing)}); "
                              f"delete it and re-run its stage")
    return ckpt


def is_complete(run_dir, stage: str) -> bool:
    """Whether `stage` of `run_dir` has a finished checkpoint (all its steps trained)."""
    path = checkpoint_path(run_dir, stage)
    return path.is_file() and bool(load_checkpoint(path).get("complete"))


def load_stage_model(run_dir, stage: str, num_classes: int | None = None, **expected) -> ShakeShakeNet:
    """The finished model of `stage` in `run_dir`, built from the architecture its checkpoint records.

    `num_classes` and any other architecture entry given (e.g. normed_classifier=False) are checked against it.
    """
    path = checkpoint_path(run_dir, stage)
    notebook = PRODUCER.get(stage, stage)
    if not path.exists():
        raise CheckpointError(f"no {stage} checkpoint in {run_dir}: run notebooks/{notebook}.ipynb first (same run folder)")
    ckpt = load_checkpoint(path)
    if not ckpt.get("complete"):
        raise CheckpointError(f"the {stage} checkpoint in {run_dir} is unfinished (epoch {ckpt.get('epoch')} of "
                              f"{ckpt.get('epochs')}): re-run notebooks/{notebook}.ipynb to finish it")
    arch = dict(ckpt.get("arch", {}))
    wanted = {k: v for k, v in {"num_classes": num_classes, **expected}.items() if v is not None}
    if any(arch.get(k) != v for k, v in wanted.items()) or not {"depth", "base_width"} <= set(arch):
        raise CheckpointError(f"checkpoint {path} holds a model {arch}, expected {wanted}; "
                              f"it comes from another model or class count, use a new run folder")
    with torch.random.fork_rng(devices=[]):     # its initial weights are overwritten: loading draws nothing
        model = ShakeShakeNet(**arch)
    model.load_state_dict(ckpt["model"])
    return model
