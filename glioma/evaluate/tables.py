"""The study's results as a readable table: 'value [low, high]' per metric, one row per setup."""

from __future__ import annotations

import pandas as pd

from glioma.evaluate.stats import METRICS


def results_table(results: pd.DataFrame) -> pd.DataFrame:
    """Direction, setup, each metric with its 95 % interval, and McNemar's p vs baseline."""
    table = results[["direction", "setup"]].copy()
    if "ddpm_scope" in results:  # which DDPMs the ddpm rows' images came from
        table["ddpm_scope"] = results["ddpm_scope"].fillna("").astype(str)
    for name in METRICS:
        table[name] = [
            f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
            for v, lo, hi in zip(
                results[name], results[f"{name}_ci_low"], results[f"{name}_ci_high"]
            )
        ]
    if "mcnemar_p_vs_baseline" in results:
        table["mcnemar_p_vs_baseline"] = [
            "" if pd.isna(p) else f"{p:.3g}" for p in results["mcnemar_p_vs_baseline"]
        ]
    return table
