"""``sample``: a registered DDPM -> synthetic dataset files."""

import sys

from entrypoints._runner import run_entrypoint
from glioma.config import SampleConfig


def main(argv=None) -> int:
    return run_entrypoint(SampleConfig, "glioma.pipeline.entries:run_sample", argv)


if __name__ == "__main__":
    sys.exit(main())
