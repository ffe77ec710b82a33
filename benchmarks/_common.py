"""Helpers shared by the benchmark scripts: timing, peak memory, versions, tables.

Nothing here imports the project, so any benchmark can use it.
"""
from __future__ import annotations

import ctypes
import gc
import importlib
import importlib.metadata
import os
import platform
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent

NOT_INSTALLED = "not installed (pip install 'assay[bench]')"


def add_repo_to_path() -> None:
    """Let ``python benchmarks/NAME.py`` import the project without installing it."""
    root = str(REPO_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)


# -- timing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    median: float
    runs: tuple[float, ...]
    result: object = None  # what the last call returned, so a slow call need not be repeated to see it


def median_time(fn: Callable[[], object], repeats: int = 5, budget_seconds: float = 30.0,
                warm_up: tuple[float, object] | None = None) -> Timing:
    """Median wall time of ``fn()`` over ``repeats`` calls after one untimed warm-up call.

    The warm-up pays one-off costs (imports, BLAS thread start, page faults on
    fresh buffers); pass ``warm_up=(seconds, result)`` when a call was already
    made. When one call is slow, fewer repeats are made so a row stays within
    ``budget_seconds``; the warm-up's time is used if it alone exceeds it.
    """
    if warm_up is None:
        start = time.perf_counter()
        result = fn()
        first = time.perf_counter() - start
    else:
        first, result = warm_up
    runs: list[float] = []
    if first > budget_seconds:
        return Timing(first, (first,), result)
    for _ in range(max(1, repeats)):
        if runs and sum(runs) + first > budget_seconds:
            break
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return Timing(statistics.median(runs), tuple(runs), result)


# -- memory ----------------------------------------------------------------------

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _libc_trim() -> None:
    # Hand freed heap pages back to the OS so the next RSS baseline is honest.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_rss_peak() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) to the current RSS; Linux only."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class MemoryPeak:
    """Extra memory at the peak of one call, in bytes (None where it could not be measured).

    ``traced``: tracemalloc's peak, which counts Python and numpy allocations
    (numpy reports its buffers to tracemalloc) but not BLAS or torch buffers.
    ``rss``: rise of the process's resident-set high-water mark over the
    resident size before the call; it sees every allocator but can read low
    when the call reuses pages the process already held.
    ``seconds`` and ``result`` are the call's, so it can serve as a warm-up.
    """

    traced: int | None
    rss: int | None
    seconds: float = 0.0
    result: object = field(default=None, repr=False, compare=False)

    @property
    def worst(self) -> int | None:
        values = [v for v in (self.traced, self.rss) if v is not None]
        return max(values) if values else None


def peak_memory(fn: Callable[[], object]) -> MemoryPeak:
    """Run ``fn()`` once and measure its peak extra memory both ways."""
    gc.collect()
    _libc_trim()
    can_reset = _reset_rss_peak()
    rss_before = _status_kib("VmRSS")
    tracemalloc.start()
    try:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    hwm = _status_kib("VmHWM")
    rss = None
    if can_reset and rss_before is not None and hwm is not None:
        rss = max(0, hwm - rss_before) * 1024
    return MemoryPeak(traced_peak, rss, seconds, result)


def nbytes(*arrays) -> int:
    """Total size of numpy arrays or torch tensors."""
    total = 0
    for a in arrays:
        if a is None:
            continue
        if hasattr(a, "nbytes"):
            total += int(a.nbytes)
        else:  # torch.Tensor
            total += int(a.element_size() * a.nelement())
    return total


# -- environment -----------------------------------------------------------------


def version_of(dist: str, module: str | None = None) -> str | None:
    """Installed version of a distribution, or None when its module cannot be imported."""
    try:
        importlib.import_module(module or dist.replace("-", "_"))
    except Exception:
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        mod = sys.modules.get(module or dist.replace("-", "_"))
        return str(getattr(mod, "__version__", "unknown"))


def machine_line() -> str:
    mem = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f"{pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    cpus = os.cpu_count()
    return f"{platform.machine()}, {cpus} cores, {mem or '? GiB'}, Python {platform.python_version()}"


def load_line() -> str:
    """The 1/5/15-minute load averages: on a shared machine, what else competed for the cores."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average: unknown"
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


# -- formatting ------------------------------------------------------------------


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_bytes(size: float | None) -> str:
    if size is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} B"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    if ratio >= 10:
        return f"{ratio:.1f}x"
    if ratio >= 0.1:
        return f"{ratio:.2f}x"
    # Small ratios read better as "this many times faster".
    return f"{ratio:.2g}x (1/{1 / ratio:,.0f})"


def verdict(value: float | None, limit: float | None) -> str:
    """PASS when ``value <= limit``, MISS when above; '-' when there is no aim or no value."""
    if value is None or limit is None:
        return "-"
    return "PASS" if value <= limit else "MISS"


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]],
                out=None) -> None:
    """A plain-text table whose columns are as wide as their widest cell."""
    out = out or sys.stdout
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        return "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()

    print(f"\n{title}", file=out)
    print(line(cells[0]), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells[1:]:
        print(line(row), file=out)
    out.flush()
