"""The run directory: one owner for its lifetime, and a replaced run that is never lost.

Ownership is an OS lock (``flock``) on ``PARENT/.NAME.lock``, a file beside the directory so
that moving the directory aside (``--overwrite``) does not move the lock. The kernel drops the
lock when its owner dies, however it dies, so a crashed run never blocks the next one. The
launching process holds it for a multi-process run; its ranks see ``FTX_RUN_LOCK`` and do not
try again.

``--overwrite`` keeps the earlier run whole until the new one finishes: it is moved to the
visible sibling ``NAME.previous-TIME`` (``replaced`` below). When the new run finishes, the
earlier one is deleted; when it fails or turns out to be bad input, the earlier one is put back
(a failed run is kept beside it as ``NAME.failed-TIME``); when it is interrupted, both stay, and
the resumed run deletes the earlier one once it finishes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ftx.errors import BadInput
from ftx.runner.checkpoints import remove_incomplete_checkpoints

LOCK_ENV = "FTX_RUN_LOCK"


def timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def default_output(plugin: str) -> Path:
    """``runs/<plugin>-YYYYmmdd-HHMMSS``; a name taken by a concurrent run gets a suffix at
    claim time (:meth:`RunDirectory.claim`), so two default names never collide."""
    return Path("runs") / f"{plugin}-{timestamp()}"


def check_output_path(output: str | Path, *, option: str = "--output") -> None:
    """Raise BadInput unless ``output`` is a directory or can be created as one, with its lock
    file beside it: the nearest existing ancestor of its parent must be a directory in which a
    directory can be made (tried, with a hidden probe removed at once: permission bits do not
    tell root or a read-only file system). Cheap; run before any data or model is read."""
    if not str(output).strip():
        raise BadInput(
            f"{option} is empty",
            hint=f"pass a directory path, or leave {option} out for the default name",
        )
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise BadInput(f"{option} {output} exists and is not a directory")
    ancestor = output.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise BadInput(
            f"cannot create {option} {output}: {ancestor} is a file, not a directory",
            hint=f"choose another {option}",
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ftx-probe-", dir=ancestor))
    except OSError as exc:
        raise BadInput(
            f"cannot create {option} {output}: no new directory can be made in {ancestor} "
            f"({exc.strerror})",
            hint=f"choose another {option}, in a directory you can write to",
        ) from None


def is_nonempty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def free_sibling(path: Path, label: str) -> Path:
    """``NAME.LABEL-TIME`` beside ``path`` that does not exist yet."""
    candidate = path.with_name(f"{path.name}.{label}-{timestamp()}")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{label}-{timestamp()}-{n}")
        n += 1
    return candidate


def lock_path_for(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def lock_owner(run_path: Path) -> int | None:
    """The pid of the live process holding ``run_path``'s lock, or None when the lock is free
    (no lock file, or its owner died: the kernel dropped the lock). Only looks: it never takes
    the lock, so a run starting at that moment is not disturbed. Reads ``/proc/locks`` where
    there is one; elsewhere the pid in the lock file is taken as the owner if it is alive."""
    lock = lock_path_for(run_path)
    try:
        text = lock.read_text(encoding="ascii").strip()
        st = os.stat(lock)
    except (OSError, ValueError):
        return None
    pid = int(text) if text.isdigit() else None
    try:
        table = Path("/proc/locks").read_text()
    except OSError:
        return pid if pid is not None and pid_alive(pid) else None
    # Lines read "1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF" ("->" marks a waiter). The
    # device is not compared: on overlay file systems it is not the one stat reports.
    for line in table.splitlines():
        fields = line.split()
        holder = "FLOCK" in fields and "->" not in fields and len(fields) > 5
        if holder and fields[5].rsplit(":", 1)[-1] == str(st.st_ino):
            return pid if pid is not None else int(fields[4])
    return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie not yet reaped counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """An exclusive ``flock`` on a lock file; the file holds the owner's pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self, *, what: Path) -> None:
        """Take the lock or raise :class:`BadInput` naming the owner's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fh = open(self.path, "a+", encoding="ascii")  # noqa: SIM115 - held for the run
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                owner = fh.read().strip() or "unknown"
                fh.close()
                raise BadInput(
                    f"run directory {what} is in use by another ftx run (pid {owner})",
                    hint="wait for it to finish, or choose another --output",
                ) from None
            # The previous owner may have unlinked the file between our open and our lock:
            # then we hold a lock on a file nobody else will ever open. Start again.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._fh.close()
        self._fh = None


class RunDirectory:
    """A run's directory and its claim. Only the main process calls these methods.

    ``output`` is the requested path; ``chosen_by_user`` is False for the default name (then a
    name in use gets a ``-2``, ``-3`` … suffix instead of an error).
    """

    def __init__(
        self,
        output: Path,
        *,
        replace: bool,
        resume: bool,
        chosen_by_user: bool,
        replaced: Path | None = None,
    ) -> None:
        self.path = output
        self.replace = replace
        self.resume = resume
        self.chosen_by_user = chosen_by_user
        self.replaced = replaced  # the earlier run set aside by --overwrite, if any
        self.created = False
        self.lock: RunLock | None = None

    # -- claiming -----------------------------------------------------------------------
    def hold_lock(self) -> None:
        """Own the directory (or its name) until :meth:`release`; see the module docstring."""
        held = os.environ.get(LOCK_ENV)
        if held and Path(held) == lock_path_for(self.path).absolute():
            return  # the launching process holds it for its ranks
        base, n = self.path, 2
        while True:
            lock = RunLock(lock_path_for(self.path))
            try:
                lock.acquire(what=self.path)
            except BadInput:
                if self.chosen_by_user:
                    raise
            else:
                if self.chosen_by_user or self.resume or not self.path.exists():
                    break
                lock.release()
            self.path = base.with_name(f"{base.name}-{n}")
            n += 1
        self.lock = lock
        os.environ[LOCK_ENV] = str(lock_path_for(self.path).absolute())

    @contextlib.contextmanager
    def held_for_ranks(self) -> Iterator[Path]:
        """Hold the lock while a launcher (torchrun) runs the ranks; yields the path to give
        them (a default name may have taken a suffix). Rank 0 claims without re-locking."""
        self.hold_lock()
        try:
            yield self.path
        finally:
            self.release()

    def claim(self) -> None:
        """Lock, re-check under the lock, set an earlier run aside (``--overwrite``), create."""
        if self.lock is None:
            self.hold_lock()
        if not self.resume and is_nonempty_dir(self.path):
            if not self.replace:
                self.release()
                raise BadInput(
                    f"output directory {self.path} already exists and is not empty",
                    hint="choose another --output, continue it with --resume, or pass --overwrite",
                )
            self.replaced = free_sibling(self.path, "previous")
            os.replace(self.path, self.replaced)
        self.created = not self.path.exists()
        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
        if self.resume:
            remove_temporaries(self.path)

    # -- endings --------------------------------------------------------------------------
    def finished(self) -> str | None:
        """The new run is complete: drop the run it replaced. Returns a line to print."""
        if self.replaced is None or not self.replaced.exists():
            return None
        shutil.rmtree(self.replaced, ignore_errors=True)
        gone, self.replaced = self.replaced, None
        return f"replaced the earlier run (removed {gone})"

    def bad_input(self) -> None:
        """Bad input found late: leave the disk as it was before the run started."""
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
        self._restore()

    def failed(self, *, label: str = "failed") -> str | None:
        """The new run failed (or stopped before it could resume): put a replaced run back,
        keep this one beside it as ``NAME.LABEL-TIME``."""
        if self.replaced is None:
            return None
        kept = free_sibling(self.path, label)
        os.replace(self.path, kept)
        self._restore()
        return f"the earlier run is back at {self.path}; this {label} run is kept at {kept}"

    def interrupted(self) -> str | None:
        """The new run stopped early and can resume: say where the replaced run waits."""
        if self.replaced is None:
            return None
        return (
            f"the earlier run it replaces is kept at {self.replaced} until this one finishes "
            "(--resume deletes it then)"
        )

    def _restore(self) -> None:
        if self.replaced is not None and self.replaced.exists():
            os.replace(self.replaced, self.path)
        self.replaced = None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None
            os.environ.pop(LOCK_ENV, None)


def remove_temporaries(run_dir: Path) -> None:
    """Delete what an interrupted run left half-written: the ``.tmp-*`` and ``.old-*`` siblings
    of artifacts (see :mod:`ftx.artifacts`) and the checkpoints cut short. None of them is ever
    the artifact or resumed from, and a resume writes them again."""
    for tmp in [*run_dir.glob(".tmp-*"), *run_dir.glob(".old-*")]:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    remove_incomplete_checkpoints(run_dir / "checkpoints")


def write_config(run_dir: Path, plugin: str, config: dict[str, Any]) -> None:
    import yaml

    from ftx.artifacts import write_text

    doc = {"plugin": plugin, **config}
    write_text(run_dir / "config.yaml", yaml.safe_dump(doc, sort_keys=False))


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    from ftx.artifacts import write_json

    write_json(run_dir / "summary.json", summary)
