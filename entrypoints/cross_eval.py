"""``cross_eval``: a source site's champion ensembles on every subject of a target site."""

import sys

from glioma.cli import run_step


def main(argv=None) -> int:
    return run_step("cross_eval", argv)


if __name__ == "__main__":
    sys.exit(main())
