"""``cross_eval``: a source site's champion ensembles on every subject of a target site."""

import sys

from entrypoints._runner import run_entrypoint
from glioma.config import CrossEvalConfig


def main(argv=None) -> int:
    return run_entrypoint(CrossEvalConfig, "glioma.pipeline.entries:run_cross_eval", argv)


if __name__ == "__main__":
    sys.exit(main())
