"""The pins in requirements.txt and environment.yml are the same list (the course's numbers depend on them)."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def requirement_pins() -> dict:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert "==" in line, f"requirements.txt: {line!r} is not pinned with =="
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def conda_pip_pins() -> dict:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = [d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, "environment.yml needs exactly one pip: section"
    pins = {}
    for line in pip[0]["pip"]:
        assert "==" in line, f"environment.yml: {line!r} is not pinned with =="
        name, version = line.split("==")
        pins[name.strip().lower()] = version.strip()
    return pins


def test_requirements_and_environment_pins_agree_exactly():
    assert requirement_pins() == conda_pip_pins()


def test_torch_and_torchvision_pinned():
    pins = requirement_pins()
    assert pins["torch"] == "2.14.1"
    assert pins["torchvision"] == "0.29.1"


def test_environment_yml_names_python_and_pip():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert any(str(d).startswith("python=") for d in env["dependencies"])
    assert "pip" in env["dependencies"]
