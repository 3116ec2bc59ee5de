"""The HTML report of a course run: every executed notebook of a run folder in one self-contained page."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..settings.catalog import KERNELSPEC, NOTEBOOKS


class ReportError(RuntimeError):
    """No executed notebook to report on."""


def _merge_streams(outputs):
    """Consecutive stream outputs of a cell as one (a cell that prints line by line), empty ones dropped.

    Progress bars need no scrubbing: the runner executes the notebooks with tqdm switched off."""
    merged = []
    for out in outputs:
        if out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream" \
                and merged[-1]["name"] == out["name"]:
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    return [o for o in merged if o.get("output_type") != "stream" or o["text"].strip()]


def write_report(run_dir: Path, title: str | None = None) -> Path:
    """All executed notebooks of `run_dir` concatenated into one self-contained HTML page."""
    import nbformat
    run_dir = Path(run_dir)
    timings_path = run_dir / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    found = [nb for nb in NOTEBOOKS if (run_dir / "notebooks" / f"{nb}.ipynb").exists()]
    if not found:
        raise ReportError(f"no executed notebooks in {run_dir / 'notebooks'}; nothing to report")
    merged = nbformat.v4.new_notebook()
    merged.metadata = {"kernelspec": dict(KERNELSPEC),
                       "language_info": {"name": "python"}}
    contents = "\n".join(f"{i + 1}. [{nb}](#{nb}) ({timings[nb]:.0f} s)" if nb in timings else f"{i + 1}. [{nb}](#{nb})"
                         for i, nb in enumerate(found))
    merged.cells.append(nbformat.v4.new_markdown_cell(
        f"# {title or 'Three-stage training for long-tailed SAR classification'}\n\n"
        f"Run folder: `{run_dir}`\n\nGenerated {time.strftime('%Y-%m-%d %H:%M')}. Notebooks:\n\n{contents}"))
    for nb in found:
        notebook = nbformat.read(run_dir / "notebooks" / f"{nb}.ipynb", as_version=4)
        merged.cells.append(nbformat.v4.new_markdown_cell(f'<a id="{nb}"></a>\n\n---\n# Notebook {nb}'))
        merged.cells.extend(notebook.cells)
    for cell in merged.cells:
        if cell.cell_type == "code":
            cell.outputs = _merge_streams(cell.outputs)
    from .results_report import offline_html_exporter
    exporter = offline_html_exporter()   # lab look, nothing loaded from the network
    body, _ = exporter.from_notebook_node(merged)
    path = run_dir / "report.html"
    path.write_text(body, encoding="utf-8")
    return path

