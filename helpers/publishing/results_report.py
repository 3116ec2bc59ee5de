"""The results-only report of a run: figures, tables and takeaways, no code.

    python -m helpers.results_report [--name NAME]

reads the executed notebooks of runs/<name>/notebooks/ and writes runs/<name>/results.html beside
the full report.html: per notebook its title, section headings, takeaways and the outputs that
are results (figures, tables, printed numbers); no input cells, no progress bars, no set-up, no
exercises. It ends with a gallery of every figure, each with its caption and a link back to it,
and links to the full executed notebooks. One self-contained HTML file (images embedded, no
network), made with nbconvert's HTMLExporter and the offline template in helpers/publishing/templates/.
"""
from __future__ import annotations

import argparse
import base64
import html
import shutil
import sys
from pathlib import Path

from . import cli
from ..settings.catalog import INSTALL_TAG
from ..settings.paths import PROJECT_ROOT, resolve_path

TEMPLATES = Path(__file__).with_name("templates")
LEFT_OUT_TAGS = {"parameters", "injected-parameters", "exercise", "solution", "navigation", INSTALL_TAG}
WIDGET = "application/vnd.jupyter.widget-view+json"
THUMB_WIDTH = 360


class ReportError(RuntimeError):
    """No executed notebooks to report on; the message says what to run."""


def offline_html_exporter(exclude_input: bool = False):
    """nbconvert's HTMLExporter (lab look) that loads nothing from the network: for pages opened offline."""
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="offline_lab", extra_template_basedirs=[str(TEMPLATES)])
    exporter.embed_images = True
    exporter.exclude_input = exporter.exclude_input_prompt = exporter.exclude_output_prompt = exclude_input
    return exporter


def notebook_title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def is_setup(cell, heading: str) -> bool:
    """Cells of the parameters/setup part: tagged, or under the "## Setup" heading."""
    return bool(LEFT_OUT_TAGS & set(cell.metadata.get("tags", []))) or heading.lower() == "setup"


def result_outputs(outputs) -> list:
    """The outputs that are results: images, tables and rich displays, and stdout text with progress
    bars reduced to nothing; stderr, widget views and errors are dropped."""
    kept = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") != "stdout":
                continue
            lines = [line.split("\r")[-1] for line in out.get("text", "").split("\n")]
            text = "\n".join(line for line in lines if line.strip())
            if text:
                kept.append({**out, "text": text + "\n"})
        elif kind in ("display_data", "execute_result") and WIDGET not in out.get("data", {}):
            kept.append(out)
    return kept


def results_notebook(run_dir: Path, notebooks: list[Path]):
    """One notebook of markdown and outputs; returns it and the gallery entries (anchor, caption, png)."""
    import nbformat
    merged = nbformat.v4.new_notebook()
    merged.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                       "language_info": {"name": "python"}, "title": f"Results of run {run_dir.name}"}
    gallery, toc = [], []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        title = notebook_title(nb, path.stem)
        toc.append(f"1. [{title}](#{path.stem})")
        merged.cells.append(nbformat.v4.new_markdown_cell(
            f'<a id="{path.stem}"></a>\n\n---\n# {title}\n\nFull notebook: [in report.html](report.html#{path.stem}) '
            f'| [executed notebook](notebooks/{path.name})'))
        heading = ""
        for cell in nb.cells[1:]:
            if cell.cell_type == "markdown" and cell.source.startswith("## "):
                heading = cell.source.splitlines()[0][3:].strip()
            if is_setup(cell, heading):
                continue
            if cell.cell_type == "markdown":
                text = cell.source
                if text.startswith("## "):
                    merged.cells.append(nbformat.v4.new_markdown_cell(text.splitlines()[0]))
                elif text.lstrip().startswith("**Takeaway") or text.lstrip().startswith("* **"):
                    merged.cells.append(nbformat.v4.new_markdown_cell(text))
            elif cell.cell_type == "code":
                outputs = []
                for out in result_outputs(cell.outputs):
                    png = out.get("data", {}).get("image/png")
                    if png:
                        anchor = f"fig-{len(gallery) + 1}"
                        caption = f"Figure {len(gallery) + 1}. {heading or title} (notebook {path.stem[:2]})"
                        gallery.append((anchor, caption, png))
                        outputs.append(nbformat.v4.new_output("display_data", {"text/html": f'<a id="{anchor}"></a>'}))
                    outputs.append(out)
                if outputs:
                    code = nbformat.v4.new_code_cell("")
                    code.outputs = [nbformat.from_dict(o) for o in outputs]
                    merged.cells.append(code)
    return merged, gallery, toc


