"""Atomic output: write to a temporary file beside the target, then rename.

A reader (or a rerun after a crash) therefore sees either the old file or the
complete new one, never half of one. A writer killed with SIGKILL leaves its
temporary file behind (up to the size of the output: gigabytes for segments.npy);
the temporary name carries the writer's pid, so the next write of the same target
removes those whose writer is gone, and leaves a live writer's alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path in the target's folder; rename it onto `path` on success.

    `suffix` defaults to the target's own, so libraries that pick a format from
    the extension (soundfile, matplotlib, numpy) still do the right thing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.partial-{os.getpid()}-", suffix=suffix or path.suffix)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs should look like any other file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _remove_orphans(path: Path) -> None:
    """Delete temporaries of `path` left by writers that no longer run (killed before they could clean up)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.partial-(\d+)-")
    for entry in path.parent.glob(f".{_glob_escape(path.name)}.partial-*"):
        match = pattern.match(entry.name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
