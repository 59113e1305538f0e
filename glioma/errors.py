"""Exceptions whose message is the one line a user sees (no traceback), and the two checks that
raise them (every layer's dataclasses validate at construction with these)."""

from __future__ import annotations

from typing import Any


class GliomaError(Exception):
    """Base class: the message names the thing and the reason, on one line."""


class ConfigError(GliomaError):
    """A parameter value that cannot be used."""


class DataError(GliomaError):
    """Input data that stops a whole step (missing root, no valid subject, ...)."""


class SubjectError(GliomaError):
    """One subject cannot be used; the step records it in exclusions.csv and goes on."""


class MissingWeightsError(GliomaError):
    """Weights this machine does not have; the message says what to download and where."""


def check(ok: bool, message: str) -> None:
    """Raise the ConfigError ``message`` (which names the field) unless ``ok``."""
    if not ok:
        raise ConfigError(message)


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    shown = ", ".join(map(repr, choices))
    check(value in choices, f"{name}: expected one of {shown}, got {value!r}")
