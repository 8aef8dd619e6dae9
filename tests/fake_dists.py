"""Build throwaway plugin distributions on disk (dist-info + module) for discovery tests."""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_dist(
    root: Path,
    dist: str,
    plugin: str,
    module: str,
    source: str,
    *,
    group: str = "ftx.plugins",
    attr: str | None = None,
) -> Path:
    """Write ``<module>.py`` and a ``<dist>-0.1.dist-info`` that registers it (or its ``attr``)
    as ``plugin`` in entry-point ``group`` (methods by default; ``"ftx.objectives"`` for an
    objective, ``"ftx.rewards"`` for a reward function)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    target = f"{module}:{attr}" if attr else module
    (info / "entry_points.txt").write_text(f"[{group}]\n{plugin} = {target}\n")
    return root
