"""``glioma <step> [--param value ...]``: the console script over the same entry points."""

from __future__ import annotations

import importlib
import sys

# Each step's module, imported only when its step is asked for: `glioma --help` imports none.
STEPS = {
    step: f"entrypoints.{step}"
    for step in (
        "main", "prepare", "train_ddpm", "sample", "score_gen", "train_cls", "cross_eval", "tune",
    )
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in STEPS:
        known = ", ".join(STEPS)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"glioma: error: unknown step {argv[0]!r}; steps: {known}", file=sys.stderr)
            return 2
        print(
            f"usage: glioma STEP [--param value ...]\nsteps: {known}\neach step: glioma STEP --help"
        )
        return 0
    return importlib.import_module(STEPS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
