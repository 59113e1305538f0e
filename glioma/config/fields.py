"""Config fields that carry their own help text, choices and role, and the base of every config.

A field is declared once, with everything the tools around it need: ``--help`` prints its help
and choices, construction checks its choices, and the step-reuse key leaves out the fields whose
role says they cannot change a result:

- ``volatile``: where or how fast a step runs (device, workers, checkpoint cadence, local
  output folders): two runs that differ only there give the same result, so one is reused;
- ``upstream``: which earlier run to read (``prepare_run``, ``sample_run``, ...) or what to
  prepare first: the graph turns it into an input node, and the input's run id is in the key.

A field that several steps share (the study plan's, main's copy of prepare's ``phantom_scale``)
names the profile section that chooses it (``section``): every config that has the field takes
the profile's value from there, so no step needs a "0: the profile's" sentinel.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from glioma.config.profiles import all_profiles
from glioma.errors import ConfigError, check, check_choice

VOLATILE = "volatile"
UPSTREAM = "upstream"
RESULT = "result"


def param(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] | None = None,
    role: str = RESULT,
    section: str = "",
) -> Any:
    """A config field: its default, one line of help, allowed values, its role, and the profile
    section that chooses it when that is not the config's own (module docstring)."""
    if role not in (RESULT, VOLATILE, UPSTREAM):
        raise ValueError(f"role: expected result, volatile or upstream, got {role!r}")
    metadata = {"help": help, "choices": choices, "role": role, "section": section}
    return field(default=default, metadata=metadata)


def role_of(item: dataclasses.Field) -> str:
    return item.metadata.get("role", RESULT)


def help_of(item: dataclasses.Field) -> str:
    return item.metadata.get("help", "")


def choices_of(item: dataclasses.Field) -> tuple[Any, ...] | None:
    return item.metadata.get("choices")


def section_of(item: dataclasses.Field) -> str:
    """The profile section that chooses a shared field ('': its config's own section)."""
    return item.metadata.get("section", "")


def choice_list(name: str, text: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    """``"a,b"`` -> ("a", "b"), not empty and each one of ``choices``; ConfigError naming
    ``name`` otherwise."""
    values = tuple(v for v in str(text).replace(" ", "").split(",") if v)
    check(bool(values), f"{name}: empty; name at least one of " + ", ".join(choices))
    for value in values:
        check_choice(name, value, choices)
    return values


def int_list(text: str, name: str) -> tuple[int, ...]:
    """``"1,2,2"`` -> (1, 2, 2); a ConfigError naming ``name`` otherwise."""
    try:
        values = tuple(int(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        raise ConfigError(f"{name}: expected comma-separated whole numbers, got {text!r}") from None
    check(bool(values) and min(values) > 0, f"{name}: expected positive numbers, got {text!r}")
    return values


@dataclass(frozen=True, kw_only=True)
class StepConfig:
    """The base of every config: checks itself at construction and names the bad field.

    ``step`` names the step (and the profile section that sets its defaults, unless
    ``profile_section`` says otherwise); ``renamed`` maps an old parameter spelling to its new
    name for one release.
    """

    step: ClassVar[str] = ""
    profile_section: ClassVar[str] = ""
    renamed: ClassVar[dict[str, str]] = {}

    seed: int = param(0, "seed of every random draw of the step")
    profile: str = param("quick", "the profile whose defaults fill what is not given")

    def __post_init__(self) -> None:
        check_choice("profile", self.profile, tuple(all_profiles()))
        check(self.seed >= 0, f"seed: must be >= 0, got {self.seed}")
        for item in dataclasses.fields(self):
            choices = choices_of(item)
            if choices is not None:
                check_choice(item.name, getattr(self, item.name), choices)
        self.check()

    def check(self) -> None:
        """Checks beyond the declared choices; each raises a ConfigError naming its field."""

    def unused_fields(self) -> frozenset[str]:
        """Result fields that this value's other fields make irrelevant (a baseline classifier
        reads no synthetic ratio): left out of the reuse key, as they cannot change the result."""
        return frozenset()

    @classmethod
    def section(cls) -> str:
        return cls.profile_section or cls.step

    @classmethod
    def fields_with_role(cls, role: str) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if role_of(f) == role)


def result_fields(config: StepConfig) -> dict[str, Any]:
    """The fields that can change a step's result: all but the volatile and upstream ones, and
    those the config's other values make unused (``StepConfig.unused_fields``)."""
    unused = config.unused_fields()
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if role_of(f) == RESULT and f.name not in unused
    }


def built(
    cls: type, config: Any, *, prefix: str = "", names: dict[str, str] | None = None, **given
):
    """The library dataclass ``cls`` made from ``config``'s fields, with no field copied by hand:
    its field ``x`` is the config's ``prefix + x`` (or ``names[x]``), or ``given[x]``; a field
    the config does not have keeps the library's default (``tests/test_config.py`` lists those,
    so a new one is a decision, not an accident)."""
    own = {item.name for item in dataclasses.fields(config)}
    values = {}
    for item in dataclasses.fields(cls):
        name = (names or {}).get(item.name, prefix + item.name)
        if item.name in given:
            values[item.name] = given[item.name]
        elif name in own:
            values[item.name] = getattr(config, name)
    return cls(**values)
