"""MLproject's command for every step: ``python -m entrypoints STEP [--param value ...]``, run
from the checkout (not installed); the same dispatch as the ``glioma`` console script."""
