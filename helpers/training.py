"""One training loop for every stage: SGD + momentum, cosine LR, a checkpoint after every epoch.

`trainable="classifier"` freezes the backbone *and keeps its BatchNorm statistics fixed* (the
backbone stays in eval mode), as in stage 3b and cRT.  Each epoch is seeded from (seed, stage,
epoch), so a stage stopped after epoch k and re-run resumes at k+1 and ends with the same weights
as an uninterrupted run.
"""
from __future__ import annotations

import math
import random
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checkpoints import CheckpointError, checkpoint_path, load_checkpoint, save_atomic
from .config import SettingsError
from .inference import predict_logits
from .metrics import summary


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left in place."""


def pick_device(device: str = "auto") -> torch.device:
    """"auto" picks CUDA, then Apple's MPS, then the CPU; a device that is not here is a SettingsError."""
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps else "cpu")
    try:
        picked = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise SettingsError(f"setting 'device' must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": mps}.get(picked.type, True)
    if not available or (picked.type == "cuda" and (picked.index or 0) >= torch.cuda.device_count()):
        raise SettingsError(f"device {device!r} is not available on this machine; use device='auto' (picks what is there) or 'cpu'")
    return picked


def epoch_seed(seed: int, stage: str, epoch: int) -> int:
    return zlib.crc32(f"{seed}/{stage}/{epoch}".encode())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_states() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def train_stage(model, train_set, *, stage: str, run_dir, settings, epochs: int, lr: float,
                trainable: str = "all", val_set=None, sampler=None, loss_fn=None, before_epoch=None,
                after_epoch=None, progress: bool = True) -> pd.DataFrame:
    """Train `model` for one stage; returns the per-epoch metrics (also in <run_dir>/<stage>/metrics.csv).

    If <run_dir>/<stage>/checkpoint.pt exists the stage resumes from it (or, if complete, just loads it).
    `sampler(epoch)` may give a torch Sampler; `before_epoch(epoch)` lets a loss change (LDAM-DRW).
    """
    if epochs <= 0 or lr <= 0:
        raise SettingsError(f"{stage}: epochs and lr must be > 0, got epochs={epochs}, lr={lr}")
    if trainable not in ("all", "classifier"):
        raise SettingsError(f"trainable must be 'all' or 'classifier', got {trainable!r}")
    device = pick_device(settings.device)
    channels_last = settings.channels_last and device.type == "cpu"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    for p in model.parameters():
        p.requires_grad_(trainable == "all")
    model.fc.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=settings.momentum, weight_decay=settings.weight_decay, nesterov=True)
    steps_per_epoch = math.ceil((len(train_set) if sampler is None else len(sampler(0))) / settings.batch_size)
    total_steps = epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    loss_fn = loss_fn or F.cross_entropy

    stage_config = {"stage": stage, "epochs": epochs, "lr": lr, "trainable": trainable, "train_size": len(train_set),
                    "settings": settings.to_dict()}
    ignore = {"device", "num_workers"}
    comparable = lambda cfg: {**cfg, "settings": {k: v for k, v in cfg["settings"].items() if k not in ignore}}
    path = checkpoint_path(run_dir, stage)
    history, start = [], 0
    if path.exists():
        ckpt = load_checkpoint(path)
        if comparable(ckpt.get("config", {})) != comparable(stage_config):
            raise CheckpointError(f"{path} was made with other settings than this run's; "
                                  f"use a new run folder (or delete {path.parent}) to train {stage} again")
        if ckpt["arch"] != model.arch:
            raise CheckpointError(f"{path} holds a model {ckpt['arch']}, this stage builds {model.arch}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        history, start = ckpt["metrics"], ckpt["epoch"]
        if start < epochs and progress:
            print(f"{stage}: resuming from epoch {start + 1} of {epochs} ({path})")

    for epoch in range(start, epochs):
        seed = epoch_seed(settings.seed, stage, epoch)
        seed_everything(seed)
        if before_epoch is not None:
            before_epoch(epoch)
        loader = DataLoader(train_set, batch_size=settings.batch_size, drop_last=False,
                            shuffle=sampler is None, sampler=None if sampler is None else sampler(epoch),
                            generator=torch.Generator().manual_seed(seed), num_workers=settings.num_workers,
                            pin_memory=device.type == "cuda", persistent_workers=False)
        model.train()
        if trainable == "classifier":
            model.eval()          # frozen backbone: BatchNorm statistics stay as they are
        t0, seen, loss_sum, correct = time.time(), 0, 0.0, 0
        bar = tqdm(loader, desc=f"{stage} epoch {epoch + 1}/{epochs}", leave=False, disable=not progress)
        for x, y in bar:
            x = x.to(device, non_blocking=True, memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            logits = model(x)
            loss = loss_fn(logits, y)
            if not torch.isfinite(loss):
                kept = (f"the last good checkpoint (epoch {epoch}) is kept at {path}" if path.exists()
                        else "no checkpoint was written")
                raise TrainingDiverged(f"{stage}: the loss became {loss.item()} at epoch {epoch + 1} "
                                       f"(learning rate {scheduler.get_last_lr()[0]:.4g}); lower the learning rate; {kept}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "train_loss": loss_sum / seen,
               "train_acc": correct / seen, "images": seen, "seconds": time.time() - t0}
        if val_set is not None:
            pred = predict_logits(model, val_set, device, channels_last=channels_last).argmax(1).numpy()
            row["val_balanced_top1"] = summary(val_set.targets.numpy(), pred, model.num_classes)["balanced_top1"]
        if not all(torch.isfinite(p).all() for p in model.parameters()):   # never save a spoiled model
            raise TrainingDiverged(f"{stage}: the weights became NaN or infinite at epoch {epoch + 1} (learning rate "
                                   f"{scheduler.get_last_lr()[0]:.4g}); lower the learning rate; "
                                   + (f"the last good checkpoint (epoch {epoch}) is kept at {path}" if path.exists()
                                      else "no checkpoint was written"))
        history.append(row)
        save_atomic({"stage": stage, "config": stage_config, "arch": dict(model.arch), "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch + 1,
                     "epochs": epochs, "complete": epoch + 1 == epochs, "metrics": history, "rng": _rng_states()}, path)
        pd.DataFrame(history).to_csv(path.parent / "metrics.csv", index=False)
        if progress:
            extra = f", val balanced top-1 {row['val_balanced_top1']:.3f}" if "val_balanced_top1" in row else ""
            print(f"{stage} epoch {epoch + 1}/{epochs}: loss {row['train_loss']:.3f}, "
                  f"{seen / row['seconds']:.0f} images/s{extra}")
        if after_epoch is not None:
            after_epoch(epoch)
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    return pd.DataFrame(history)
