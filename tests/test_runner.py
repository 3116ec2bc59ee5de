"""The runner without executing notebooks (papermill replaced by a recorder): --only re-runs and resumes
with the run folder's own profile and overrides, the report, and the kernel the notebooks run in."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from helpers.settings import catalog
from helpers.publishing import report, runner


@pytest.fixture
def recorded(monkeypatch):
    """papermill.execute_notebook replaced: records the parameters, writes the notebook with one output."""
    import papermill
    calls = []

    def fake(input_path, output_path, parameters=None, kernel_name=None, **kwargs):
        import os
        calls.append({"notebook": Path(input_path).stem, "parameters": dict(parameters), "kernel": kernel_name,
                      "tqdm_disable": os.environ.get("TQDM_DISABLE")})
        nb = nbformat.read(input_path, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell("print('ran')", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="ran\n"),
            nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAAAAABX3VL4AAAADklEQVR4nGNsYGBiYAAAApIAhPd8o1gAAAAASUVORK5CYII=", "text/plain": "<Figure>"})]))
        nbformat.write(nb, output_path)
    monkeypatch.setattr(papermill, "execute_notebook", fake)
    return calls


def test_full_run_then_only_reuses_saved_profile_and_overrides(tmp_path, recorded):
    run = tmp_path / "r"
    assert runner.main(["--profile", "smoke", "--name", str(run), "-p", "stage1_steps", "2", "-p", "seed", "3"]) == 0
    assert [c["notebook"] for c in recorded] == catalog.NOTEBOOKS
    assert all(c["kernel"] == catalog.KERNEL_NAME and c["tqdm_disable"] == "1" for c in recorded)
    first = recorded[0]["parameters"]
    assert first["profile"] == "smoke" and first["stage1_steps"] == 2 and first["seed"] == 3
    assert "comparison_csv" not in first
    # what the first notebook would have written: the run's settings
    from helpers.settings import config
    settings = config.resolve("smoke", stage1_steps=2, seed=3, device="cpu")
    config.save_json({"profile": "smoke", "settings": settings.to_dict()}, run / "config.json")

    recorded.clear()
    assert runner.main(["--name", str(run), "--only", "04", "02_stage2_without_class0"]) == 0   # no --profile, no -p
    assert [c["notebook"] for c in recorded] == ["02_stage2_without_class0", "04_evaluation_tta"]
    for c in recorded:
        p = c["parameters"]
        assert p["profile"] == "smoke" and p["stage1_steps"] == 2 and p["seed"] == 3, p
        assert "device" not in p                                 # not a setting that pins the run
    timings = json.loads((run / "timings.json").read_text())
    assert list(timings) == catalog.NOTEBOOKS                    # the earlier timings are kept
    assert (run / "report.html").is_file()


def test_only_with_explicit_override_wins(tmp_path, recorded):
    run = tmp_path / "r"
    from helpers.settings import config
    run.mkdir()
    config.save_json({"profile": "smoke", "settings": config.resolve("smoke", seed=5).to_dict()}, run / "config.json")
    assert runner.main(["--name", str(run), "--only", "05", "-p", "seed", "6"]) == 0
    assert recorded[0]["parameters"]["seed"] == 6 and recorded[0]["parameters"]["profile"] == "smoke"


def test_report_holds_every_notebook_and_embeds_images(tmp_path, recorded):
    run = tmp_path / "r"
    assert runner.main(["--profile", "smoke", "--name", str(run)]) == 0
    html = (run / "report.html").read_text(encoding="utf-8")
    for nb in catalog.NOTEBOOKS:
        assert f'id="{nb}"' in html
    assert html.count("data:image/png;base64") >= len(catalog.NOTEBOOKS)
    assert "Traceback" not in html


def test_report_without_notebooks_is_one_line_error(tmp_path):
    with pytest.raises(report.ReportError, match="no executed notebooks"):
        report.write_report(tmp_path)


def test_kernelspec_interpreter_is_this_environment():
    """The kernel the notebooks name runs this environment's Python (make install registers it)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        spec = KernelSpecManager().get_kernel_spec(catalog.KERNEL_NAME)
    except NoSuchKernel:
        pytest.fail(f"no Jupyter kernel {catalog.KERNEL_NAME!r}: run `python -m helpers.course --install-kernel`")
    exe = spec.argv[0]
    if exe in ("python", "python3", "{python}"):      # ipykernel's built-in spec: the running interpreter
        exe = shutil.which(exe) or sys.executable
    assert Path(exe).parent.resolve() == Path(sys.executable).parent.resolve() or \
        Path(exe).resolve() == Path(sys.executable).resolve(), f"kernel runs {exe}, tests run {sys.executable}"
    assert spec.display_name == catalog.KERNEL_DISPLAY_NAME


def test_notebooks_name_the_catalog_kernel():
    for nb in catalog.NOTEBOOKS:
        meta = json.loads((catalog.NOTEBOOK_DIR / f"{nb}.ipynb").read_text())["metadata"]
        assert meta["kernelspec"] == catalog.KERNELSPEC


def test_quiet_progress_bars_silence_explicit_bars(capsys, monkeypatch):
    from tqdm.auto import tqdm

    from helpers.lessons import notebook
    original = tqdm.__init__
    try:
        notebook.quiet_progress_bars()
        notebook.quiet_progress_bars()                   # idempotent
        assert list(tqdm(range(3), disable=False, desc="bar")) == [0, 1, 2]
        err = capsys.readouterr().err
        assert "bar" not in err and "it/s" not in err
    finally:
        tqdm.__init__ = original
