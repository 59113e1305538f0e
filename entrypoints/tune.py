"""``tune``: an Optuna study over the DDPM's mi_weight and lr; trials as nested MLflow runs."""

import sys

from entrypoints._runner import run_entrypoint
from glioma.config import TuneConfig


def main(argv=None) -> int:
    return run_entrypoint(TuneConfig, "glioma.pipeline.tune:run_tune", argv)


if __name__ == "__main__":
    sys.exit(main())
