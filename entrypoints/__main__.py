"""``python -m entrypoints STEP ...``: ``glioma.cli.main``, so MLproject needs no file per step."""

import sys

from glioma.cli import main

if __name__ == "__main__":
    sys.exit(main())
