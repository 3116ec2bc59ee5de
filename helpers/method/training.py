"""One training loop for every stage: SGD + momentum, linear warm-up then cosine, counted in optimizer steps.

A stage runs for a number of optimizer steps (helpers/method/budget.py says how many), in epochs over its
training set; the last epoch stops when the steps are spent. A checkpoint is written after every
epoch. `trainable="classifier"` freezes the backbone's weights; with `bn="frozen"` (stage 3b) it keeps
its BatchNorm statistics fixed too (the backbone stays in eval mode), with `bn="train"` (cRT and LWS, as
Kang et al.'s code runs them: `model.train()` on every network every epoch) the statistics are
re-estimated on the stage's batches, class-balanced there, and nothing else of the backbone changes. Each epoch is seeded from
(seed, stage, epoch) and every image's augmentation from its own seed (helpers/method/loader.py), so a
stage stopped after epoch k and re-run resumes at k+1 and ends with the same weights as an
uninterrupted run, with any number of data-loading workers.

The model and batches run in channels_last on the CPU and CUDA, under the autocast that the
`precision` setting resolves to on the device (helpers/method/devices.py: bf16 where the CPU or the card
computes it natively, fp16 with a GradScaler on CUDA cards without bf16, fp32 elsewhere); the
resolved precision is part of the stage's config, and a checkpoint resumes only under it.
cudnn.benchmark is on for CUDA.

Under torchrun (helpers/method/distributed.py) the same loop trains data-parallel: each rank takes its
share of every global batch, and only rank 0 validates and writes. `lr_reference_batch` > 0 scales the
stage's learning rate by batch_size / lr_reference_batch (the linear scaling rule, Goyal et al. 2017).
"""
from __future__ import annotations

import contextlib
import math
import random
import time
import zlib

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import distributed
from .checkpoints import CheckpointError, checkpoint_path, load_checkpoint, save_atomic
from ..settings.config import NOT_COMPARED, SettingsError
from .devices import autocast, needs_grad_scaler, pick_device, resolve_precision
from .inference import predict_logits
from .loader import make_loader, steps_per_epoch
from .metrics import summary


VALIDATIONS = 10        # validation points per stage at most (on a small set an epoch is a step or two)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left in place."""


def epoch_seed(seed: int, stage: str, epoch: int) -> int:
    return zlib.crc32(f"{seed}/{stage}/{epoch}".encode())


INIT = "init"      # model_rng's key of a model built from scratch: stage 1, plain CE and LDAM-DRW share it


