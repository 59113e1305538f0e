"""Turn profile defaults plus string overrides (MLflow params arrive as strings) into a config."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from glioma.config.profiles import DEFAULT_PROFILE, profile_defaults
from glioma.errors import ConfigError

T = TypeVar("T")

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


def build_config(cls: type[T], overrides: dict[str, Any] | None = None) -> T:
    """Defaults of ``cls`` <- profile's values <- ``overrides``, typed and validated.

    ``overrides`` may hold ``profile``; values may be strings. Unknown keys are refused so a
    misspelt parameter never passes silently.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown parameter; known: {', '.join(sorted(fields))}")
    profile = str(overrides.get("profile", DEFAULT_PROFILE))
    values = profile_defaults(profile, getattr(cls, "step", ""))
    values.update(overrides)
    typed = {k: _coerce(k, hints[k], v) for k, v in values.items()}
    config = cls(**typed)
    validate = getattr(config, "validate", None)
    if validate:
        validate()
    return config


def as_params(config: Any) -> dict[str, Any]:
    """Every field of a config, for ``mlflow.log_params``."""
    return dataclasses.asdict(config)