def thumbnail(png_b64: str, width: int = THUMB_WIDTH) -> str:
    """A figure scaled down to `width` pixels (base64 PNG in, base64 JPEG out), small for the gallery."""
    import io

    from PIL import Image
    img = Image.open(io.BytesIO(base64.b64decode(png_b64))).convert("RGB")
    if img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.LANCZOS)
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=80, optimize=True)
    return base64.b64encode(buffer.getvalue()).decode()


def gallery_html(gallery) -> str:
    """Thumbnails of every figure, each with its caption, linking to the figure in the page."""
    items = []
    for anchor, caption, png in gallery:
        data = thumbnail(png if isinstance(png, str) else base64.b64encode(png).decode())
        items.append(f'<figure style="display:inline-block; width:31%; margin:0.5%; vertical-align:top">'
                     f'<a href="#{anchor}"><img src="data:image/jpeg;base64,{data}" alt="{html.escape(caption)}" '
                     f'style="width:100%"></a><figcaption style="font-size:85%">{html.escape(caption)}</figcaption>'
                     f'</figure>')
    return '<div class="gallery">' + "\n".join(items) + "</div>"


def write_results(run_dir, log=print) -> Path:
    """runs/<name>/results.html from the executed notebooks; returns its path."""
    import nbformat

    from ..settings.catalog import NOTEBOOKS
    run_dir = resolve_path(run_dir)
    folder = run_dir / "notebooks"
    notebooks = [folder / f"{nb}.ipynb" for nb in NOTEBOOKS if (folder / f"{nb}.ipynb").is_file()]
    if not notebooks:
        raise ReportError(f"no executed notebooks in {folder}: run the course first (make course NAME={run_dir.name})")
    merged, gallery, toc = results_notebook(run_dir, notebooks)
    head = nbformat.v4.new_markdown_cell(
        f"# Results of run `{run_dir.name}`\n\nFigures, tables and takeaways of every notebook, without the code. "
        f"The full executed notebooks: [report.html](report.html) (one page) or the files in "
        f"[notebooks/](notebooks/). [Gallery of all {len(gallery)} figures](#gallery).\n\n" + "\n".join(toc))
    tail = nbformat.v4.new_code_cell("")
    tail.outputs = [nbformat.v4.new_output("display_data", {"text/html": '<a id="gallery"></a>'}),
                    nbformat.v4.new_output("display_data", {"text/html": gallery_html(gallery)})]
    merged.cells = [head, *merged.cells, nbformat.v4.new_markdown_cell("---\n# Gallery of every figure"), tail]
    body, _ = offline_html_exporter(exclude_input=True).from_notebook_node(merged)
    path = run_dir / "results.html"
    path.write_text(body, encoding="utf-8")
    contents = PROJECT_ROOT / "notebooks" / "contents.md"
    if contents.is_file():   # the executed notebooks' navigation links point to it
        shutil.copy(contents, folder / "contents.md")
    log(f"results: {path} ({len(gallery)} figures)")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.results_report", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="quick", help="run folder runs/<name> (an absolute path is used as is)")
    args = parser.parse_args(argv)
    return cli.guarded(lambda: write_results(Path("runs") / args.name), ReportError, 1, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
