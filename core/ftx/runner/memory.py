"""Resident-memory measurement for the run summary (Linux ``/proc``, else ``getrusage``)."""

from __future__ import annotations

import resource
import sys


def _proc_status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> int:
    """Start a fresh memory high-water mark and return the current resident memory (bytes).

    On Linux, writing 5 to ``/proc/self/clear_refs`` resets ``VmHWM``; unlike ``ru_maxrss`` it
    is neither inherited from the parent process nor inflated by earlier phases of the run
    (such as scoring the base model). Elsewhere the peak so far is the best available.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return peak_rss_bytes()
    return _proc_status_bytes("VmRSS") or peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Peak resident memory since the last :func:`reset_peak_rss` (``VmHWM``), or of the
    process's whole life where the kernel does not offer that (``ru_maxrss``)."""
    hwm = _proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024
