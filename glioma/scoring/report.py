"""The std-vs-mi comparison table: one row per metric, one column per DDPM variant (over several
training seeds: each variant's mean and SD, and the paired mi - std difference)."""

from __future__ import annotations

import pandas as pd

from glioma.names import VARIANTS

# Metrics worth comparing across variants, with the direction that is better.
COMPARED = {
    "fid": "lower",
    "kid_mean": "lower",
    "is_mean": "higher",
    "fd_radiomic": "lower",
    "fd_cls": "lower",
    "radiomic_precision": "higher",
    "radiomic_recall": "higher",
    "radiomic_coverage": "higher",
    "c2st_auc": "lower (0.5: indistinguishable)",
    "msssim_synthetic_mean": "lower (more diverse)",
    "memorisation_mean": "lower (less copying)",
    "memorisation_fraction_above": "lower",
    "mi_nearest_mean": "lower",
    "copy_fraction": "lower (d1/d2 < 1/3)",
    "copy_ratio_mean": "higher",
    "tstr_balanced_accuracy": "higher",
    "n_synthetic": "",
    "n_real_train": "",
}


def comparison_table(metrics_by_variant: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Rows: metrics present in any variant; columns: the variants, then ``better``."""
    variants = sorted(metrics_by_variant, key=lambda v: (v != VARIANTS[0], v))  # std first
    rows = []
    for name, better in COMPARED.items():
        values = {v: metrics_by_variant[v].get(name) for v in variants}
        if any(value is not None for value in values.values()):
            rows.append({"metric": name, **values, "better": better})
    return pd.DataFrame(rows, columns=["metric", *variants, "better"])


def seed_comparison_table(metrics: dict[str, dict[int, dict[str, float]]]) -> pd.DataFrame:
    """Over training seeds (``metrics[variant][seed]``): per metric each variant's mean and SD,
    and the difference of the second variant from the first (mi - std) paired by seed, its mean
    and SD over the seeds both hold."""
    variants = sorted(metrics, key=lambda v: (v != VARIANTS[0], v))
    first, second = variants[0], variants[-1]
    paired = sorted(set(metrics[first]) & set(metrics[second]))
    rows = []
    for name, better in COMPARED.items():
        row: dict = {"metric": name}
        for variant in variants:
            values = pd.Series([m.get(name) for m in metrics[variant].values()], dtype=float)
            row |= {variant: values.mean(), f"{variant}_sd": values.std(ddof=1)}
        gaps = pd.Series(
            [metrics[second][s].get(name, float("nan")) - metrics[first][s].get(name, float("nan"))
             for s in paired], dtype=float,
        )  # fmt: skip
        row |= {f"{second}_minus_{first}": gaps.mean(), f"{second}_minus_{first}_sd": gaps.std()}
        if any(pd.notna(row[v]) for v in variants):
            rows.append(row | {"n_seeds": len(paired), "better": better})
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-style Markdown table (no extra dependency)."""

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else f"{value:.4g}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join(lines) + "\n"
