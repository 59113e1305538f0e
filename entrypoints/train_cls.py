"""``train_cls``: five fold ResNets of one site and setup, the champion ensemble, test metrics."""

import sys

from entrypoints._runner import run_entrypoint
from glioma.config import TrainClsConfig
from glioma.pipeline.entries import run_train_cls


def main(argv=None) -> int:
    return run_entrypoint(TrainClsConfig, run_train_cls, argv)


if __name__ == "__main__":
    sys.exit(main())
