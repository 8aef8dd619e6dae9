"""The numbers behind ``ftx compare``'s report: an interval for every score, and the pick that
says "within noise" when intervals overlap instead of naming a winner.

An :class:`Estimate` is a mean over a group's seeds with a 95 % interval:

* n ≥ 2 seeds: Student's t-interval, mean ± t(0.975, n-1)·s/√n (s the sample standard
  deviation over seeds): the spread the training seed causes; for a proportion of a known
  count it is widened, where narrower, to the Wilson interval below (seeds that agree on a
  score still share one finite held-out set);
* n = 1 and the score is a proportion of a known count (exact match over n held-out rows,
  retention over the questions the base model got right): the Wilson score interval of that
  count: the spread the finite held-out set causes;
* otherwise (one seed of a loss, of a drift): no interval.

Pure functions, no imports beyond the standard library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Z95 = 1.959964
T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
"""t(0.975, df) for df = 1 … 30; above 30 the normal quantile is used."""


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` seeds and its 95 % interval (``low``/``high`` None: no interval);
    ``kind``: ``"t"``, ``"wilson"``, ``"t+wilson"`` or ``""``; ``count``: the held-out count
    behind a Wilson interval."""

    mean: float
    n: int
    low: float | None = None
    high: float | None = None
    kind: str = ""
    count: int | None = None

    def overlaps(self, other: Estimate) -> bool:
        """Whether the two intervals share a point (False when either has none)."""
        if None in (self.low, self.high, other.low, other.high):
            return False
        return self.low <= other.high and other.low <= self.high  # type: ignore[operator]

    def scaled(self, factor: float) -> Estimate:
        """The same estimate times ``factor`` (> 0): a score per GB."""
        low = None if self.low is None else self.low * factor
        high = None if self.high is None else self.high * factor
        return Estimate(self.mean * factor, self.n, low, high, self.kind, self.count)

    def text(self, digits: int = 3) -> str:
        """``0.750 ± 0.040 (n=3 seeds, t)`` / ``0.750 [0.41, 0.93] (1 seed, Wilson n=8)`` /
        ``0.750 [0.41, 0.93] (n=3 seeds, t widened to Wilson n=8)`` / ``0.750``."""
        if self.low is None or self.high is None:
            return f"{self.mean:.{digits}f}" + (f" (n={self.n} seeds)" if self.n > 1 else "")
        if self.kind == "t":
            half = (self.high - self.low) / 2
            return f"{self.mean:.{digits}f} ± {half:.{digits}f} (n={self.n} seeds, t)"
        if self.kind == "t+wilson":
            return (
                f"{self.mean:.{digits}f} [{self.low:.{digits - 1}f}, {self.high:.{digits - 1}f}] "
                f"(n={self.n} seeds, t widened to Wilson n={self.count})"
            )
        return (
            f"{self.mean:.{digits}f} [{self.low:.{digits - 1}f}, {self.high:.{digits - 1}f}] "
            f"(1 seed, Wilson n={self.count})"
        )


def t_quantile(df: int) -> float:
    """t(0.975, df): the two-sided 95 % critical value of Student's t."""
    return T975[df - 1] if df <= len(T975) else Z95


def wilson(p: float, count: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion ``p`` observed over ``count`` trials."""
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * count)) / (1 + z2 / count)
    half = Z95 * math.sqrt(p * (1 - p) / count + z2 / (4 * count * count)) / (1 + z2 / count)
    return max(0.0, centre - half), min(1.0, centre + half)


def estimate(values: list[float], *, count: int | None = None) -> Estimate | None:
    """The :class:`Estimate` of one score over a group's seeds (``values``, one per seed);
    ``count``: the trials behind a proportion (held-out rows), used when there is one seed.
    None when there is no value."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    if n >= 2:
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = t_quantile(n - 1) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
        if count and 0.0 <= mean <= 1.0:
            w_low, w_high = wilson(mean, count)
            if w_low < low or w_high > high:
                return Estimate(mean, n, min(low, w_low), max(high, w_high), "t+wilson", count)
        return Estimate(mean, n, low, high, "t")
    if count and 0.0 <= mean <= 1.0:
        low, high = wilson(mean, count)
        return Estimate(mean, 1, low, high, "wilson", count)
    return Estimate(mean, 1)


def pick(
    candidates: dict[str, Estimate | None], *, higher: bool = True, what: str = "score"
) -> dict[str, Any]:
    """The best of ``candidates`` (``{label: estimate}``; None ones are left out):
    ``{"best": label or None, "tied": [labels within noise of it], "text": a sentence}``.

    The label with the best mean is named the winner only when its interval overlaps no other
    candidate's; otherwise the answer is "within noise" and lists every candidate whose
    interval overlaps the best's. Candidates without an interval can be named but never tie.
    """
    scored = {k: v for k, v in candidates.items() if v is not None}
    if not scored:
        return {"best": None, "tied": [], "text": f"no {what} measured"}
    sign = 1 if higher else -1
    best = max(scored, key=lambda k: sign * scored[k].mean)
    tied = [k for k, v in scored.items() if k != best and v.overlaps(scored[best])]
    if tied:
        names = ", ".join([best, *tied])
        return {
            "best": None,
            "tied": [best, *tied],
            "text": f"within noise: {names} (their 95% intervals overlap)",
        }
    shown = scored[best].text()
    alone = "" if len(scored) > 1 else " (the only one measured)"
    bare = scored[best].low is None and len(scored) > 1
    note = " (no interval: one seed of a score that is not a proportion)" if bare else ""
    return {"best": best, "tied": [], "text": f"{best}: {shown}{alone}{note}"}
