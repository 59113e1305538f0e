"""The model card of a registered ensemble: what a reviewer reads on its version's page.

``train_cls`` writes it when it registers an ensemble (training site and subjects from the
data, setup, DDPM lineage, test figures, intended use, known limits); ``cross_eval`` adds each
other hospital's figures with their 95 % intervals as it evaluates the version. Both are the
version's markdown description and its tags, rebuilt from the tags each time, so the two
steps (and a rerun) never disagree. ``card_markdown`` is a pure function of the tags.
"""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient

INTENDED_USE = (
    "Research only: comparing training setups for telling low- from high-grade glioma on "
    "4-channel MRI patches. Not a medical device; not for diagnosis or any clinical decision."
)
KNOWN_LIMITS = (
    "Trained and tested on 2-D patches around the enhancing lesion, not whole volumes; one "
    "site's scanners, protocols and case mix; the test split is small, so read the intervals, "
    "not the point figures; a figure on the phantom cohort says nothing about patients; "
    "probabilities are not calibrated across sites."
)
CROSS_SITE = "cross_site_"  # tag prefix: one JSON tag per evaluated target site
SHOWN = ("balanced_accuracy", "macro_f1", "roc_auc", "accuracy")


def interval_text(figures: dict, metric: str) -> str:
    """``0.812 [0.701, 0.905]``, or the point alone, or ``n/a``."""
    value = figures.get(metric)
    if value is None:
        return "n/a"
    low, high = figures.get(f"{metric}_ci_low"), figures.get(f"{metric}_ci_high")
    if low is None or high is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def training_tags(
    *,
    site: str,
    setup: str,
    subjects: dict[str, int],
    excluded: int,
    ddpms: list[str],
    test: dict[str, float],
    n_test: int,
) -> dict[str, str]:
    """The tags ``train_cls`` gives a version: ``subjects`` per grade, ``ddpms`` the registered
    DDPMs behind a ddpm setup (model URIs), ``test`` the ensemble's test metrics."""
    counts = ", ".join(f"{n} {grade}" for grade, n in subjects.items())
    return {
        "training_site": site,
        "training_subjects": f"{sum(subjects.values())} ({counts}); {excluded} excluded",
        "setup": setup,
        "ddpm_lineage": ", ".join(ddpms) or "none (real images only)",
        "test_split": json.dumps({**test, "n_subjects": n_test}, sort_keys=True),
        "intended_use": INTENDED_USE,
        "known_limits": KNOWN_LIMITS,
    }


def cross_site_tag(target: str, row: dict[str, float], *, run_id: str) -> dict[str, str]:
    """The tag ``cross_eval`` gives a version it evaluated on every subject of ``target``."""
    kept = {k: float(v) for k, v in row.items() if k.split("_ci_")[0] in SHOWN}
    kept |= {"n_subjects": int(row.get("n_subjects", 0)), "cross_eval_run": run_id}
    if "majority_accuracy" in row:
        kept["majority_accuracy"] = float(row["majority_accuracy"])
    return {f"{CROSS_SITE}{target}": json.dumps(kept, sort_keys=True)}


def card_markdown(name: str, version: str, tags: dict[str, str]) -> str:
    """The version's description, from its tags."""
    test = json.loads(tags.get("test_split", "{}"))
    lines = [
        f"# {name} v{version}: LGG vs HGG ensemble",
        "",
        f"**Intended use.** {tags.get('intended_use', INTENDED_USE)}",
        "",
        "## Training",
        f"- site: {tags.get('training_site', '?')}",
        f"- subjects: {tags.get('training_subjects', '?')}",
        f"- setup: {tags.get('setup', '?')}",
        f"- synthetic images from: {tags.get('ddpm_lineage', '?')}",
        "",
        f"## Test split of the training site ({test.get('n_subjects', '?')} subjects)",
        "| metric | value |",
        "| --- | --- |",
        *(f"| {m} | {test[f'test_{m}']:.3f} |" for m in SHOWN if f"test_{m}" in test),
        "",
        "## Other hospitals (every subject; 95 % bootstrap intervals over subjects)",
    ]
    targets = sorted(k for k in tags if k.startswith(CROSS_SITE))
    if not targets:
        lines.append("Not evaluated yet: `cross_eval` adds each other site here.")
    else:
        lines += ["| site | n | " + " | ".join(SHOWN) + " | majority-class accuracy |"]
        lines += ["| --- " * (len(SHOWN) + 3) + "|"]
        for key in targets:
            figures = json.loads(tags[key])
            cells = [interval_text(figures, m) for m in SHOWN]
            majority = figures.get("majority_accuracy")
            shown = f"{majority:.3f}" if majority is not None else "n/a"
            site = key.removeprefix(CROSS_SITE)
            lines.append(
                f"| {site} | {figures.get('n_subjects')} | {' | '.join(cells)} | {shown} |"
            )
    lines += ["", f"**Known limits.** {tags.get('known_limits', KNOWN_LIMITS)}"]
    return "\n".join(lines) + "\n"


def write_card(name: str, version: str, tags: dict[str, str]) -> str:
    """Set ``tags`` on the version, then its description from all its tags; returns the text."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    held = client.get_model_version(name, version).tags
    text = card_markdown(name, version, held)
    client.update_model_version(name, version, description=text)
    return text
