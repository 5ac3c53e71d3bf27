"""A dataset's files: where they are (a config `datasets.NAME` entry), which are audio, and what each file is called.

A file's category comes from its top folder or a part of its name, and its recording (never split across
train/held-out) is the file itself, its folder, or a part of its name; cry_diffusion.ingest builds the
manifest from them:

    from cry_diffusion import ingest_source
    source = ingest_source.source_from({"root": "corpus/", "category": {"from": "folder"}})
    files = ingest_source.list_files(source.root)
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .annotations import TableFormat

AUDIO_EXTENSIONS = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".mp4",
    ".3gp", ".3gpp", ".amr", ".caf", ".webm", ".aif", ".aiff", ".aifc", ".wma",
}  # fmt: skip


@dataclass
class Source:
    """Where a dataset's files are and how to read them: a config `datasets.NAME` entry, less the segmenting keys."""

    root: str  # the corpus folder; every other path here is relative to it
    kind: str = "folder"  # "folder", "annotated" or "manifest" (see cry_diffusion.ingest)
    category_from: str = "folder"  # "folder" (top folder under root), "filename" (pattern), "label" (annotated), "none"
    category_pattern: str | None = None  # with "filename": a regex with a (?P<category>...) group, searched in the name
    unlabelled: str = "keep"  # a file whose category can't be read: "keep" it uncategorised, or "reject" it
    recording_from: str = "file"  # one source recording, never split across train/held-out: "file", "folder", "filename"
    recording_pattern: str | None = None  # with "filename": a regex with a (?P<recording>...) group (pre-cut clips)
    cry_labels: list | None = None  # labels to cut (annotated: the label column; others: the category); None: all
    annotations: str = "{dir}/{stem}.csv"  # annotated: each recording's table; {dir} its folder, {stem}, {name}
    manifest: str = "manifest.csv"  # manifest: the CSV listing the audio; its paths are relative to root too
    table: TableFormat = field(default_factory=TableFormat)  # columns, time unit and separator of those tables
    end_tolerance_s: float = 0.1  # a region may end this far past its recording (tools round): it is cut at the end


def source_from(entry: dict) -> Source:
    """A Source from a config `datasets.NAME` entry (keys as in the schema; absent ones take the defaults)."""
    category, recording = entry.get("category", {}), entry.get("recording", {})
    table = TableFormat(**{k: entry[k] for k in ("columns", "time_unit", "sep") if k in entry})
    plain = {k: entry[k] for k in ("kind", "cry_labels", "annotations", "manifest", "end_tolerance_s") if k in entry}
    return Source(
        root=entry["root"],
        category_from=category.get("from", "folder"),
        category_pattern=category.get("pattern"),
        unlabelled=category.get("unlabelled", "keep"),
        recording_from=recording.get("from", "file"),
        recording_pattern=recording.get("pattern"),
        table=table,
        **plain,
    )


def list_files(root: str | Path) -> list[Path]:
    """Every file under `root`, sorted, and links to folders (listed, not followed, so loops can't trap us)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {str(root)!r} is not a folder")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        found.extend(Path(folder) / name for name in files)
        found.extend(Path(folder) / name for name in dirs if os.path.islink(os.path.join(folder, name)))
    return sorted(found)


def relpath(path: Path, root: Path) -> str:
    """`path` relative to the root, or as given when a listing points outside it."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def category_of(path: Path, root: Path, category_from: str, pattern: str | None) -> str:
    """The label a file carries: its top folder's name, a named group of its file name, or none ('')."""
    if category_from == "folder":
        parent = Path(relpath(path, root)).parent
        return parent.parts[0] if parent.parts and not parent.is_absolute() else ""
    if category_from == "filename":
        match = re.search(pattern, path.name)
        return match.group("category") if match else ""
    return ""


def recording_of(path: Path, root: Path, source: Source) -> str:
    """The source recording a file belongs to; a file is its own unless the pattern or folder says otherwise."""
    if source.recording_from == "folder":
        return str(Path(relpath(path, root)).parent)
    if source.recording_from == "filename":
        match = re.search(source.recording_pattern, path.name)
        if match:
            return match.group("recording")
    return relpath(path, root)


def special_file(path: Path) -> str | None:
    """'FIFO', 'socket' or 'device' for what is neither a regular file nor a folder (links followed); else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # dangling or looping links: inspect says why
        return None
    for test, kind in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "device"), (stat.S_ISBLK, "device")):
        if test(mode):
            return kind
    return None


def is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")
