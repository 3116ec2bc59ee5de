"""The package's layout is its architecture: the wings import only the wings below them, no module takes
part in an import circle, the top level holds only the commands, and docs/architecture.md names every
module where it lives."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "helpers"
# Each wing may import its own modules and those of the wings of a lower rank (helpers/__init__.py).
RANK = {"settings": 0, "figures": 0, "datasets": 1, "method": 2, "challenge": 3, "publishing": 3,
        "evidence": 4, "lessons": 5, "commands": 6}
COMMANDS = {"course", "compare", "sweep", "predict", "slides", "student", "results_report", "book", "train", "score"}


def modules() -> dict[str, Path]:
    out = {}
    for p in HELPERS.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else "commands" if len(parts) == 2 else "package"


def imports(mods: dict[str, Path]) -> set[tuple[str, str]]:
    """(importer, imported) over every import of helpers modules, the ones inside functions included."""
    edges = set()
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    edges.add((name, full if full in mods else target))
            elif isinstance(node, ast.Import):
                edges.update((name, a.name) for a in node.names)
    return {(a, b) for a, b in edges if b in mods and a != b and b != "helpers"}


def test_wings_import_only_the_wings_below_them():
    edges = imports(modules())
    assert len(edges) > 100                     # the walk found the package's imports
    wrong = sorted(f"{a} -> {b}" for a, b in edges
                   if wing(a) != wing(b) and wing(b) != "package" and RANK[wing(b)] >= RANK[wing(a)])
    assert not wrong, wrong


def test_no_import_circle():
    mods = modules()
    graph = {m: set() for m in mods}
    for a, b in imports(mods):
        graph[a].add(b)
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in graph[m]:
            if state.get(n) == "open":
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"
    for m in graph:
        if m not in state:
            visit(m)


def test_the_top_level_holds_only_the_commands():
    top = {p.stem for p in HELPERS.glob("*.py")} - {"__init__"}
    assert top == COMMANDS
    for name in COMMANDS:
        tree = ast.parse((HELPERS / f"{name}.py").read_text())
        froms = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
        assert len(froms) == 1 and [a.name for a in froms[0].names] == ["main"], name
        assert (HELPERS / froms[0].module.replace(".", "/")).with_suffix(".py").is_file(), name
    assert set(RANK) - {"commands"} == {p.name for p in HELPERS.iterdir() if (p / "__init__.py").is_file()}


def test_the_architecture_page_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing = [str(p.relative_to(ROOT)) for p in HELPERS.rglob("*.py")
               if p.name != "__init__.py" and f"`{p.relative_to(ROOT)}`" not in text]
    assert not missing, missing
