"""Thin entry points: parse parameters, call the pipeline step, turn known errors into one line."""
