"""The layers DESIGN.md states are the ones the imports follow: every import of every file in
glioma/, entrypoints/ and benchmarks/ (``import glioma.x`` and ``from glioma.x import y``, at top
level, inside functions, under ``try``) points down or sideways, never up."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Top to bottom; a file may import its own layer and the layers below it. ``base``: the modules
# directly under glioma/ that every layer uses (vocabulary, errors, files, devices).
LAYERS = [
    "benchmarks",
    "entrypoints",
    "cli",
    "pipeline",
    "config",
    "scoring",
    "evaluate",
    "classify",
    "diffusion",
    "data",
    "tracking",
    "base",
]
BASE = {"names", "errors", "fileio", "devices", "packaging", "parallel", "weights", "glioma"}


def layer_of_module(module: str) -> str:
    """``glioma.scoring.tstr`` -> ``scoring``; ``glioma.names`` -> ``base``."""
    parts = module.split(".")
    if parts[0] in ("entrypoints", "benchmarks"):
        return parts[0]
    name = parts[1] if len(parts) > 1 else "glioma"
    return "base" if name in BASE else name


def layer_of_file(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return layer_of_module(".".join(p for p in parts if p != "__init__"))


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of glioma, entrypoints or benchmarks anywhere in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; name the module")
    ours = ("glioma", "entrypoints", "benchmarks")
    return [(line, m) for line, m in found if m.split(".")[0] in ours]


def source_files() -> list[Path]:
    tops = ("glioma", "entrypoints", "benchmarks")
    return sorted(p for top in tops for p in (REPO / top).rglob("*.py"))


def test_every_import_points_down_or_sideways():
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for path in source_files():
        here = layer_of_file(path)
        for line, module in imported_modules(path):
            there = layer_of_module(module)
            if rank[there] < rank[here]:
                where = f"{path.relative_to(REPO)}:{line} ({here})"
                upward.append(f"{where} imports {module} ({there})")
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_every_package_of_glioma_has_a_layer():
    packages = {p.name for p in (REPO / "glioma").iterdir() if (p / "__init__.py").is_file()}
    modules = {p.stem for p in (REPO / "glioma").glob("*.py") if p.stem != "__init__"}
    assert packages <= set(LAYERS), packages - set(LAYERS)
    assert modules - {"cli"} <= BASE, modules - {"cli"} - BASE


def test_design_and_the_package_docstring_state_this_order():
    design = (REPO / "docs" / "DESIGN.md").read_text()
    block = design.split("## Layers", 1)[1].split("```")[1]
    listed = re.findall(r"^(entrypoints|glioma/\w+)", block, re.M)
    order = [layer_of_module(name.replace("/", ".")) for name in listed]
    assert list(dict.fromkeys(order)) == LAYERS[1:], order  # benchmarks: not in DESIGN's list
    docstring = ast.get_docstring(ast.parse((REPO / "glioma" / "__init__.py").read_text()))
    chain = re.search(r"only\):\s*(.+?);", docstring, re.S).group(1).split("->")
    assert [n.strip() for n in chain] == LAYERS[2:]
