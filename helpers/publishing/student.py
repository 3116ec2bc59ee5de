"""Student copies of the course notebooks: the exercises stay, their solutions go.

    python -m helpers.student [--out student]

writes <out>/<notebook>.ipynb for every notebook of notebooks/ (and the contents page), with every
cell tagged `solution` removed; each run of solution cells becomes one empty code cell tagged
`answer` for the student's work. Outputs are cleared. The copies live in a folder beside
notebooks/ (default student/, ignored by git), so their set-up cell finds the helpers as usual.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from . import cli
from ..settings.paths import PROJECT_ROOT, resolve_path

SOLUTION_TAG = "solution"
ANSWER_TAG = "answer"


def is_solution(cell) -> bool:
    return SOLUTION_TAG in cell.metadata.get("tags", [])


def strip_solutions(nb):
    """The notebook without solution cells (in place; returned too): each run of them becomes one
    empty `answer` code cell. Code outputs and execution counts are cleared."""
    import nbformat
    cells, in_solution = [], False
    for cell in nb.cells:
        if is_solution(cell):
            if not in_solution:
                answer = nbformat.v4.new_code_cell("# your answer")
                answer.metadata["tags"] = [ANSWER_TAG]
                cells.append(answer)
            in_solution = True
            continue
        in_solution = False
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    nb.cells = cells
    return nb


def write_student_copies(out="student", source=None, log=print) -> list[Path]:
    """Student copies of every notebook of `source` (default notebooks/) into `out`; returns their paths."""
    import nbformat
    source = Path(source) if source else PROJECT_ROOT / "notebooks"
    out = resolve_path(out)
    if out.resolve() == source.resolve():
        raise ValueError(f"--out {out} is the notebooks folder itself; choose another folder (e.g. student)")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.glob("*.ipynb")):
        nb = strip_solutions(nbformat.read(path, as_version=4))
        target = out / path.name
        nbformat.write(nb, target)
        written.append(target)
    for page in source.glob("*.md"):
        shutil.copy(page, out / page.name)
    log(f"{len(written)} student notebooks without solutions in {out}")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.student", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="student", help="folder for the copies (relative to the project root)")
    args = parser.parse_args(argv)
    return cli.guarded(lambda: write_student_copies(args.out), (ValueError, OSError), 1, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
