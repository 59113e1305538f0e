"""The study as a graph of steps; each step is a function of its config that opens its run."""

from glioma.pipeline.main_step import run_main
from glioma.pipeline.prepare_step import PrepareOutput, run_prepare

__all__ = ["PrepareOutput", "run_main", "run_prepare"]
