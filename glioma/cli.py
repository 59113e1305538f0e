"""The command line: ``glioma STEP [--param value ...]`` and every step's parser.

Each config field becomes ``--field`` (``--field-name`` also works), with the field's help, its
choices and its default as the chosen profile resolves it (``--profile paper --help`` shows the
paper values). Values stay strings here; ``build_config`` types and checks them, so
``mlflow run -P`` and the console behave the same. Old spellings of renamed parameters still
work for one release, with a one-line notice. The step's module is imported by name (the step
table, ``glioma.config.steps``) only once its arguments parsed: ``--help`` and a bad flag never
import torch or MLflow. The only module of the package that parses command lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from glioma.config import DEFAULT_PROFILE, profile_values
from glioma.config.build import build_config
from glioma.config.fields import choices_of, help_of
from glioma.config.profiles import all_profiles
from glioma.config.steps import entry_points
from glioma.errors import GliomaError
from glioma.names import param_text


def chosen_profile(argv: Sequence[str]) -> str:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--profile", default=DEFAULT_PROFILE)
    known, _ = pre.parse_known_args(argv)
    return known.profile if known.profile in all_profiles() else DEFAULT_PROFILE


def field_help(field: dataclasses.Field, profile: str, from_profile: dict[str, Any]) -> str:
    value = from_profile.get(field.name, field.default)
    source = f"profile {profile}" if field.name in from_profile else "default"
    text = f"{help_of(field)} ({source}: {param_text(value) or repr('')}"
    choices = choices_of(field)
    if choices:
        text += f"; one of {', '.join(repr(c) for c in choices)}"
    return text.replace("%", "%%") + ")"


def build_parser(config_cls: type, prog: str, profile: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=(config_cls.__doc__ or "").strip())
    from_profile = profile_values(config_cls, profile)
    for field in dataclasses.fields(config_cls):
        flags = {f"--{field.name}", f"--{field.name.replace('_', '-')}"}
        kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if kind == "bool" else {}
        parser.add_argument(
            *sorted(flags),
            dest=field.name,
            default=None,
            metavar=kind.upper() or "VALUE",
            help=field_help(field, profile, from_profile),
            **extra,
        )
    for old, new in config_cls.renamed.items():
        parser.add_argument(f"--{old}", dest=old, default=None, help=f"deprecated: --{new}")
    return parser


def run_step(step: str, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` for ``step``, run it with the built config; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    config_cls = entry_points()[step].config
    prog = f"glioma {step}"
    args = build_parser(config_cls, prog, chosen_profile(argv)).parse_args(argv)
    module, _, function = entry_points()[step].function.partition(":")
    run = getattr(importlib.import_module(module), function)
    fail_project_run = importlib.import_module("glioma.tracking").fail_project_run
    try:
        run(build_config(config_cls, vars(args)))
    except GliomaError as exc:
        message = f"{prog}: error: {exc}"
        print(message, file=sys.stderr)
        fail_project_run(message)
        return 2
    except KeyboardInterrupt:
        fail_project_run(f"{prog}: interrupted")
        return 130
    return 0


def predict_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glioma predict",
        description="Post prepare-normalised patches to a served ensemble "
        "(mlflow models serve) and print each image's HGG probability.",
    )
    parser.add_argument("data", help="a prepare folder (data/prepared/<site>) or images.npy")
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:5001")
    parser.add_argument("--batch_size", type=int, default=64, help="images per request (64)")
    parser.add_argument("--out", help="also write the table to this CSV file")
    return parser


def run_predict(argv: Sequence[str]) -> int:
    """``glioma predict``: the client of a served ensemble; it opens no MLflow run."""
    parser = predict_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"batch_size: expected a positive number, got {args.batch_size}")
    client = importlib.import_module("glioma.classify.client")
    try:
        client.predict_and_print(args.data, url=args.url, batch_size=args.batch_size, out=args.out)
    except GliomaError as exc:
        print(f"glioma predict: error: {exc}", file=sys.stderr)
        return 2
    return 0


# Commands beside the steps: they open no MLflow run.
TOOLS = {"predict": run_predict}


def main(argv: list[str] | None = None) -> int:
    """The console script: ``glioma STEP ...`` or ``glioma predict ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        return TOOLS[argv[0]](argv[1:])
    steps = entry_points()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in steps:
        known = ", ".join(steps)
        if argv and argv[0] not in ("-h", "--help"):
            also = ", ".join(TOOLS)
            print(
                f"glioma: error: unknown step {argv[0]!r}; steps: {known}; also: {also}",
                file=sys.stderr,
            )
            return 2
        print(
            f"usage: glioma STEP [--param value ...]\nsteps: {known}\neach step: glioma STEP --help"
            "\nalso: glioma predict --url URL IMAGES (post patches to a served ensemble)"
        )
        return 0
    return run_step(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main())
