"""``prepare``: a BraTS root, a manifest CSV or the phantom -> dataset files + splits."""

import sys

from entrypoints._runner import run_entrypoint
from glioma.config import PrepareConfig


def main(argv=None) -> int:
    return run_entrypoint(PrepareConfig, "glioma.pipeline.entries:run_prepare", argv)


if __name__ == "__main__":
    sys.exit(main())
