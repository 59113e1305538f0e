"""The one runner every entry point shares: parameters from the step's config, one-line errors.

Each config field becomes ``--field`` (``--field-name`` also works). Values stay strings here;
``build_config`` types and validates them, so ``mlflow run -P`` and the console behave the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

from glioma.config import build_config
from glioma.errors import GliomaError
from glioma.tracking import fail_project_run


def build_parser(config_cls: type, prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=(config_cls.__doc__ or "").strip())
    for field in dataclasses.fields(config_cls):
        flags = {f"--{field.name}", f"--{field.name.replace('_', '-')}"}
        kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if kind == "bool" else {}
        parser.add_argument(
            *sorted(flags),
            dest=field.name,
            default=None,
            metavar=kind.upper() or "VALUE",
            help=f"default: {field.default!r} (or the profile's)",
            **extra,
        )
    return parser


def run_entrypoint(
    config_cls: type, step: Callable[[Any], Any], argv: Sequence[str] | None = None
) -> int:
    """Parse ``argv``, run ``step`` with the config; return the process exit code."""
    prog = f"glioma {config_cls.step}"
    args = build_parser(config_cls, prog).parse_args(argv)
    try:
        step(build_config(config_cls, vars(args)))
    except GliomaError as exc:
        message = f"{prog}: error: {exc}"
        print(message, file=sys.stderr)
        fail_project_run(message)
        return 2
    except KeyboardInterrupt:
        fail_project_run(f"{prog}: interrupted")
        return 130
    return 0
