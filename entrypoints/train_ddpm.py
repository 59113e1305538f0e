"""``train_ddpm``: a DDPM per grade of one site, registered as ``...-<variant>@best``."""

import sys

from entrypoints._runner import run_entrypoint
from glioma.config import TrainDDPMConfig


def main(argv=None) -> int:
    return run_entrypoint(TrainDDPMConfig, "glioma.pipeline.entries:run_train_ddpm", argv)


if __name__ == "__main__":
    sys.exit(main())
