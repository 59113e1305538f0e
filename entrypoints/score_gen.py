"""``score_gen``: FID, IS, KID, FD_cls, FD_radiomic, diversity, memorisation of synthetic images."""

import sys

from entrypoints._runner import run_entrypoint
from glioma.config import ScoreGenConfig


def main(argv=None) -> int:
    return run_entrypoint(ScoreGenConfig, "glioma.pipeline.entries:run_score_gen", argv)


if __name__ == "__main__":
    sys.exit(main())
