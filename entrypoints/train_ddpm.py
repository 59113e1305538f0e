"""``train_ddpm``: a DDPM per grade of one site, registered as ``...-<variant>@best``."""

import sys

from glioma.cli import run_step


def main(argv=None) -> int:
    return run_step("train_ddpm", argv)


if __name__ == "__main__":
    sys.exit(main())
