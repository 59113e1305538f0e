"""Profiles: named sets of step defaults. ``quick`` fits a 2-core CPU; ``paper`` is the study's.

Each profile maps a step name to the field values it changes; everything else keeps the
dataclass default of that step's config (``glioma.config.steps``).
"""

from __future__ import annotations

from typing import Any

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        # 32x32 patches over 64 mm: 2 mm per pixel, the phantom's native resolution.
        "prepare": {"patch_size": 32, "fov_mm": 64.0, "phantom_scale": 0.25},
    },
    "paper": {
        # The study crops around the enhancing lesion and resizes to 96x96; at BraTS' 1 mm
        # spacing a 96 mm field keeps the tumour and its surroundings.
        "prepare": {"patch_size": 96, "fov_mm": 96.0, "phantom_scale": 1.0},
    },
}

DEFAULT_PROFILE = "quick"


def profile_defaults(profile: str, step: str) -> dict[str, Any]:
    """Field values that ``profile`` sets for ``step`` (empty if it sets none)."""
    from glioma.errors import ConfigError

    if profile not in PROFILES:
        raise ConfigError(f"profile: unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    return dict(PROFILES[profile].get(step, {}))
