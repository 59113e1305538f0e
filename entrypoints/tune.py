"""``tune``: an Optuna study over the DDPM's mi_weight and lr; trials as nested MLflow runs."""

import sys

from entrypoints._runner import run_entrypoint
from glioma.config import TuneConfig
from glioma.pipeline.tune import run_tune


def main(argv=None) -> int:
    return run_entrypoint(TuneConfig, run_tune, argv)


if __name__ == "__main__":
    sys.exit(main())
