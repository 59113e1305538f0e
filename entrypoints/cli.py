"""``glioma <step> [--param value ...]``: the console script over the same entry points."""

from __future__ import annotations

import sys

from entrypoints import cross_eval as cross_eval_entry
from entrypoints import main as main_entry
from entrypoints import prepare as prepare_entry
from entrypoints import sample as sample_entry
from entrypoints import score_gen as score_gen_entry
from entrypoints import train_cls as train_cls_entry
from entrypoints import train_ddpm as train_ddpm_entry
from entrypoints import tune as tune_entry

STEPS = {
    "main": main_entry.main,
    "prepare": prepare_entry.main,
    "train_ddpm": train_ddpm_entry.main,
    "sample": sample_entry.main,
    "score_gen": score_gen_entry.main,
    "train_cls": train_cls_entry.main,
    "cross_eval": cross_eval_entry.main,
    "tune": tune_entry.main,
}


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
    return STEPS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
