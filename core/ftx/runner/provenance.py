"""Where a run's inputs and code came from: library versions, git revision, data hashes."""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

TRACKED_DISTRIBUTIONS = (
    "ftx-core",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "bitsandbytes",
)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a run's result depends on (missing ones left out)."""
    out = {}
    for dist in TRACKED_DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_revision() -> str | None:
    """``git rev-parse HEAD`` of the working directory, or ``None`` outside a repository."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() or None


def file_hash(path: str | Path) -> str:
    """sha256 of a file, or of a directory's files in sorted order (first 16 hex digits)."""
    digest = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]
