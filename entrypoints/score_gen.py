"""``score_gen``: FID, IS, KID, FD_cls, FD_radiomic, diversity, memorisation of synthetic images."""

import sys

from glioma.cli import run_step


def main(argv=None) -> int:
    return run_step("score_gen", argv)


if __name__ == "__main__":
    sys.exit(main())
