"""Subject-level splits: a stratified test set and 5 stratified folds over the rest, and the
rules that keep a subject out of a model evaluated on it (which subjects a fold, a DDPM, trains on).

The split is a function of the sorted subject ids, their grades and the seed only, so the same
seed always gives the same split, whatever order the subjects were found in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from glioma.errors import DataError
from glioma.fileio import write_json
from glioma.names import GRADES

SPLITS = "splits.json"


def subjects_needed(n_folds: int = 5, test_fraction: float = 0.2) -> int:
    """Subjects of each grade for a stratified test set and ``n_folds`` non-empty folds."""
    return n_folds + int(np.ceil(n_folds * test_fraction / (1 - test_fraction))) + 1


def count_grades(grades: list[str]) -> dict[str, int]:
    """Subjects per grade, HGG first (the order the console and splits.json show)."""
    return {g: int(sum(x == g for x in grades)) for g in reversed(GRADES)}


def trainable(grade_counts: dict[str, int], needed: int) -> bool:
    return min(grade_counts.values(), default=0) >= needed


def too_small(grades: list[str]) -> str:
    """Why a site with these grades cannot be trained on ('' when it can)."""
    counts, needed = count_grades(grades), subjects_needed()
    if trainable(counts, needed):
        return ""
    shown = ", ".join(f"{n} {g}" for g, n in counts.items())
    return f"{shown}: fewer than {needed} of each grade for a test set and 5 folds"


def site_splits(subject_ids: list[str], grades: list[str], *, seed: int) -> dict[str, Any]:
    """The site's splits, or, for a site too small to train on, an evaluation-only record.

    A small site is still a site to evaluate on (``cross_eval`` scores every subject of its
    target); it has no test set and no folds, and the steps that train refuse it.
    """
    reason = too_small(grades)
    if not reason:
        return make_splits(subject_ids, grades, seed=seed)
    return {
        "seed": seed,
        "evaluation_only": True,
        "reason": reason,
        "grade_counts": count_grades(grades),
        "test": [],
        "folds": [],
    }


def is_evaluation_only(splits: dict[str, Any]) -> bool:
    return bool(splits.get("evaluation_only", False))


def training_refused(site: str, reason: str, hint: str = "") -> DataError:
    """The one line that refuses to train on an evaluation-only site."""
    hint = hint or f"main: --directions with {site} as the target"
    return DataError(
        f"site {site} is evaluation-only ({reason}): use it as a cross_eval target ({hint})"
    )


def require_training(splits: dict[str, Any], site: str) -> None:
    """Refuse, in one line, to train on an evaluation-only site."""
    if is_evaluation_only(splits):
        raise training_refused(site, splits["reason"])


def make_splits(
    subject_ids: list[str],
    grades: list[str],
    *,
    seed: int,
    test_fraction: float = 0.2,
    n_folds: int = 5,
) -> dict[str, Any]:
    """``{"seed", "test": [...], "folds": [[validation ids of fold k], ...]}``."""
    order = np.argsort(subject_ids, kind="stable")
    ids = np.asarray(subject_ids)[order]
    labels = np.asarray(grades)[order]
    if len(set(ids)) != len(ids):
        raise DataError("splits: subject ids are not unique")
    grade_counts = count_grades(grades)
    needed = subjects_needed(n_folds, test_fraction)
    if not trainable(grade_counts, needed):
        raise DataError(
            f"splits: need at least {needed} subjects of each grade for a test set and "
            f"{n_folds} folds, have {grade_counts}"
        )
    rest, test = train_test_split(ids, test_size=test_fraction, stratify=labels, random_state=seed)
    rest = np.sort(rest)
    rest_labels = labels[np.searchsorted(ids, rest)]
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    validation = [sorted(rest[val].tolist()) for _, val in folds.split(rest, rest_labels)]
    return {"seed": seed, "test": sorted(test.tolist()), "folds": validation}


def training_subjects(splits: dict[str, Any], fold: int | None = None) -> list[str]:
    """Non-test subjects, less fold ``fold``'s validation subjects when a fold is given."""
    pool = sorted({s for fold_ids in splits["folds"] for s in fold_ids})
    held = set(splits["folds"][fold]) if fold is not None else set()
    return [s for s in pool if s not in held]


def ddpm_subjects(
    subject_ids: Sequence[str],
    grades: Sequence[str],
    splits: dict[str, Any],
    *,
    grade: str,
    val_fraction: float,
    seed: int,
    held_out: tuple[int, ...] = (),
) -> tuple[list[str], list[str]]:
    """A DDPM's (training ids, validation ids) of one grade: non-test subjects only, split by
    seed (the validation ids choose its checkpoint).

    The subjects of the classifier folds in ``held_out`` are left out too, so that those folds'
    classifiers can train on this DDPM's images and still be validated on unseen subjects.
    """
    excluded = set(splits["test"]).union(*(splits["folds"][k] for k in held_out))
    pool = sorted(s for s, g in zip(subject_ids, grades) if g == grade and s not in excluded)
    if len(pool) < 2:
        raise DataError(
            f"train_ddpm: only {len(pool)} non-test {grade} subject(s); need at least 2"
        )
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(val_fraction * len(pool))))
    val = sorted(rng.choice(pool, size=n_val, replace=False).tolist())
    train = [s for s in pool if s not in set(val)]
    refuse_test_subjects(train + val, splits)
    return train, val


def refuse_test_subjects(subject_ids: Sequence[str], splits: dict[str, Any]) -> None:
    """The science rule: no test subject ever reaches a model evaluated on it."""
    leaked = sorted(set(subject_ids) & set(splits["test"]))
    if leaked:
        raise DataError(f"train_ddpm: refusing to train on test subject(s) {', '.join(leaked)}")


def write_splits(folder: str | Path, splits: dict[str, Any]) -> Path:
    path = Path(folder) / SPLITS
    write_json(path, splits)
    return path


def read_splits(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / SPLITS
    if not path.is_file():
        raise DataError(f"{path}: missing; run prepare first")
    return json.loads(path.read_text())
