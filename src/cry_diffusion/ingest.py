"""Ingest: one manifest row for every file of a dataset, and for every annotated region, with status and reason.

Nothing is silently lost: a file that can't be decoded, is empty, silent, too
short, full of NaNs, clipped or a byte-for-byte duplicate is listed as
`rejected` with the reason; a file that isn't audio by its extension is
`skipped`; everything else is `ok`. Three kinds of dataset (`Source.kind`):

- folder: every audio file under the root is one piece of training audio;
  its category is its top folder (Baby Chillanto) or a part of its file name
  (phone-app corpora: `...-m-04-hu.3gp`).
- annotated: long recordings, each with a table of (start, end, label) rows;
  only the regions with a cry label are cut later. Each table is a `table`
  row and each of its rows a `region` row of the manifest.
- manifest: a CSV the user wrote listing (path, category, start, end); each
  listed file is a `file` row and each line a `region` row.

    from cry_diffusion.ingest import IngestParams, Source, build_manifest
    manifest = build_manifest(Source("corpus/", category_from="folder"), IngestParams())
    manifest.to_csv("manifest.csv", index=False)
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import SAMPLE_RATE, audio, fingerprint
from .annotations import TableError, TableFormat, judge, read_table, seconds
from .params import Params

AUDIO_EXTENSIONS = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".mp4",
    ".3gp", ".3gpp", ".amr", ".caf", ".webm", ".aif", ".aiff", ".aifc", ".wma",
}  # fmt: skip

COLUMNS = [
    "path", "relpath", "sha256", "status", "reason", "category", "backend", "container", "codec",
    "sample_rate", "channels", "frames", "duration_s", "peak_dbfs", "band_limited",
    "missing_s",  # seconds the header promised and the file lacks (truncated)
    # row: "file" (one per file found or listed), "table" (an annotation table or listing), "region" (one of its rows).
    # A region row's relpath is "table:line", its path and sha256 are its recording's, duration_s its own length.
    "row", "start_s", "end_s", "label", "recording",
]  # fmt: skip
TEXT_COLUMNS = ["path", "relpath", "sha256", "status", "reason", "category", "backend", "container", "codec", "row", "label", "recording"]


@dataclass
class IngestParams(Params):
    min_seconds: float = 0.25  # shorter files can't give even a padded segment worth learning from
    silence_dbfs: float = -60.0  # a peak below this is a silent (or dead-microphone) file
    max_clipped_fraction: float = 0.01  # more samples than this at full scale: a distorted recording
    exclude_band_limited: bool = False  # reject sources recorded below 16 kHz instead of flagging them
    truncated: str = "keep"  # a file shorter than its header says: "keep" what is there (noted), or "reject" it
    duplicates: str = "reject"  # the same audio in another encoding (cry_diffusion.fingerprint): "reject" it, or
    # "same_side": keep it, on the same side of the train/held-out split as the first copy


@dataclass
class Source:
    """Where a dataset's files are and how to read them: a config `datasets.NAME` entry, less the segmenting keys."""

    root: str  # the corpus folder; every other path here is relative to it
    kind: str = "folder"  # "folder", "annotated" or "manifest" (see the module's doc)
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


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):  # Python 3.11 on: one reused buffer, no copy per chunk
            return hashlib.file_digest(f, "sha256").hexdigest()
        digest = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inspect(path: Path, params: IngestParams) -> dict:
    """Decode `path` once, streaming, and judge it. Never raises for bad audio: the verdict says why."""
    row: dict = {"status": "rejected", "band_limited": False}
    try:
        row["sha256"] = sha256(path)
    except OSError as exc:  # a dangling or looping link, a folder where a file was listed, no permission
        return row | {"reason": f"unreadable: {exc.strerror or exc}"}
    if row["sha256"] == hashlib.sha256(b"").hexdigest():
        return row | {"reason": "empty: zero-byte file", "frames": 0, "duration_s": 0.0}
    try:
        info = audio.probe(path)
        row |= {k: getattr(info, k) for k in ("backend", "container", "codec", "sample_rate", "channels")}
        frames, peak, nonfinite, clipped, head = 0, 0.0, 0, 0, []
        for block in audio.blocks(path, info):
            in_head = frames < fingerprint.SECONDS * info.sample_rate
            frames += len(block)
            if not block.size:
                continue
            lo, hi = float(block.min()), float(block.max())
            finite = np.isfinite(lo) and np.isfinite(hi)
            if in_head:
                head.append(audio.downmix(block) if finite else np.nan_to_num(audio.downmix(block)))
            if finite:  # the usual block: two passes instead of six
                peak = max(peak, -lo, hi)
                if max(-lo, hi) >= 0.999:  # only a block that reaches full scale can hold clipped samples
                    clipped += int((np.abs(block) >= 0.999).sum())
            else:  # NaN or Inf somewhere: count them, and judge the level on the finite samples
                finite = np.isfinite(block)
                nonfinite += int(block.size - finite.sum())
                magnitude = np.abs(np.where(finite, block, 0.0))
                peak = max(peak, float(magnitude.max()))
                clipped += int((magnitude >= 0.999).sum())
    except audio.DecodeError as exc:
        return row | {"reason": f"unreadable: {exc}"}
    row |= {"frames": frames, "duration_s": frames / info.sample_rate, "missing_s": info.missing_seconds}
    row["_fingerprint"] = fingerprint.fingerprint(np.concatenate(head) if head else np.zeros(0), info.sample_rate)
    truncated = (f"truncated: the header promises {row['duration_s'] + info.missing_seconds:.3f} s, "
                 f"{row['duration_s']:.3f} s are there") if info.missing_seconds else ""  # fmt: skip
    row["peak_dbfs"] = 20 * np.log10(peak) if peak > 0 else -np.inf
    row["band_limited"] = info.sample_rate < SAMPLE_RATE
    samples = max(frames * info.channels, 1)
    if frames == 0:
        reason = "empty: no audio frames"
    elif nonfinite:
        reason = f"non-finite samples: {nonfinite} NaN/Inf values"
    elif row["duration_s"] < params.min_seconds:
        reason = f"too short: {row['duration_s']:.3f} s < {params.min_seconds} s"
    elif row["peak_dbfs"] < params.silence_dbfs:
        reason = f"silent: peak {row['peak_dbfs']:.1f} dBFS < {params.silence_dbfs} dBFS"
    elif clipped / samples > params.max_clipped_fraction:
        reason = f"clipped: {100 * clipped / samples:.1f}% of samples at full scale > {100 * params.max_clipped_fraction:g}%"
    elif row["band_limited"] and params.exclude_band_limited:
        reason = f"band-limited: recorded at {info.sample_rate} Hz < {SAMPLE_RATE} Hz (exclude_band_limited is on)"
    elif truncated and params.truncated == "reject":
        reason = truncated
    else:
        notes = [truncated + " (kept)" if truncated else "",
                 "band-limited source, kept" if row["band_limited"] else "",
                 f"down-mixed from {info.channels} channels" if info.channels > 1 else ""]  # fmt: skip
        return row | {"status": "ok", "reason": "; ".join(filter(None, notes))}
    return row | {"reason": reason}


