"""``main``: the whole study, both sites, four setups, both directions, reusing finished steps."""

import sys

from glioma.cli import run_step


def main(argv=None) -> int:
    return run_step("main", argv)


if __name__ == "__main__":
    sys.exit(main())