@contextlib.contextmanager
def model_rng(seed: int, key: str):
    """Draw a model's construction or head change from a generator of (seed, key) alone, and leave the global
    generator as it was. So plain CE, LDAM-DRW and stage 1 start from the same backbone weights (key INIT,
    the run's seed itself, as stage 1 always had), and a stage's new head rows do not depend on whether the
    stages before it were trained or loaded in this process."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed if key == INIT else zlib.crc32(f"{seed}/{key}/model".encode()))
        yield


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_states() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


RESUMABLE_CHANGES = NOT_COMPARED    # settings a stage may resume under (the *resolved* precision must match)


def same_stage(saved: dict, config: dict, defaults: dict) -> bool:
    """Does a checkpoint's stage config match this run's? Everything equal but `RESUMABLE_CHANGES`; a
    setting the checkpoint does not know (added to the course later) must keep its default value."""
    a, b = dict(saved), dict(config)
    a.pop("precision", None), b.pop("precision", None)        # checked on its own (train_stage), with its own message
    old, new = a.pop("settings", {}), b.pop("settings", {})
    if a != b or set(old) - set(new):
        return False
    return all(k in RESUMABLE_CHANGES or (old[k] == v if k in old else v == defaults.get(k)) for k, v in new.items())


def warmup_steps(settings, steps: int) -> int:
    """Steps of the linear warm-up at the start of a stage of `steps` steps."""
    return max(1, round(settings.warmup_fraction * steps)) if settings.warmup_fraction > 0 else 0


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine from 1 to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(step - warmup, total - warmup) / max(1, total - warmup)))


def train_stage(model, train_set, *, stage: str, run_dir, settings, steps: int, lr: float,
                trainable: str = "all", val_set=None, balanced: bool = False, loss_fn=None, on_step=None,
                after_epoch=None, params=None, bn: str = "frozen", progress: bool = True) -> pd.DataFrame:
    """Train `model` for `steps` optimizer steps; returns the per-epoch metrics (also in <run_dir>/<stage>/metrics.csv).

    If <run_dir>/<stage>/checkpoint.pt exists the stage resumes from it (or, if complete, just loads it).
    `balanced=True` draws class-balanced batches (cRT, LWS); `on_step(step, total)` runs before each
    step (LDAM-DRW switches its weights there); `params` replaces the trained parameters (LWS); `bn`
    ("frozen" or "train") says whether a classifier-only stage re-estimates the BatchNorm statistics.
    """
    if steps <= 0 or lr <= 0:
        raise SettingsError(f"{stage}: steps and lr must be > 0, got steps={steps}, lr={lr}")
    if trainable not in ("all", "classifier"):
        raise SettingsError(f"trainable must be 'all' or 'classifier', got {trainable!r}")
    if bn not in ("frozen", "train"):
        raise SettingsError(f"bn must be 'frozen' or 'train', got {bn!r}")
    if settings.lr_reference_batch > 0:
        lr = lr * settings.batch_size / settings.lr_reference_batch
    group = distributed.active()        # None in one process: nothing below changes then
    main = group is None or group.main  # only rank 0 validates, writes and prints
    progress = progress and main
    device = pick_device(settings.device)
    precision = resolve_precision(settings.precision, device)
    channels_last = settings.channels_last and device.type in ("cpu", "cuda")
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model.to(device=device, memory_format=memory_format)
    for p in model.parameters():
        p.requires_grad_(trainable == "all")
    if params is None:
        model.fc.requires_grad_(True)
        params = [p for p in model.parameters() if p.requires_grad]
    else:
        for p in params:
            p.requires_grad_(True)
    optimizer = torch.optim.SGD(params, lr=lr, momentum=settings.momentum, weight_decay=settings.weight_decay, nesterov=True)
    warmup = warmup_steps(settings, steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps, warmup))
    scaler = torch.amp.GradScaler("cuda") if needs_grad_scaler(precision) else None
    loss_fn = loss_fn or F.cross_entropy
    per_epoch = steps_per_epoch(len(train_set), settings.batch_size)
    epochs = math.ceil(steps / per_epoch)
    validate_every = max(1, round(epochs / VALIDATIONS))

    stage_config = {"stage": stage, "steps": steps, "warmup_steps": warmup, "lr": lr, "trainable": trainable,
                    "balanced": balanced, "train_size": len(train_set), "precision": precision,
                    "settings": settings.to_dict()}
    if trainable == "classifier" and bn == "train":
        stage_config["bn"] = "train"        # absent otherwise, so the checkpoints written before `bn` still resume
    path = checkpoint_path(run_dir, stage)
    history, start, step = [], 0, 0
    if path.exists():
        ckpt = load_checkpoint(path)
        trained_in = ckpt.get("config", {}).get("precision", "fp32")    # checkpoints older than this setting: fp32
        if trained_in != precision:
            raise CheckpointError(f"{path} was trained in {trained_in}, this run computes in {precision} (precision="
                                  f"{settings.precision!r} on {device.type}); resume it with -p precision {trained_in}, "
                                  f"or use a new run folder")
        if not same_stage(ckpt.get("config", {}), stage_config, type(settings)().to_dict()):
            raise CheckpointError(f"{path} was made with other settings than this run's; "
                                  f"use a new run folder (or delete {path.parent}) to train {stage} again")
        if ckpt["arch"] != model.arch:
            raise CheckpointError(f"{path} holds a model {ckpt['arch']}, this stage builds {model.arch}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        history, start, step = ckpt["metrics"], ckpt["epoch"], ckpt.get("step", 0)
        if main:
            pd.DataFrame(history).to_csv(path.parent / "metrics.csv", index=False)   # in step with the checkpoint
        if start < epochs and progress:
            print(f"{stage}: resuming from epoch {start + 1} of {epochs}, step {step} of {steps} ({path})")

    loader, sampler = (None, None) if start >= epochs else make_loader(
        train_set, settings.batch_size, settings.num_workers, pin_memory=device.type == "cuda", balanced=balanced,
        **(group.shard(settings.batch_size) if group else {}))
    net = group.wrap(model, settings.sync_batchnorm) if group and start < epochs else model
    for epoch in range(start, epochs):
        seed = epoch_seed(settings.seed, stage, epoch)
        seed_everything(group.rank_seed(settings.seed, stage, epoch) if group else seed)
        sampler.set_epoch(seed)
        model.train()
        if trainable == "classifier" and bn == "frozen":
            model.eval()          # frozen backbone: BatchNorm statistics stay as they are
        t0, seen, loss_sum, correct, done = time.time(), 0, 0.0, 0, 0
        todo = min(per_epoch, steps - step)
        bar = tqdm(total=todo, desc=f"{stage} epoch {epoch + 1}/{epochs}", leave=False, disable=not progress)
        for x, y in loader:
            x = x.to(device, non_blocking=True, memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            if on_step is not None:
                on_step(step, steps)
            with autocast(precision, device):
                logits = net(x)
                loss = loss_fn(logits.float(), y)
            if not torch.isfinite(loss):
                kept = (f"the last good checkpoint (epoch {epoch}) is kept at {path}" if path.exists()
                        else "no checkpoint was written")
                raise TrainingDiverged(f"{stage}: the loss became {loss.item()} at epoch {epoch + 1} "
                                       f"(learning rate {scheduler.get_last_lr()[0]:.4g}); lower the learning rate; {kept}")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            scheduler.step()
            step, done, seen = step + 1, done + 1, seen + len(y)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
            if done == todo:
                break
        bar.close()
        if group:
            seen, loss_sum, correct = (type(v)(t) for v, t in zip((seen, loss_sum, correct),
                                                                 group.sum(seen, loss_sum, correct)))
        row = {"epoch": epoch + 1, "steps": done, "lr": optimizer.param_groups[0]["lr"], "train_loss": loss_sum / seen,
               "train_acc": correct / seen, "images": seen, "trainable": trainable, "seconds": time.time() - t0}
        if main and val_set is not None and ((epoch + 1) % validate_every == 0 or epoch + 1 == epochs):
            pred = predict_logits(model, val_set, device, channels_last=channels_last, precision=precision).argmax(1).numpy()
            scored = summary(val_set.targets.numpy(), pred, model.num_classes)
            row["val_balanced_top1"], val_label = scored["balanced_top1"], scored["balanced_label"]
        if not all(torch.isfinite(p).all() for p in model.parameters()):   # never save a spoiled model
            raise TrainingDiverged(f"{stage}: the weights became NaN or infinite at epoch {epoch + 1} (learning rate "
                                   f"{scheduler.get_last_lr()[0]:.4g}); lower the learning rate; "
                                   + (f"the last good checkpoint (epoch {epoch}) is kept at {path}" if path.exists()
                                      else "no checkpoint was written"))
        history.append(row)
        if main:
            save_atomic({"stage": stage, "config": stage_config, "arch": dict(model.arch), "model": model.state_dict(),
                         "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                         "scaler": scaler.state_dict() if scaler is not None else None, "epoch": epoch + 1,
                         "epochs": epochs, "step": step, "steps": steps, "complete": step == steps, "metrics": history,
                         "rng": _rng_states(), **(group.provenance(settings) if group else {})}, path)
            pd.DataFrame(history).to_csv(path.parent / "metrics.csv", index=False)
        if group:
            group.barrier()       # every rank goes on (or resumes later) from the checkpoint rank 0 has written
        if progress:
            extra = f", val {val_label} {row['val_balanced_top1']:.3f}" if "val_balanced_top1" in row else ""
            print(f"{stage} epoch {epoch + 1}/{epochs} (step {step}/{steps}): loss {row['train_loss']:.3f}, "
                  f"{seen / row['seconds']:.0f} images/s{extra}")
        if after_epoch is not None:
            after_epoch(epoch)
    if group:
        group.unwrap(model)
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    return pd.DataFrame(history)