def _same_audio(by_path: dict, keep_first: list, prints: dict, params: IngestParams) -> None:
    """Re-encodes, resamples and container changes of one recording: rejected, or kept on the first copy's side."""
    ok = [p for p in keep_first if by_path[p]["status"] == "ok" and prints[p] is not None]
    by_name = {by_path[p]["relpath"]: by_path[p] for p in ok}
    found = fingerprint.duplicates([(by_path[p]["relpath"], by_path[p]["duration_s"], prints[p]) for p in ok])
    for name, first in found.items():
        row, original = by_name[name], by_name[first]
        if params.duplicates == "reject":
            row |= {"status": "rejected", "reason": f"duplicate: the same audio as {first}, in another encoding"}
        else:  # a recording never straddles the split, so this copy lands where the first one does
            row["recording"] = original["recording"]
            row["reason"] = "; ".join(filter(None, [row["reason"], f"the same audio as {first}: kept on its side"]))


def _inspect_job(args):
    path, params = args
    return inspect(path, params)


def _inspect_all(paths: list[Path], params: IngestParams, workers: int) -> dict[Path, dict]:
    jobs = [(p, params) for p in paths]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            return dict(zip(paths, pool.map(_inspect_job, jobs, chunksize=8)))
    return {p: inspect(p, params) for p in paths}


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


