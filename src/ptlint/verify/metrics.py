"""Measurements taken inside the worker process: host syncs, memory, time per step.

Only the worker imports this module; it imports torch.
"""

from __future__ import annotations

import resource
import warnings
from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode

# Tensor methods that materialize a value on the host: on CUDA each one waits for the device.
HOST_MATERIALIZATIONS = frozenset(
    {"item", "tolist", "__float__", "__int__", "__bool__", "__index__", "cpu", "numpy", "__format__"}
)
SYNC_WARNING = "synchroniz"


class SyncCounter(TorchFunctionMode):
    """Counts host materializations (`.item()`, `.tolist()`, `float()`, `.cpu()`, ...): the CPU sync proxy."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if getattr(func, "__name__", "") in HOST_MATERIALIZATIONS:
            self.count += 1
        return func(*args, **(kwargs or {}))


def rss_bytes() -> int:
    """The resident set size of this process now (Linux), or 0 where /proc is missing."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * resource.getpagesize()


def max_rss_bytes() -> int:
    """The peak resident set size of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cuda_syncs(call: Callable[[], Any]) -> int:
    """Runs `call` with CUDA sync debug mode on and counts the synchronizing operations it reports."""
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    return sum(1 for w in caught if SYNC_WARNING in str(w.message))


def cuda_peak(call: Callable[[], Any], device: str) -> int:
    """Peak `max_memory_allocated` during `call`, above what was allocated before it."""
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    call()
    torch.cuda.synchronize(device)
    return max(0, torch.cuda.max_memory_allocated(device) - base)


def time_per_call(call: Callable[[], Any], min_run_time: float) -> list[float]:
    """Seconds per call of each repeat (block) of torch.utils.benchmark's blocked_autorange."""
    import torch.utils.benchmark as benchmark

    timer = benchmark.Timer(stmt="call()", globals={"call": call}, num_threads=torch.get_num_threads())
    return [float(t) for t in timer.blocked_autorange(min_run_time=min_run_time).times]


def slope(values: list[float]) -> float:
    """Least-squares slope of `values` against their index (growth per step)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den
