"""The course runner: executes the notebooks in order with papermill into runs/<name>/.

    python -m helpers.course [--profile quick] [--name NAME] [-p KEY VALUE ...] [--overwrite] [--only NOTEBOOK ...]
    python -m helpers.course --install-kernel      # register this environment's Jupyter kernel (Makefile does it)

Executed copies go to runs/<name>/notebooks/, then runs/<name>/report.html (`helpers.publishing.report`) and
runs/<name>/timings.json (seconds per notebook).  `--only` re-runs some notebooks into an existing
run folder, with the profile and overrides that folder was made with.

Progress bars: the runner shows one bar over the notebooks; inside the headless kernels tqdm is
switched off (TQDM_DISABLE=1), so the executed notebooks and the report hold no \\r-animated bars.
Opened in JupyterLab (with ipywidgets) the same loops show widget progress bars.
Nothing here is imported by the notebooks.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from . import cli
from ..settings import config
from ..settings.catalog import KERNEL_DISPLAY_NAME, KERNEL_NAME, NOTEBOOK_DIR, NOTEBOOK_PARAMETERS, NOTEBOOKS
from ..settings.paths import resolve_path
from .report import ReportError, write_report


class CourseError(RuntimeError):
    """A bad command line or a failed notebook; the message says which and why."""


def _parse_value(text: str):
    """'3' -> 3, '0.05' -> 0.05, anything else stays a string (settings coerce it further)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _select(only) -> list[str]:
    if not only:
        return list(NOTEBOOKS)
    chosen = []
    for name in only:
        stem = Path(name).stem
        matches = [nb for nb in NOTEBOOKS if nb == stem or nb.startswith(stem)]
        if len(matches) != 1:
            raise CourseError(f"--only {name!r} matches {len(matches)} notebooks; valid notebooks: {', '.join(NOTEBOOKS)}")
        chosen.append(matches[0])
    return [nb for nb in NOTEBOOKS if nb in chosen]


def _saved_run(run_dir: Path):
    """(profile, settings that differ from that profile) of an existing run folder, else (None, {})."""
    path = run_dir / "config.json"
    if not path.exists():
        return None, {}
    saved = json.loads(path.read_text())
    base = config.resolve(saved["profile"]).to_dict()
    return saved["profile"], {k: v for k, v in saved["settings"].items()
                              if k not in config.NOT_COMPARED and base.get(k) != v}


def _validate(profile: str, params: dict) -> None:
    valid = set(config.setting_names()) | set(NOTEBOOK_PARAMETERS)
    unknown = sorted(set(params) - valid)
    if unknown:
        raise CourseError(f"unknown parameter(s) {', '.join(unknown)}; valid names: "
                          f"{', '.join(config.setting_names() + sorted(NOTEBOOK_PARAMETERS))}")
    try:   # unknown profile or a value of the wrong type fails here, before any notebook starts
        config.resolve(profile, **{k: v for k, v in params.items() if k not in NOTEBOOK_PARAMETERS})
    except config.SettingsError as e:
        raise CourseError(str(e)) from None


def _failure_message(notebook: str, output: Path, error: Exception) -> str:
    from papermill.exceptions import PapermillExecutionError
    if isinstance(error, PapermillExecutionError):
        lines = [l.strip() for l in (error.source or "").splitlines() if l.strip()]
        telling = [l for l in lines if not l.startswith(("import ", "from ", "#"))] or lines
        where = f", `{telling[0][:70]}`" if telling else ""
        return (f"notebook {notebook} failed in cell {error.cell_index} (execution count {error.exec_count}{where}):\n"
                f"  {error.ename}: {error.evalue}\n"
                f"the executed notebook with the full traceback: {output}")
    return f"notebook {notebook} failed: {type(error).__name__}: {error}\n(see {output})"


@contextlib.contextmanager
def _headless_kernels():
    """Kernels started inside inherit TQDM_DISABLE=1: no progress bars in a headless run (tqdm reads its
    TQDM_* defaults when imported; the runner's own bar, imported earlier, is unaffected)."""
    before = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = before


def install_kernel() -> str:
    """Register this environment's interpreter as the course's Jupyter kernel (inside the environment)."""
    from ipykernel.kernelspec import install
    return install(kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME, prefix=sys.prefix)