def build_manifest(source: Source | str | Path, params: IngestParams = IngestParams(), workers: int = 1) -> pd.DataFrame:
    """One row per file found (or listed), per table and per table row (see COLUMNS); files in sorted path order."""
    source = source if isinstance(source, Source) else Source(root=str(source))
    root = Path(source.root)
    if source.kind == "manifest":
        listing = _listing(source)
        files = sorted({Path(r["path"]) for r in listing.regions if r["path"] and os.path.lexists(r["path"])})
    else:
        files = list_files(root)
    tables = {p: _table_path(p, root, source) for p in files if is_audio(p)} if source.kind == "annotated" else {}
    table_of_audio = {t: p for p, t in tables.items()}

    labelled = {p: category_of(p, root, source.category_from, source.category_pattern) for p in files}
    not_cry = {p for p in files if source.kind == "folder" and source.cry_labels is not None and labelled[p] not in source.cry_labels}
    special = {p: kind for p in files if (kind := special_file(p))}
    verdicts = _inspect_all([p for p in files if is_audio(p) and not p.is_dir() and p not in not_cry and p not in special],
                            params, workers)  # fmt: skip

    rows, by_path, first_of_hash = [], {}, {}
    for path in files:
        row = {"path": str(path), "relpath": relpath(path, root), "row": "file"}
        if path in table_of_audio:
            continue  # an annotation table: its rows follow, with its recording's
        if path.is_symlink() and path.is_dir():
            rows.append(row | {"status": "skipped", "reason": "link to a folder: not followed (it could loop)"})
            continue
        if path in special:  # opening a FIFO blocks until a writer comes; a device can be endless
            row |= {"status": "skipped", "reason": f"not a regular file: a {special[path]}, not opened"}
            rows.append(row)
            by_path[path] = row
            continue
        if not is_audio(path):
            why = "hidden file" if path.name.startswith(".") else f"not an audio extension ({path.suffix or 'none'})"
            row |= {"status": "skipped", "reason": why}
            rows.append(row)
            by_path[path] = row  # a listing that names it says what it is, not that it is missing
            continue
        row |= {"category": labelled[path], "recording": recording_of(path, root, source)}
        if path in not_cry:
            row |= {"status": "skipped", "reason": f"not a cry label: {labelled[path]!r} is not in cry_labels"}
        else:
            row |= verdicts.get(path) or {"status": "rejected", "reason": "unreadable: a folder, not a file"}
            if row["status"] == "ok" and not row["category"] and source.category_from in ("folder", "filename"):
                why = ("its name does not match the category pattern" if source.category_from == "filename"
                       else "it is not inside a category folder")  # fmt: skip
                if source.unlabelled == "reject":
                    row |= {"status": "rejected", "reason": f"unlabelled: {why}"}
                else:
                    row["reason"] = "; ".join(filter(None, [row["reason"], f"uncategorised: {why}"]))
        rows.append(row)
        by_path[path] = row
    # The first copy in path order is kept, a real file before a link to it.
    keep_first = sorted(by_path, key=lambda p: (p.is_symlink(), p))
    prints = {path: by_path[path].pop("_fingerprint", None) for path in keep_first}
    for path in keep_first:
        row = by_path[path]
        if row["status"] == "ok":
            twin = first_of_hash.setdefault(row["sha256"], row["relpath"])
            if twin != row["relpath"]:
                row |= {"status": "rejected", "reason": f"duplicate: same content as {twin}"}
    _same_audio(by_path, keep_first, prints, params)

    if source.kind == "annotated":
        for path, table in tables.items():
            if path in by_path:  # not a link to a folder that happens to end in .wav
                rows.extend(_annotated_rows(by_path[path], table, root, source))
    elif source.kind == "manifest":
        rows.append(listing.row)
        rows.extend(_region_rows(listing.regions, by_path, source))
    manifest = pd.DataFrame(rows, columns=COLUMNS)
    # rows never judged (rejected before decoding) hold None: not band-limited
    manifest["band_limited"] = manifest["band_limited"].eq(True)
    return manifest.astype({c: "Int64" for c in ("sample_rate", "channels", "frames")})


def _table_path(audio_path: Path, root: Path, source: Source) -> Path:
    rel = Path(relpath(audio_path, root))
    return Path(os.path.normpath(root / source.annotations.format(dir=rel.parent, stem=rel.stem, name=rel.name)))


def _table_row(path: Path, root: Path, status: str, reason: str) -> dict:
    digest = sha256(path) if path.is_file() else ""
    return {"path": str(path), "relpath": relpath(path, root), "sha256": digest, "status": status, "reason": reason, "row": "table"}


