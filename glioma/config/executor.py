"""How a graph of steps runs (``main``'s and ``tune``'s): here, one step at a time, or on Ray."""

from __future__ import annotations

from dataclasses import dataclass

from glioma.config.fields import VOLATILE, check, param

EXECUTORS = ("serial", "ray")


@dataclass(frozen=True, kw_only=True)
class ExecutorConfig:
    """How a graph of steps runs: one at a time here, or as Ray tasks on a cluster."""

    executor: str = param(
        "serial",
        "serial (one process), or ray (independent steps at once)",
        choices=EXECUTORS,
        role=VOLATILE,
    )
    ray_address: str = param(
        "", "'': start a local Ray here; auto or ray://host:10001: join a cluster", role=VOLATILE
    )
    cpus_per_task: int = param(1, "CPU threads each Ray task declares and uses", role=VOLATILE)
    gpus_per_task: float = param(
        1.0, "GPUs a torch step declares on a cluster with GPUs (0.25: four share one)",
        role=VOLATILE,
    )  # fmt: skip

    def check_executor(self) -> None:
        check(
            1 <= self.cpus_per_task <= 256,
            f"cpus_per_task: must be 1..256, got {self.cpus_per_task}",
        )
        check(
            0.0 < self.gpus_per_task <= 8.0,
            f"gpus_per_task: must be in (0, 8], got {self.gpus_per_task}",
        )
