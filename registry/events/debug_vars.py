"""``/debug/vars`` on the debug server, as Go's expvar that distribution serves there: a JSON document with
``cmdline`` and ``memstats`` (Python's figures: resident memory, CPU time, the garbage collector's counts) and
``registry`` (the version, the uptime, the workers asked for and each process's resident memory: the serving process
and, with several workers, its children). Monitoring scripts poll it; it is small and cheap to make.

Resident memory is read from ``/proc`` (None elsewhere); ``maxrss`` is the serving process's peak.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from registry import __version__

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
PROC = Path("/proc")


def variables(started: float, workers: int) -> dict[str, Any]:
    """``started``: when serving began (``time.monotonic()``); ``workers``: how many were asked for."""
    return {
        "cmdline": list(sys.argv),
        "memstats": memstats(),
        "registry": {
            "version": __version__,
            "uptime": round(time.monotonic() - started, 3),
            "workers": workers,
            "processes": [{"pid": pid, "rss": resident(pid)} for pid in (os.getpid(), *children())],
        },
    }


def memstats() -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    generations = gc.get_stats()
    return {
        "rss": resident(os.getpid()),
        "maxrss": usage.ru_maxrss * 1024,  # Linux gives KiB
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "threads": threading.active_count(),
        "gc": {
            "counts": list(gc.get_count()),  # allocations since each generation's last collection
            "collections": [generation["collections"] for generation in generations],
            "collected": [generation["collected"] for generation in generations],
            "uncollectable": [generation["uncollectable"] for generation in generations],
        },
    }


def resident(pid: int) -> int | None:
    """A process's resident memory in bytes, from ``/proc/<pid>/statm``; None when it cannot be read."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * PAGE_SIZE
    return None


def children() -> list[int]:
    """This process's children (the workers, with several): the processes whose parent it is, from ``/proc``."""
    me, found = os.getpid(), []
    with contextlib.suppress(OSError):
        for entry in PROC.iterdir():
            if entry.name.isdigit() and _parent(entry) == me:
                found.append(int(entry.name))
    return sorted(found)


def _parent(entry: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((entry / "stat").read_text().rpartition(")")[2].split()[1])  # after the name: state, ppid
    return None
