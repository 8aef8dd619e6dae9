"""Peak anonymous memory of a block of code, for memory tests and benchmarks.

RssAnon, not RSS: pages of memory-mapped files (safetensors weights read lazily) count in RSS
but are the page cache's, not the process's. Linux keeps no peak of RssAnon, so a thread samples
``/proc/self/status`` every half millisecond while the block runs.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType


def rss_anon() -> int:
    """This process's anonymous resident memory, in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakAnon:
    """``with PeakAnon() as peak: ...``; then ``peak.bytes``: the highest RssAnon seen inside
    the block above its value on entry."""

    def __init__(self, interval: float = 0.0005) -> None:
        self.interval = interval
        self.baseline = 0
        self.highest = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def bytes(self) -> int:
        return self.highest - self.baseline

    def _sample(self) -> None:
        while not self._done.is_set():
            self.highest = max(self.highest, rss_anon())
            time.sleep(self.interval)

    def __enter__(self) -> PeakAnon:
        self.baseline = self.highest = rss_anon()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()
        self.highest = max(self.highest, rss_anon())
