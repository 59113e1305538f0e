"""Turn profile defaults plus string overrides (MLflow params arrive as strings) into a config."""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any, TypeVar

from glioma.config.fields import StepConfig, section_of
from glioma.config.profiles import DEFAULT_PROFILE, all_profiles, profile_defaults
from glioma.errors import ConfigError

T = TypeVar("T", bound=StepConfig)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, kind: Any, value: Any) -> Any:
    """Convert ``value`` to ``kind``; raise ConfigError naming the parameter otherwise."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    text = str(value).strip()
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{name}: expected true or false, got {text!r}")
    if kind in (int, float):
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {text!r}") from None
        if kind is int:
            if not number.is_integer():
                raise ConfigError(f"{name}: expected a whole number, got {text!r}")
            return int(number)
        return number
    return text


def renamed_overrides(cls: type[StepConfig], overrides: dict[str, Any]) -> dict[str, Any]:
    """Old parameter spellings still work for one release, each with a one-line notice."""
    out = dict(overrides)
    for old, new in cls.renamed.items():
        if old in out:
            print(
                f"glioma {cls.step}: --{old} is deprecated and goes in the next release; "
                f"use --{new}",
                file=sys.stderr,
            )
            out[new] = out.pop(old)
    return out


def check_profile_keys(cls: type[StepConfig], profile: str, values: dict[str, Any]) -> None:
    """A misspelt key in a profile is an error naming it, not a silently ignored setting; so is
    a shared field set in a step's section rather than the one that chooses it."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in sorted(values):
        where = f"profile {profile!r}: {cls.section()}.{name}"
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: not a parameter of {cls.section()}; known: {known}")
        shared = section_of(fields[name])
        if shared:
            raise ConfigError(f"{where}: shared by several steps; set it as {shared}.{name}")


def profile_values(cls: type[StepConfig], profile: str) -> dict[str, Any]:
    """What ``profile`` chooses for ``cls``: its section's values, and each shared field's value
    from the section that chooses it (``glioma.config.fields``)."""
    values = profile_defaults(profile, cls.section())
    check_profile_keys(cls, profile, values)
    for item in dataclasses.fields(cls):
        shared = section_of(item)
        chosen = profile_defaults(profile, shared) if shared else {}
        if item.name in chosen:
            values[item.name] = chosen[item.name]
    return values


def build_config(cls: type[T], overrides: dict[str, Any] | None = None) -> T:
    """Defaults of ``cls`` <- profile's values <- ``overrides``, typed, then checked by ``cls``.

    ``overrides`` may hold ``profile``; values may be strings. Unknown keys are refused so a
    misspelt parameter never passes silently.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    overrides = renamed_overrides(cls, overrides)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown parameter; known: {', '.join(sorted(fields))}")
    profile = str(overrides.get("profile", DEFAULT_PROFILE))
    if profile not in all_profiles():
        choices = sorted(all_profiles())
        raise ConfigError(f"profile: unknown profile {profile!r}; choose one of {choices}")
    values = profile_values(cls, profile)
    values.update(overrides)
    typed = {k: _coerce(k, hints[k], v) for k, v in values.items()}
    return cls(**typed)


def as_params(config: Any) -> dict[str, Any]:
    """Every field of a config, for ``mlflow.log_params``."""
    return dataclasses.asdict(config)
