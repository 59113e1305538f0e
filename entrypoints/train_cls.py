"""``train_cls``: five fold ResNets of one site and setup, the champion ensemble, test metrics."""

import sys

from entrypoints._runner import run_entrypoint
from glioma.config import TrainClsConfig


def main(argv=None) -> int:
    return run_entrypoint(TrainClsConfig, "glioma.pipeline.entries:run_train_cls", argv)


if __name__ == "__main__":
    sys.exit(main())