def run_course(profile: str | None = "quick", name: str | None = None, params: dict | None = None,
               overwrite: bool = False, only=None, log=print) -> Path:
    """Execute the notebooks with papermill; returns the run folder.  Raises CourseError on any failure."""
    import papermill as pm

    from ..method.runs import RunFolderError, new_run_dir
    params = dict(params or {})
    notebooks = _select(only)
    # Each kernel is stopped at once when its notebook has run ("immediate"): every cell has finished and closed
    # its files by then, and the graceful shutdown only waited (about 1.3 s a notebook, measured on the 2-core
    # machine with the course's imports loaded).
    # OpenMP's own default wait policy (spin a little, then sleep) is left alone: forcing PASSIVE made the
    # course's training loop 1.5x slower on a quiet 2-core machine (threads asleep between the loader's
    # Python work and each kernel). docs/evidence.md "Precision: bf16 against fp32" has the measurement.
    run_dir = resolve_path(Path("runs") / (name or profile or "quick"))
    if only:
        saved_profile, saved_params = _saved_run(run_dir)
        profile = profile or saved_profile or "quick"
        params = {**(saved_params if profile == saved_profile else {}), **params}
    profile = profile or "quick"
    _validate(profile, params)
    if only:
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        try:
            new_run_dir(run_dir, overwrite=overwrite)
        except RunFolderError as e:
            raise CourseError(str(e)) from None
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    timings_path = run_dir / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    log(f"run folder: {run_dir} (profile {profile}" + (f", {params}" if params else "") + ")")
    for k, nb in enumerate(notebooks, start=1):
        nb_params = {"run_dir": str(run_dir), "profile": profile}
        nb_params.update({key: value for key, value in params.items()
                          if key not in NOTEBOOK_PARAMETERS or nb in NOTEBOOK_PARAMETERS[key]})
        output = out_dir / f"{nb}.ipynb"
        log(f"[{k}/{len(notebooks)}] {nb} ...")
        t0 = time.time()
        try:
            with _headless_kernels():
                pm.execute_notebook(str(NOTEBOOK_DIR / f"{nb}.ipynb"), str(output), parameters=nb_params,
                                    kernel_name=KERNEL_NAME, cwd=str(NOTEBOOK_DIR), progress_bar=True,
                                    log_output=False, extra_arguments=["--IPKernelApp.log_level=ERROR"],
                                    shutdown_kernel="immediate")
        except Exception as e:   # PapermillExecutionError, a dead kernel, a timeout ...
            timings[nb] = round(time.time() - t0, 1)
            config.save_json(timings, timings_path)
            raise CourseError(_failure_message(nb, output, e)) from None
        timings[nb] = round(time.time() - t0, 1)
        config.save_json(timings, timings_path)
        log(f"[{k}/{len(notebooks)}] {nb} done in {timings[nb]:.0f} s")
    try:
        report = write_report(run_dir, title=f"Three-stage long-tailed SAR course: run {run_dir.name} (profile {profile})")
    except ReportError as e:
        raise CourseError(str(e)) from None
    log(f"timings: {timings_path}")
    from .results_report import write_results
    results = write_results(run_dir, log=lambda _: None)
    log(f"report: {report}")
    log(f"results only: {results}")
    return run_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course",
                                     description="Run the course notebooks in order into runs/<name>/.")
    parser.add_argument("--profile", default=None,
                        help=f"settings profile: {', '.join(config.profile_names())} (default: quick, or the "
                             f"run folder's own profile with --only)")
    parser.add_argument("--name", default=None, help="run folder runs/<name> (default: the profile name); "
                                                     "an absolute path is used as is")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="override a setting, e.g. -p stage1_epochs 3 (repeatable)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder of that name")
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK",
                        help=f"run only these notebooks into an existing run folder ({', '.join(NOTEBOOKS)})")
    parser.add_argument("--install-kernel", action="store_true",
                        help=f"only register this environment's Python as the Jupyter kernel {KERNEL_NAME!r}")
    args = parser.parse_args(argv)
    if args.install_kernel:
        print(f"kernel {KERNEL_NAME!r} installed in {install_kernel()}")
        return 0
    if args.profile is not None and args.profile not in config.profile_names():
        print(f"error: unknown profile {args.profile!r}; valid profiles: {', '.join(config.profile_names())}",
              file=sys.stderr)
        return 2
    params = {key: _parse_value(value) for key, value in args.param}
    start = time.time()
    rc = cli.guarded(lambda: run_course(args.profile, args.name, params, args.overwrite, args.only),
                     CourseError, 1, "interrupted")
    if rc == 0:
        print(f"total {time.time() - start:.0f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
