"""Run folders, determinism and isolation: a run writes only into its run folder and the data cache."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import assert_one_line
from helpers.method import runs
from helpers.method import stages
from helpers.method.checkpoints import checkpoint_path, load_checkpoint
from helpers.settings.config import SettingsError
from helpers.datasets.data import load_data
from helpers.settings.paths import PROJECT_ROOT
from helpers.method.runs import RunFolderError

pytestmark = pytest.mark.usefixtures("sar_data_dir")
TINY_RUN = dict(data_size=100, val_per_class=2, test_per_class=2)
# Determinism is checked on the CPU in fp32: pinned, so that a CUDA machine (cudnn.benchmark, bf16) or a
# CPU with native bf16 runs the same check.
PINNED = dict(device="cpu", precision="fp32")


# ---------------------------------------------------------------- run folders
def test_new_run_dir(tmp_path):
    run = runs.new_run_dir(tmp_path / "runs" / "a")
    assert run.is_dir() and list(run.iterdir()) == []
    assert runs.new_run_dir(run) == run                          # an empty folder is fine
    (run / "config.json").write_text("{}")
    with pytest.raises(RunFolderError, match=r"run folder .*a already exists; choose another --name, or pass --overwrite") as e:
        runs.new_run_dir(run)
    assert_one_line(e)
    assert (run / "config.json").exists()                        # refused: nothing removed
    runs.new_run_dir(run, overwrite=True)
    assert list(run.iterdir()) == []


def test_open_run_writes_config_and_env(tmp_path):
    run_dir, s = runs.open_run(tmp_path / "r", "smoke", **TINY_RUN)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved == {"profile": "smoke", "settings": s.to_dict()}
    assert {"torch", "device", "python"} <= set(json.loads((run_dir / "env.json").read_text()))
    # Re-opening with the same settings (as a later notebook does) is fine and gives the same settings.
    _, again = runs.open_run(run_dir, "smoke", **TINY_RUN)
    assert again == s


def test_open_run_refuses_contradicting_settings(tmp_path):
    run_dir, _ = runs.open_run(tmp_path / "r", "smoke", **TINY_RUN)
    with pytest.raises(SettingsError) as e:
        runs.open_run(run_dir, "smoke", **{**TINY_RUN, "stage1_steps": 2})
    assert assert_one_line(e) == (f"run folder {run_dir} was made with other settings (stage1_steps: run has 3, "
                                  f"asked 2); use a new run folder to change them")
    with pytest.raises(SettingsError, match=r"data_size: run has 100, asked 300"):
        runs.open_run(run_dir, "smoke")


def test_open_run_device_and_workers_may_change(tmp_path):
    run_dir, _ = runs.open_run(tmp_path / "r", "smoke", num_workers=1, **TINY_RUN)
    _, s = runs.open_run(run_dir, "smoke", **TINY_RUN)
    assert s.num_workers == 1                                    # the run's value when not given
    _, s = runs.open_run(run_dir, "smoke", num_workers="0", device="cpu", **TINY_RUN)   # papermill gives strings
    assert s.num_workers == 0 and isinstance(s.num_workers, int) and s.device == "cpu"
    # the precision too: a stage's checkpoint, not the run folder, holds the precision it was trained in
    _, s = runs.open_run(run_dir, "smoke", precision="fp32", **TINY_RUN)
    assert s.precision == "fp32"
    _, s = runs.open_run(run_dir, "smoke", **TINY_RUN)
    assert s.precision == "auto"                                  # the run's own value when not given


def test_open_run_bad_folders(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match=r"run folder .*file is a file; give a folder path") as e:
        runs.open_run(tmp_path / "file", "smoke")
    assert_one_line(e)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(RunFolderError, match=r"config.json is unreadable \(JSONDecodeError: .*\); use a new run folder") as e:
        runs.open_run(tmp_path / "broken", "smoke")
    assert_one_line(e)


def test_open_run_rejects_bad_settings_before_creating_anything(tmp_path):
    with pytest.raises(SettingsError, match=r"setting 'stage1_epochs' must be > 0, got 0"):
        runs.open_run(tmp_path / "r", "smoke", stage1_epochs=0)
    with pytest.raises(SettingsError, match=r"unknown profile 'fast'"):
        runs.open_run(tmp_path / "r", "fast")
    assert not (tmp_path / "r").exists()


def test_metrics_files(tmp_path):
    runs.save_metrics({"a": 1}, tmp_path, "results.json")
    assert runs.load_metrics(tmp_path, "results.json", "04_evaluate") == {"a": 1}
    with pytest.raises(RunFolderError, match=r"missing.json is missing: run notebooks/04_evaluate.ipynb first") as e:
        runs.load_metrics(tmp_path, "missing.json", "04_evaluate")
    assert_one_line(e)


# ---------------------------------------------------------------- isolation and determinism
_AUDIT = {"on": False, "writes": []}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event, args):
    if not _AUDIT["on"]:
        return
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (mode is None and flags and flags & _WRITE_FLAGS)
        if writing and isinstance(path, (str, bytes, os.PathLike)):
            _AUDIT["writes"].append(Path(os.fsdecode(path)).absolute())
    elif event in ("os.rename", "os.replace"):
        _AUDIT["writes"] += [Path(os.fsdecode(args[0])).absolute(), Path(os.fsdecode(args[1])).absolute()]
    elif event in ("os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate", "os.symlink", "os.link"):
        if isinstance(args[0], (str, bytes, os.PathLike)):
            _AUDIT["writes"].append(Path(os.fsdecode(args[0])).absolute())


sys.addaudithook(_audit)


class recorded_writes:
    """Every path Python code opens for writing, renames, creates or removes inside the block."""

    def __enter__(self):
        _AUDIT["writes"], _AUDIT["on"] = [], True
        return _AUDIT["writes"]

    def __exit__(self, *exc):
        _AUDIT["on"] = False


def untracked_files() -> set:
    """Files git does not track and does not ignore (read-only: git ls-files takes no lock)."""
    out = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True)
    return set(out.stdout.split("\0")) - {""} if out.returncode == 0 else set()


def inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def run_stage1(run_dir, **overrides):
    run_dir, settings = runs.open_run(run_dir, "smoke", **TINY_RUN, **PINNED, **overrides)
    bundle = load_data(settings)
    model, history = stages.stage1(bundle, settings, run_dir, progress=False)
    return run_dir, model, history


def test_runs_are_deterministic_and_isolated(tmp_path, monkeypatch):
    cache = tmp_path / "cache"                        # a fresh data cache: generation happens inside the check
    monkeypatch.setenv("SAR_DATA_DIR", str(cache))
    repo_before, started = untracked_files(), time.time()
    ignored_before = {p.name for d in ("data", "runs") if (PROJECT_ROOT / d).is_dir() for p in (PROJECT_ROOT / d).iterdir()}

    with recorded_writes() as writes_a:
        dir_a, model_a, hist_a = run_stage1(tmp_path / "runs" / "seed-run-a")
        writes_a = list(writes_a)
    with recorded_writes() as writes_b:
        dir_b, model_b, hist_b = run_stage1(tmp_path / "runs" / "seed-run-b")
        writes_b = list(writes_b)

    # Determinism: same seed and settings, identical metrics (wall time aside) and weights on the CPU.
    pd.testing.assert_frame_equal(hist_a.drop(columns="seconds"), hist_b.drop(columns="seconds"), check_exact=True)
    sa, sb = model_a.state_dict(), model_b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert load_checkpoint(checkpoint_path(dir_a, "stage1"))["metrics"][0]["train_loss"] == hist_b["train_loss"][0]

    # Isolation: every write is in the run's own folder or the data cache; the two runs share no file.
    assert writes_a and any(inside(p, cache) for p in writes_a)           # the data set was generated here
    assert not any(inside(p, cache) for p in writes_b)                     # ... and reused, not rewritten
    for writes, own in ((writes_a, dir_a), (writes_b, dir_b)):
        # (creating the folders above the run folder, e.g. runs/, is part of making it)
        stray = [str(p) for p in writes if not (inside(p, own) or inside(p, cache) or inside(own, p))]
        assert stray == [], f"written outside the run folder and the data cache: {stray}"
    assert not {p.resolve() for p in writes_a if inside(p, dir_a)} & {p.resolve() for p in writes_b}
    assert (dir_a / "stage1" / "checkpoint.pt").exists() and (dir_b / "stage1" / "checkpoint.pt").exists()
    assert sorted(p.name for p in dir_a.iterdir()) == ["config.json", "env.json", "stage1"]

    # And the repository tree has no new files (untracked ones created during this test, or in data/ and runs/).
    new = [f for f in untracked_files() - repo_before
           if (PROJECT_ROOT / f).exists() and (PROJECT_ROOT / f).stat().st_mtime >= started]
    assert new == [], f"new files in the repository: {new}"
    ignored_after = {p.name for d in ("data", "runs") if (PROJECT_ROOT / d).is_dir() for p in (PROJECT_ROOT / d).iterdir()}
    assert not {n for n in ignored_after - ignored_before if "seed-run" in n or "n100-v2-t2" in n}


def test_the_write_recorder_sees_writes(tmp_path):
    """The isolation test is only as good as its recorder: check it catches the kinds of write the helpers do."""
    from helpers.method.checkpoints import save_atomic
    from helpers.settings.config import save_json
    with recorded_writes() as writes:
        save_json({"a": 1}, tmp_path / "a.json")
        save_atomic({"b": 2}, tmp_path / "b.pt")
        pd.DataFrame({"x": [1]}).to_csv(tmp_path / "c.csv")
        (tmp_path / "d").mkdir()
    names = {p.name for p in writes}
    assert {"a.json.tmp", "a.json", "b.pt.tmp", "b.pt", "c.csv", "d"} <= names
