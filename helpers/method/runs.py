"""Run folders: one per run, holding its resolved settings, environment, checkpoints, metrics and figures.

The first notebook to open a run folder writes `config.json`; every later notebook reads it, so all
stages of a run share one set of settings.  Giving a later notebook a setting that contradicts the
run's is an error (start a new run folder instead), never a silent mix.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..settings import config
from ..settings.config import NOT_COMPARED, Settings, SettingsError
from ..settings.paths import git_commit, resolve_path
from .devices import cpu_has_native_bf16, pick_device, resolve_precision
from .training import seed_everything


class RunFolderError(RuntimeError):
    pass


def open_run(run_dir, profile: str = "quick", write: bool = True, **overrides) -> tuple[Path, Settings]:
    """Resolve settings, create or reopen `run_dir`, seed everything; returns (run folder, settings).

    `write=False` checks and reads the same way but writes nothing (the ranks but 0 of a data-parallel run)."""
    run_dir = resolve_path(run_dir)
    settings = config.resolve(profile, **overrides)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} is a file; give a folder path (it is created if missing)")
    saved_path = run_dir / "config.json"
    if saved_path.exists():
        try:
            saved = json.loads(saved_path.read_text())
            saved_settings = config.resolve(saved["profile"], **saved["settings"])
        except (ValueError, KeyError, TypeError) as e:
            raise RunFolderError(f"{saved_path} is unreadable ({type(e).__name__}: {e}); "
                                 f"use a new run folder (or delete {run_dir})") from None
        asked = {k: v for k, v in settings.to_dict().items() if k not in NOT_COMPARED}
        have = {k: v for k, v in saved_settings.to_dict().items() if k not in NOT_COMPARED}
        diff = {k: (have[k], asked[k]) for k in asked if asked[k] != have[k]}
        if diff:
            listing = ", ".join(f"{k}: run has {a!r}, asked {b!r}" for k, (a, b) in diff.items())
            raise SettingsError(f"run folder {run_dir} was made with other settings ({listing}); "
                                f"use a new run folder to change them")
        # device and num_workers may change between notebooks: the caller's (coerced) value if given, else the run's.
        for name in NOT_COMPARED:
            if overrides.get(name) is None:
                setattr(settings, name, getattr(saved_settings, name))
    elif write:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save_json({"profile": profile, "settings": settings.to_dict()}, saved_path)
    device = pick_device(settings.device)
    if write:
        config.save_json({**config.environment_info(str(device)), "precision": resolve_precision(settings.precision, device),
                          "cpu_native_bf16": cpu_has_native_bf16(), "git_commit": git_commit()}, run_dir / "env.json")
    seed_everything(settings.seed)
    return run_dir, settings


def new_run_dir(run_dir, overwrite: bool = False) -> Path:
    """For the runner: refuse to reuse a run folder that already has content, unless asked to."""
    import shutil
    run_dir = resolve_path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise RunFolderError(f"run folder {run_dir} already exists; choose another --name, or pass --overwrite to replace it")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def save_metrics(obj, run_dir: Path, name: str) -> Path:
    path = Path(run_dir) / name
    config.save_json(obj, path)
    return path


def load_metrics(run_dir: Path, name: str, producer: str) -> dict:
    path = Path(run_dir) / name
    if not path.exists():
        raise RunFolderError(f"{path} is missing: run notebooks/{producer}.ipynb first (same run folder)")
    return json.loads(path.read_text())
