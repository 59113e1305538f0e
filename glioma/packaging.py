"""The package's source, copied for a model to carry (MLflow ``code_paths``).

A model logged with this code loads wherever MLflow and the model's own pip requirements are
installed: no checkout of the project, no ``pip install -e``. A model carries the modules that
loading a model imports, followed through every ``import glioma...`` in them (at top level and
inside functions), not the whole package: 17 files and 58 kB against 113 files and 0.35 MB.
Every model in a study is written, copied into the store and read back several times, so the
file count is the time (a quick study writes 56 models).

Every model carries the same set, the union for the three kinds of model (fold, ensemble,
DDPM): in a process without the project, the first model loaded decides where ``glioma`` is
imported from, and the models loaded after it must find their modules there too.

Also the project's two environment files, written from pyproject's dependencies so they cannot
drift from it: ``python_env.yaml`` (MLproject's environment: ``mlflow run .`` builds it with
virtualenv or uv) and ``conda.yaml`` (for conda users). ``python -m glioma.packaging`` (``make
envs``) rewrites both.
"""

from __future__ import annotations

import ast
import functools
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import glioma
from glioma.fileio import write_text

PACKAGE_DIR = Path(glioma.__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name
PACKAGE_NAME = "glioma-suite"  # the distribution (pyproject's [project] name)
CONDA_PYTHON = "3.11"  # the Python of constraints/py3.11.txt, the versions the suite is tested at
# The Python constraints/py3.11.txt was frozen on: MLflow's virtualenv manager asks pyenv for
# exactly this version (a bare "3.11" would make pyenv build the newest 3.11 from source).
PYENV_PYTHON = "3.11.7"
CONSTRAINTS = "constraints/py3.11.txt"
# What loading a model imports: a fold's pickle, the ensemble's and the DDPM's model-from-code.
MODEL_MODULES = (
    "glioma.classify.network",
    "glioma.classify.ensemble_model",
    "glioma.diffusion.pyfunc_model",
)


def module_source(module: str) -> Path | None:
    """The file of ``glioma.x.y`` (``glioma/x/y.py`` or ``glioma/x/y/__init__.py``); None for a
    name that is no module of the package (an imported function, a namespace folder)."""
    path = PACKAGE_DIR.parent.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_names(source: Path) -> list[str]:
    """Every name an ``import`` or ``from ... import`` of the package in ``source`` may load
    (``from glioma.x import y``: ``glioma.x`` and ``glioma.x.y``, which may be a module)."""
    names = []
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return [n for n in names if n.split(".")[0] == PACKAGE]


@functools.cache
def import_closure(*roots: str) -> list[Path]:
    """The package's files that importing ``roots`` loads: the roots, their parent packages'
    ``__init__.py`` and, recursively, every module of the package they import (read once a
    process: the source a process runs is the one it started with)."""
    files: set[Path] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # the parent packages
        source = module_source(name)
        if source is None or source in files:
            continue
        files.add(source)
        todo += imported_names(source)
    return sorted(files)


@contextmanager
def package_code(roots: tuple[str, ...] = MODEL_MODULES) -> Iterator[list[str]]:
    """``code_paths`` for ``log_model``/``save_model``: a folder ``glioma/`` holding the files
    that importing the modules ``roots`` (``glioma.x.y``) loads."""
    with tempfile.TemporaryDirectory(prefix="glioma-code-") as tmp:
        for source in import_closure(*roots):
            target = Path(tmp) / source.relative_to(PACKAGE_DIR.parent)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        yield [str(Path(tmp) / PACKAGE)]


def pinned_requirements(*distributions: str) -> list[str]:
    """``name==version`` of each distribution this process runs: a model names the versions it
    was trained with, not floors (a local label such as ``+cu130`` is dropped: it names a wheel
    index, not a version).
    """
    return [f"{name}=={metadata.version(name).split('+')[0]}" for name in distributions]


def project_dependencies(pyproject: Path) -> list[str]:
    """``[project] dependencies`` of a pyproject.toml (Python 3.11+: ``tomllib``)."""
    import tomllib

    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def project_extras(pyproject: Path) -> list[str]:
    """``[project.optional-dependencies]``' names (``fid``, ``gpu``, ...)."""
    import tomllib

    return list(tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"])


def conda_environment(dependencies: Sequence[str]) -> str:
    """conda.yaml's text: conda-forge's Python and pip, then ``dependencies`` and the project
    itself through pip, as ``pip install -e .`` would install them."""
    lines = [
        "# Generated from pyproject.toml's [project] dependencies by `make envs`",
        "# (python -m glioma.packaging): edit pyproject.toml, not this file;",
        "# tests/test_packaging.py fails when the two differ.",
        "# For conda users: conda env create -f conda.yaml, then mlflow run . --env-manager local",
        "# (MLproject's own environment is python_env.yaml).",
        "name: glioma",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={CONDA_PYTHON}",
        "  - pip",
        "  - pip:",
        *(f"      - {requirement}" for requirement in dependencies),
        "      - -e .",
    ]
    return "\n".join(lines) + "\n"


def python_environment() -> str:
    """python_env.yaml's text: pyenv's Python, then the project as ``make setup`` installs it
    (``pip install -e .`` within the tested versions: pyproject's dependencies at
    constraints/py3.11.txt's pins)."""
    lines = [
        "# Generated by `make envs` (python -m glioma.packaging): the project installed as",
        "# `make setup` installs it, pyproject.toml's dependencies at the tested versions;",
        "# tests/test_packaging.py fails when this differs from what it writes.",
        "# MLproject's environment: `mlflow run .` builds it with virtualenv (pyenv's Python)",
        "# or, with --env-manager uv, with uv. Conda users: conda.yaml (README).",
        f'python: "{PYENV_PYTHON}"',
        "build_dependencies:",
        "  - pip",
        "dependencies:",
        f"  - -c {CONSTRAINTS}",
        "  - -e .",
    ]
    return "\n".join(lines) + "\n"


def write_environments(checkout: Path) -> list[Path]:
    """Rewrite conda.yaml and python_env.yaml from ``checkout``'s pyproject.toml."""
    written = {
        checkout / "conda.yaml": conda_environment(
            project_dependencies(checkout / "pyproject.toml")
        ),
        checkout / "python_env.yaml": python_environment(),
    }
    for path, text in written.items():
        write_text(path, text)
    return list(written)


# A GPU host brings its own CUDA build of these, and torch's CUDA libraries (nvidia-*, cuda-*;
# not nvidia-ml-py, the gpu extra's NVML bindings).
HOST_PROVIDED = ("torch", "torchvision", "triton")
HOST_PREFIXES = ("nvidia-", "cuda-")
SUITE_NEEDS = ("nvidia-ml-py",)
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def host_provided(name: str) -> bool:
    """A distribution a GPU host brings with its own torch (left out of the wheelhouse)."""
    key = name.lower().replace("_", "-")
    return key in HOST_PROVIDED or (key.startswith(HOST_PREFIXES) and key not in SUITE_NEEDS)


def _pip(*args: str, capture: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(command, check=True, text=True, capture_output=capture)


def wheel_requirements(checkout: Path, extras: str) -> list[str]:
    """``name==version`` of every distribution ``pip install <checkout>[extras]`` installs here
    at the tested versions (pip's resolver, dry run), less the suite and what a GPU host
    brings (``HOST_PROVIDED``)."""
    constraints = checkout / CONSTRAINTS
    report = _pip(
        "install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-",
        "-c", str(constraints), f"{checkout}[{extras}]", capture=True,
    ).stdout  # fmt: skip
    wanted = []
    for item in json.loads(report)["install"]:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if name.lower().replace("_", "-") == PACKAGE_NAME or host_provided(name):
            continue
        wanted.append(f"{name}=={version.split('+')[0]}")
    return sorted(wanted)


def build_wheelhouse(checkout: Path, folder: Path, *, extras: str, python: str) -> list[Path]:
    """Every wheel the suite needs on Linux x86-64 under ``python`` (3.11) into ``folder``:
    binary wheels only, so the host builds nothing; the suite's own wheel beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in WHEEL_PLATFORMS for arg in ("--platform", p)]
    _pip(
        "download", "--quiet", "--no-deps", "--only-binary=:all:", *platforms,
        "--python-version", python, "--implementation", "cp", "-d", str(folder),
        *wheel_requirements(checkout, extras),
    )  # fmt: skip
    _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(folder), str(checkout))
    return sorted(folder.glob("*.whl"))


def main(argv: list[str]) -> None:
    """``python -m glioma.packaging``: the environment files; ``... wheelhouse DIR [EXTRAS]``:
    the offline wheelhouse (README, "Offline GPU host")."""
    checkout = PACKAGE_DIR.parent
    if argv[:1] == ["wheelhouse"]:
        folder = Path(argv[1] if len(argv) > 1 else "wheelhouse")
        extras = argv[2] if len(argv) > 2 else "fid,gpu"
        known = project_extras(checkout / "pyproject.toml")
        unknown = [e for e in extras.split(",") if e and e not in known]
        if unknown:
            raise SystemExit(
                f"wheelhouse: unknown extra {unknown[0]!r}; extras: {', '.join(known)}"
            )
        wheels = build_wheelhouse(checkout, folder, extras=extras, python=CONDA_PYTHON)
        size = sum(w.stat().st_size for w in wheels) / 1e6
        print(f"wrote {len(wheels)} wheels, {size:.0f} MB, to {folder} (without torch and "
              f"torchvision: the host's own CUDA build)")  # fmt: skip
        return
    for path in write_environments(checkout):
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
