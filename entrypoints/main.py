"""``main``: the whole study, both sites, four setups, both directions, reusing finished steps."""

import sys

from entrypoints._runner import run_entrypoint
from glioma.config import MainConfig


def main(argv=None) -> int:
    return run_entrypoint(MainConfig, "glioma.pipeline.study:run_main", argv)


if __name__ == "__main__":
    sys.exit(main())
