"""MLproject's commands, ``python -m entrypoints.<step>`` from the checkout (not installed):
each is ``glioma.cli.run_step`` of its step."""