def _annotated_rows(audio_row: dict, table: Path, root: Path, source: Source) -> list[dict]:
    """The table row and its region rows for one recording; updates the recording's row when it has none."""
    where = relpath(table, root)
    needs_label = source.cry_labels is not None or source.category_from == "label"
    try:
        if not table.is_file():
            raise FileNotFoundError
        entries = read_table(table, source.table, ["start", "end"] + (["label"] if needs_label else []), ["label"])
    except FileNotFoundError:
        if audio_row["status"] == "ok":
            audio_row |= {"status": "skipped", "reason": f"no annotation table: looked for {where}"}
        return []
    except TableError as exc:
        if audio_row["status"] == "ok":
            audio_row |= {"status": "skipped", "reason": f"annotation table {where} rejected: {exc}"}
        return [_table_row(table, root, "rejected", str(exc))]
    regions = [e | {"path": audio_row["path"], "where": f"{where}:{e['line']}"} for e in entries]
    head = _table_row(table, root, "ok", f"annotates {audio_row['relpath']}: {len(entries)} rows")
    return [head, *_region_rows(regions, {Path(audio_row["path"]): audio_row}, source)]


@dataclass
class _Listing:
    row: dict  # the listing's own manifest row
    regions: list[dict]  # its lines, with "path" resolved against the root


def _listing(source: Source) -> _Listing:
    """The user's listing CSV. A missing file or path column is a config error, raised (Snakemake checks first)."""
    root = Path(source.root)
    path = root / source.manifest
    entries = read_table(path, source.table, ["path"], ["category", "start", "end"])
    where = relpath(path, root)
    for e in entries:
        e |= {"path": os.path.normpath(root / e["path"]) if e["path"] else "", "where": f"{where}:{e['line']}"}
    return _Listing(_table_row(path, root, "ok", f"lists {len(entries)} regions"), entries)


def _region_rows(entries: list[dict], by_path: dict[Path, dict], source: Source) -> list[dict]:
    """A manifest row for every table line, judged against the recording it points into.

    Listing lines may leave start or end empty (the whole file, or to its end);
    annotation rows must give both.
    """
    open_ended = source.kind == "manifest"
    rows, to_judge = [], {}
    for e in entries:
        audio_row = by_path.get(Path(e["path"])) if e["path"] else None
        category = e.get("category") or (audio_row or {}).get("category", "")
        if source.category_from == "label":
            category = e.get("label", "")
        label = e.get("label", "") if source.kind == "annotated" else category
        start_text, end_text = e.get("start", ""), e.get("end", "")
        duration = (audio_row or {}).get("duration_s") or 0.0
        start = 0.0 if open_ended and not start_text else seconds(start_text, source.table.time_unit)
        end = duration if open_ended and not end_text else seconds(end_text, source.table.time_unit)
        row = {
            "path": e["path"], "relpath": e["where"], "category": category, "label": label, "row": "region",
            "start_s": start, "end_s": end, "duration_s": end - start if None not in (start, end) and end >= start else None,
        }  # fmt: skip
        if audio_row:
            row |= {k: audio_row.get(k) for k in ("sha256", "band_limited", "recording")}
        rows.append(row)
        if not e["path"]:
            row |= {"status": "rejected", "reason": "no path: the path cell is empty"}
        elif audio_row is None:
            row |= {"status": "rejected", "reason": f"missing: no file at {e['path']}"}
        elif audio_row["status"] != "ok":
            row |= {"status": "rejected", "reason": f"recording {audio_row['status']}: {audio_row['reason']}"}
        elif source.cry_labels is not None and label not in source.cry_labels:
            row |= {"status": "skipped", "reason": f"not a cry label: {label!r} is not in cry_labels"}
        else:
            to_judge.setdefault(e["path"], []).append((row, e))
    for path, group in to_judge.items():
        regions = [{"start": r["start_s"], "end": r["end_s"], "category": r["category"], "line": e["line"],
                    "start_text": e.get("start", ""), "end_text": e.get("end", "")} for r, e in group]  # fmt: skip
        duration = by_path[Path(path)]["duration_s"]
        for (row, _), (status, reason) in zip(group, judge(regions, duration, source.end_tolerance_s)):
            row |= {"status": status, "reason": reason}
    return rows


def read_manifest(path: str | Path) -> pd.DataFrame:
    """A manifest back from CSV with its types: empty text stays '', missing numbers are NaN."""
    table = pd.read_csv(
        path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False, na_values={c: [""] for c in COLUMNS if c not in TEXT_COLUMNS}
    )
    table["band_limited"] = table["band_limited"].astype(str).str.lower().eq("true")
    return table.astype({c: "Int64" for c in ("sample_rate", "channels", "frames")})
