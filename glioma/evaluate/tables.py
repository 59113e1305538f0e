"""The study's results as readable tables: per metric 'value [low, high]' one row per setup, the
mean ± SD over training seeds, and the paired differences to baseline."""

from __future__ import annotations

import pandas as pd

from glioma.evaluate.stats import METRICS


def scope_text(scopes: pd.Series) -> pd.Series:
    """The ``ddpm_scope`` column as text: '' for the real-only setups (NaN in a read-back CSV)."""
    return scopes.astype(object).fillna("").astype(str)


def results_table(results: pd.DataFrame) -> pd.DataFrame:
    """Direction, setup, each metric with its 95 % interval, and McNemar's p vs baseline."""
    table = results[["direction", "setup"]].copy()
    if "ddpm_scope" in results:  # which DDPMs the ddpm rows' images came from
        table["ddpm_scope"] = scope_text(results["ddpm_scope"])
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


def seed_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per direction and setup over training seeds: each metric's mean (``<metric>``) and SD
    (``<metric>_sd``, ddof 1), the seeds counted (``n_seeds``), in the order first seen."""
    keys = [k for k in ("direction", "setup", "ddpm_scope") if k in results]
    if "ddpm_scope" in results:  # NaN for the real-only setups: a group of its own
        results = results.assign(ddpm_scope=scope_text(results["ddpm_scope"]))
    grouped = results.groupby(keys, sort=False)
    summary = grouped[list(METRICS)].mean()
    summary = summary.join(grouped[list(METRICS)].std(ddof=1).add_suffix("_sd"))
    summary["n_seeds"] = grouped["seed"].nunique()
    if "n_subjects" in results:
        summary["n_subjects"] = grouped["n_subjects"].max()
    return summary.reset_index()


def seeds_table(summary: pd.DataFrame) -> pd.DataFrame:
    """``seed_summary`` as text: 'mean ± SD' per metric, one row per direction and setup."""
    table = summary[[k for k in ("direction", "setup", "ddpm_scope") if k in summary]].copy()
    for name in METRICS:
        table[name] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(summary[name], summary[f"{name}_sd"])]
    table["n_seeds"] = summary["n_seeds"]
    return table


def effects_table(effects: pd.DataFrame) -> pd.DataFrame:
    """The paired differences as text: per metric 'difference [low, high], p', one row per
    direction and setup (``glioma.evaluate.effects.study_effects``'s table)."""
    rows: dict[tuple[str, str], dict] = {}
    for row in effects.itertuples(index=False):
        cells = rows.setdefault((row.direction, row.setup), {"n_seeds": row.n_seeds})
        cells[row.metric] = (
            f"{row.difference:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}], p={row.p_value:.2g}"
        )
    metrics = list(dict.fromkeys(effects["metric"]))
    return pd.DataFrame(
        [
            {
                "direction": d,
                "setup": s,
                **{m: c.get(m, "") for m in metrics},
                "n_seeds": c["n_seeds"],
            }
            for (d, s), c in rows.items()
        ]
    )
