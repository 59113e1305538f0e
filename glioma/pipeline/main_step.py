"""``main``: the whole study as nested runs. For now: prepare both phantom sites."""

from __future__ import annotations

import mlflow

from glioma.config import MainConfig, PrepareConfig, as_params, build_config
from glioma.data.phantom import SITES
from glioma.pipeline.prepare_step import PrepareOutput, run_prepare
from glioma.tracking import step_run


def run_main(config: MainConfig) -> list[PrepareOutput]:
    overrides = {"profile": config.profile, "seed": config.seed, "workers": config.workers}
    if config.phantom_scale:
        overrides["phantom_scale"] = config.phantom_scale
    outputs = []
    with step_run("main", as_params(config), profile=config.profile):
        for site in SITES:
            prepare = build_config(PrepareConfig, {**overrides, "source": "phantom", "site": site})
            outputs.append(run_prepare(prepare))
        mlflow.log_metric("n_sites", len(outputs))
    for output in outputs:
        print(f"  {output.site}: {output.out_dir} (data_hash {output.data_hash})")
    return outputs
