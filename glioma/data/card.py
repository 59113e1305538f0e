"""A data card per site: what was read, on which grids, what was left out, and how it looks.

One figure, so a user sees a site's make-up (and two sites' domain shift, side by side on the
study's run) before looking at accuracy: subjects per grade; voxel spacing, orientation, data
type and field strength as the headers give them; mask sources; resampled and converted
series; lesion area per grade; exclusions by reason; histograms of the patch intensities per
contrast and grade (brain pixels, after normalisation: what the models see).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from glioma.data.dataset import Dataset  # noqa: E402
from glioma.data.patches import BACKGROUND  # noqa: E402
from glioma.data.preview import CHANNEL_NAMES  # noqa: E402
from glioma.names import GRADES  # noqa: E402

COLOURS = {"HGG": "tab:red", "LGG": "tab:blue"}
BINS = np.linspace(-1, 1, 41)


def reason_kind(reason: str) -> str:
    """An exclusion reason without its paths and numbers, short enough for a bar label."""
    text = re.sub(r"\S*/\S*:?\s*", "", str(reason)).strip()
    text = re.split(r" \(|; |: ", text)[0]
    text = re.sub(r"\b\d+(\.\d+)?\b", "#", text)
    return (text[:44] + "...") if len(text) > 47 else text or "other"


def exclusions_frame(exclusions) -> pd.DataFrame:
    """``Exclusion`` records (or an exclusions.csv frame) as a frame."""
    if isinstance(exclusions, pd.DataFrame):
        return exclusions
    rows = [asdict(e) for e in exclusions]
    return pd.DataFrame(rows, columns=["subject_id", "grade", "path", "reason"])


def _counts(values: pd.Series, top: int = 3) -> str:
    counts = Counter(str(v) for v in values.astype(object).fillna("n/a") if str(v) != "")
    if not counts:
        return "n/a"
    shown = ", ".join(f"{k} ({n})" for k, n in counts.most_common(top))
    return shown + (f", +{len(counts) - top} more" if len(counts) > top else "")


def card_lines(dataset: Dataset) -> list[str]:
    subjects = dataset.subjects

    def column(name: str) -> pd.Series:  # provenance columns exist for prepared data only
        return subjects[name] if name in subjects else pd.Series(dtype=object)

    per_grade = subjects["grade"].value_counts()
    masks = ", ".join(
        f"{g}: {_counts(subjects.loc[subjects['grade'] == g, 'mask_source'])}" for g in GRADES
    )
    resampled, converted = (
        int(column(name).astype(object).fillna("").astype(str).str.len().gt(0).sum())
        for name in ("resampled", "converted")
    )
    return [
        "subjects: " + ", ".join(f"{g} {int(per_grade.get(g, 0))}" for g in GRADES),
        f"spacing (mm): {_counts(subjects['spacing_mm'])}",
        f"orientation: {_counts(column('orientation'))}",
        f"data type: {_counts(column('dtype'))}",
        f"field strength (T): {_counts(column('field_strength_t'))}",
        f"lesion mask: {masks}",
        f"brain: {_counts(column('brain_mask'))}",
        f"resampled onto the mask's grid: {resampled}; from DICOM: {converted}",
        "splits: evaluation only"
        if dataset.meta.get("evaluation_only")
        else "splits: test + 5 folds",
    ]


def _text(ax, dataset: Dataset) -> None:
    ax.set_axis_off()
    text = "\n".join(card_lines(dataset))
    ax.text(0, 1, text, va="top", ha="left", fontsize=7, family="monospace", transform=ax.transAxes)


def _exclusions(ax, exclusions: pd.DataFrame) -> None:
    kinds = Counter(reason_kind(r) for r in exclusions["reason"]).most_common(6)
    ax.set_title(f"exclusions ({len(exclusions)})", fontsize=8)
    if not kinds:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    labels, counts = zip(*kinds)
    ax.barh(range(len(kinds)), counts, color="0.5")
    ax.set_yticks(range(len(kinds)), labels, fontsize=6)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=6)


def _lesion_areas(ax, subjects: pd.DataFrame) -> None:
    values = [subjects.loc[subjects["grade"] == g, "lesion_area_mm2"].to_numpy() for g in GRADES]
    kept = [(g, v) for g, v in zip(GRADES, values) if len(v)]
    if kept:
        ax.boxplot([v for _, v in kept], tick_labels=[g for g, _ in kept], widths=0.5)
    ax.set_title("lesion area on the patch slice (mm²)", fontsize=8)
    ax.tick_params(labelsize=6)


def _histograms(axes, dataset: Dataset) -> None:
    grades = dataset.subjects["grade"].to_numpy()
    for channel, ax in enumerate(axes):
        for grade in GRADES:
            pixels = dataset.images[grades == grade, channel].ravel()
            pixels = pixels[pixels > BACKGROUND + 1e-6]
            if pixels.size:
                ax.hist(pixels, bins=BINS, density=True, histtype="step", color=COLOURS[grade],
                        label=grade)  # fmt: skip
        ax.set_title(CHANNEL_NAMES[channel], fontsize=8)
        ax.set_yticks([])
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6, frameon=False)


def draw_card(figure, dataset: Dataset, exclusions) -> None:
    """Draw one site's card into a Figure or SubFigure."""
    exclusions = exclusions_frame(exclusions)
    grid = figure.add_gridspec(3, 4, height_ratios=[1.3, 1.0, 0.9])
    _text(figure.add_subplot(grid[0, :2]), dataset)
    _exclusions(figure.add_subplot(grid[0, 2:]), exclusions)
    _lesion_areas(figure.add_subplot(grid[1, 1:3]), dataset.subjects)
    _histograms([figure.add_subplot(grid[2, c]) for c in range(4)], dataset)
    figure.suptitle(f"site {dataset.meta.get('site', '?')}: data card", fontsize=10)


def data_card_figure(dataset: Dataset, exclusions):
    figure = plt.figure(figsize=(8, 6.5), layout="constrained")
    draw_card(figure, dataset, exclusions)
    return figure


def data_cards_figure(cards: list[tuple[Dataset, pd.DataFrame]]):
    """Several sites' cards side by side (the study's run: the domain shift at a glance)."""
    figure = plt.figure(figsize=(8 * len(cards), 6.5), layout="constrained")
    panels = figure.subfigures(1, len(cards), squeeze=False)[0]
    for panel, (dataset, exclusions) in zip(panels, cards):
        draw_card(panel, dataset, exclusions)
    return figure
