"""``train_ddpm``: a DDPM per grade of one site, registered as ``...-<variant>@best``."""

import sys

from entrypoints._runner import run_entrypoint
from glioma.config import TrainDDPMConfig
from glioma.pipeline.entries import run_train_ddpm


def main(argv=None) -> int:
    return run_entrypoint(TrainDDPMConfig, run_train_ddpm, argv)


if __name__ == "__main__":
    sys.exit(main())
