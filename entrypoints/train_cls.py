"""``train_cls``: five fold ResNets of one site and setup, the champion ensemble, test metrics."""

import sys

from glioma.cli import run_step


def main(argv=None) -> int:
    return run_step("train_cls", argv)


if __name__ == "__main__":
    sys.exit(main())
