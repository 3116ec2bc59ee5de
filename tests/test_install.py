"""The package installs next to the torch a learner already has (Colab, a hub, their own environment).

pyproject.toml declares lower bounds; requirements.txt / environment.yml pin the exact environment that
`make` installs.  The install test needs no download: a fresh venv sees this environment's packages
through a .pth file, and holds stand-in distributions of another torch and torchvision (metadata only,
versions the bounds allow) in front of them.  pip resolves the package against what is installed,
with no index and no configuration of this machine; the stand-in torch must stay.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from test_environment import requirement_pins

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
STAND_INS = {"torch": ("2.15.0", []), "torchvision": ("0.30.0", ["torch==2.15.0"])}


def test_dependencies_are_lower_bounds_met_by_the_pins():
    pins = requirement_pins()
    for text in PROJECT["dependencies"] + sum(PROJECT["optional-dependencies"].values(), []):
        req = Requirement(text)
        name = req.name.lower()
        ops = {spec.operator for spec in req.specifier}
        assert ops == {">="}, f"pyproject.toml: {text!r} should be a lower bound only (>=), not {ops}"
        assert name in pins, f"pyproject.toml needs {name}, which requirements.txt does not pin"
        assert req.specifier.contains(pins[name]), f"requirements.txt pins {name}=={pins[name]}, below {text!r}"
    bounds = {Requirement(t).name.lower(): str(Requirement(t).specifier) for t in PROJECT["dependencies"]}
    assert bounds["torch"] == f">={pins['torch']}" and bounds["torchvision"] == f">={pins['torchvision']}"


def test_test_tools_are_an_extra_not_a_dependency():
    needed = {Requirement(t).name.lower() for t in PROJECT["dependencies"]}
    assert not needed & {"pytest", "pytest-xdist", "playwright", "jupyterlab"}, needed
    dev = {Requirement(t).name.lower() for t in PROJECT["optional-dependencies"]["dev"]}
    assert {"pytest", "pytest-xdist", "playwright"} <= dev


def test_every_folder_of_the_package_is_listed():
    """setuptools ships (and stays quiet about) only the folders `packages` names: a new sub-package or a
    data-only folder (profiles, templates) left out is missing from a wheel, with a warning on every install."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    for top in ("helpers", "benchmarks"):
        for folder in [ROOT / top, *(ROOT / top).rglob("*")]:
            if folder.is_dir() and folder.name != "__pycache__" and any(f.is_file() for f in folder.iterdir()):
                assert ".".join(folder.relative_to(ROOT).parts) in listed, f"pyproject.toml: list {folder.relative_to(ROOT)}"


def _env_with_stand_ins(tmp: Path) -> Path:
    """A venv whose torch and torchvision are stand-ins of STAND_INS' versions, everything else this env's."""
    env = tmp / "venv"
    venv.create(env, with_pip=False)
    python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for name, (version, requires) in STAND_INS.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        (info / "METADATA").write_text("\n".join(lines + [f"Requires-Dist: {r}" for r in requires]) + "\n")
        (info / "INSTALLER").write_text("pip\n")
    # after the venv's own site-packages, so the stand-ins come first
    (site / "zz_course_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _source_copy(tmp: Path, pyproject: str) -> Path:
    """The package's sources with `pyproject` as its pyproject.toml (the build writes into the copy)."""
    src = tmp / "src"
    for package in ("helpers", "benchmarks"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "pyproject.toml").write_text(pyproject)
    return src


def _dry_run(python: Path, src: Path, report: Path) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PIP_")}, "PIP_CONFIG_FILE": os.devnull}
    return subprocess.run([python, "-m", "pip", "--isolated", "install", "--dry-run", "--no-index",
                           "--no-build-isolation", "--quiet", "--report", report, src],
                          capture_output=True, text=True, env=env, timeout=300)


def test_install_next_to_another_torch_keeps_it(tmp_path):
    pytest.importorskip("pip")
    python = _env_with_stand_ins(tmp_path)
    pyproject = (ROOT / "pyproject.toml").read_text()
    result = _dry_run(python, _source_copy(tmp_path / "ours", pyproject), tmp_path / "ours.json")
    assert result.returncode == 0, result.stderr[-2000:]
    installs = {i["metadata"]["name"].lower(): i["metadata"]["version"]
                for i in json.loads((tmp_path / "ours.json").read_text())["install"]}
    assert installs == {PROJECT["name"]: PROJECT["version"]}, f"pip would also install {installs}"

    # The same check fails for an exact pin (what pyproject.toml had before): the test can tell.
    pinned = pyproject.replace('"torch>=', '"torch==')
    assert pinned != pyproject
    result = _dry_run(python, _source_copy(tmp_path / "pinned", pinned), tmp_path / "pinned.json")
    replaced = result.returncode == 0 and any(
        i["metadata"]["name"] == "torch" for i in json.loads((tmp_path / "pinned.json").read_text())["install"])
    assert result.returncode != 0 or replaced, "an exact torch pin went unnoticed"
