"""``tune``: an Optuna study over the DDPM's mi_weight and lr; trials as nested MLflow runs."""

import sys

from glioma.cli import run_step


def main(argv=None) -> int:
    return run_step("tune", argv)


if __name__ == "__main__":
    sys.exit(main())
