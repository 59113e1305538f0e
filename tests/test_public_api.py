"""The suite's code uses MLflow's public API only (issue 32): an import of a private or
store-internal MLflow module in glioma/, entrypoints/ or benchmarks/ fails here, unless it is
listed in ALLOWED with the reason no public API does the job. (Tests may look inside MLflow to
check what its server does with our models; they are not scanned.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("glioma", "entrypoints", "benchmarks")
# Modules MLflow does not document for users: its stores, run-context plugins, server, utils.
INTERNAL = (
    "mlflow.store",
    "mlflow.tracking.context",
    "mlflow.tracking._",
    "mlflow.utils",
    "mlflow.server",
    "mlflow.projects.backend",
)
ALLOWED = {
    ("glioma/pipeline/steps/train_cls.py", "mlflow.store.artifact.artifact_repository_registry"): (
        "no public API deletes artifacts (MLflow 3.17: mlflow.artifacts lists and downloads "
        "only; get_artifact_repository, mlflow/store/artifact/artifact_repository_registry.py:144,"
        " and ArtifactRepository.delete_artifacts, mlflow/store/artifact/artifact_repo.py:480, "
        "are what `mlflow gc` itself uses, mlflow/cli/__init__.py:923)"
    ),
}


def private_imports(source: str) -> list[str]:
    """The MLflow modules or names ``source`` imports that are private or store-internal."""
    found = []
    for item in ast.walk(ast.parse(source)):
        if isinstance(item, ast.Import):
            modules = [(alias.name, "") for alias in item.names]
        elif isinstance(item, ast.ImportFrom) and item.module:
            modules = [(item.module, alias.name) for alias in item.names]
        else:
            continue
        for module, name in modules:
            if module != "mlflow" and not module.startswith("mlflow."):
                continue
            private = any(part.startswith("_") for part in module.split(".")) or name.startswith(
                "_"
            )
            if private or module.startswith(INTERNAL):
                found.append(module)
    return found


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore", True),
        ("from mlflow.tracking.context import registry", True),
        ("def f():\n    from mlflow.models.utils import _enforce_schema", True),
        ("import mlflow.tracking._tracking_service.utils", True),
        ("import mlflow\nfrom mlflow.tracking import MlflowClient", False),
        ("from mlflow.models import ModelSignature\nfrom mlflow.types import Schema", False),
    ],
)
def test_the_scan_tells_private_imports_from_public_ones(source, flagged):
    assert bool(private_imports(source)) is flagged


def test_the_suites_code_imports_no_private_mlflow_module():
    found = []
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            where = path.relative_to(REPO).as_posix()
            for module in private_imports(path.read_text()):
                if (where, module) not in ALLOWED:
                    found.append(f"{where}: {module}")
    assert not found, "private MLflow imports (use the public API, or say why in ALLOWED)"
    for (where, module), reason in ALLOWED.items():  # every exception is still needed
        assert module in private_imports((REPO / where).read_text()), (where, reason)
