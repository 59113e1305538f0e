"""``prepare``: a BraTS root, a manifest CSV or the phantom -> dataset files + splits."""

import sys

from glioma.cli import run_step


def main(argv=None) -> int:
    return run_step("prepare", argv)


if __name__ == "__main__":
    sys.exit(main())
