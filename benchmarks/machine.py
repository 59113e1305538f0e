"""What the benchmark scripts share: the machine they ran on, and best-of wall-clock timing.

A figure means little without the machine behind it, and on a shared machine (a VM beside other
jobs) it means less: every script prints ``machine_line`` and ``versions_line`` first, and last
the ``Interference.report`` of how much CPU other processes and the hypervisor took meanwhile.

The scripts run as ``python benchmarks/bench_x.py``; Python puts the script's folder on
``sys.path`` whatever the working directory, so they import this module as ``machine``.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# Above this share of the cpus taken by other processes or stolen by the hypervisor, the
# timings are not trustworthy: the figures are pessimistic, the parallel ones most.
BUSY_SHARE = 0.05
WARNING = "WARNING: shared machine, figures are pessimistic"


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one (Linux), else platform's guess."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def usable_cpus() -> int:
    """The cpus this process may run on (its affinity), where the OS says; else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS or Windows
        return os.cpu_count() or 1


def machine_line() -> str:
    """The hardware the figures depend on, so that runs on different machines can be told apart."""
    return (
        f"machine: {platform.machine()}, cpu: {cpu_name()}, "
        f"os.cpu_count()={os.cpu_count()}, usable cpus={usable_cpus()}"
    )


def versions_line(*modules: ModuleType) -> str:
    """``python X.Y.Z, name version, ...`` for the libraries whose speed the figures measure."""
    return ", ".join(
        [f"python {platform.python_version()}"]
        + [f"{module.__name__} {module.__version__}" for module in modules]
    )


def machine_cpu_s() -> tuple[float, float]:
    """CPU seconds since boot that all processes were busy, and that the hypervisor stole
    (Linux's /proc/stat; nothing elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0, 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def own_busy_s() -> float:
    """CPU seconds of this process and of its finished children (pool workers, if any)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass(frozen=True)
class Interference:
    """CPU that other processes or the hypervisor took while timing: a busy core slows every
    figure, so a run on a shared machine must say so. Start it before the timing."""

    busy_start: float
    steal_start: float
    own_start: float
    wall_start: float

    @classmethod
    def start(cls) -> Interference:
        return cls(*machine_cpu_s(), own_busy_s(), time.perf_counter())

    def report(self) -> str:
        wall = time.perf_counter() - self.wall_start
        busy, steal = machine_cpu_s()
        others = (busy - self.busy_start) - (own_busy_s() - self.own_start)
        stolen = steal - self.steal_start
        share = (max(others, 0.0) + stolen) / (wall * (os.cpu_count() or 1))
        note = (
            f"in {wall:.1f} s of timing, other processes used {others:.1f} CPU s and the"
            f" hypervisor stole {stolen:.1f} s ({share:.0%} of the cpus)"
        )
        return f"{note}; {WARNING}" if share > BUSY_SHARE else note


def wall_s(action: Callable[[], object], sync: Callable[[], None] | None = None) -> float:
    """Wall seconds ``action`` takes; ``sync`` (waiting for a GPU, say) runs before and after."""
    if sync is not None:
        sync()
    start = time.perf_counter()
    action()
    if sync is not None:
        sync()
    return time.perf_counter() - start


def best_of(
    repeats: int, action: Callable[[], object], sync: Callable[[], None] | None = None
) -> float:
    """Fastest wall time of ``repeats`` runs: the least disturbed by other load."""
    return min(wall_s(action, sync) for _ in range(repeats))
