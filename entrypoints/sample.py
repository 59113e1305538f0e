"""``sample``: a registered DDPM -> synthetic dataset files."""

import sys

from glioma.cli import run_step


def main(argv=None) -> int:
    return run_step("sample", argv)


if __name__ == "__main__":
    sys.exit(main())
