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

Finding and naming the files is cry_diffusion.ingest_source, judging one file
cry_diffusion.ingest_file, the tables and listings cry_diffusion.ingest_regions;
this module puts their rows together and settles duplicates. The pipeline's
`ingest` rule calls

    from cry_diffusion.ingest import IngestParams, Source, build_manifest
    manifest = build_manifest(Source("corpus/", category_from="folder"), IngestParams())
    manifest.to_csv("manifest.csv", index=False)
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from . import fingerprint
from .ingest_file import IngestParams, inspect
from .ingest_regions import annotated_rows, read_listing, region_rows, table_path
from .ingest_source import Source, category_of, is_audio, list_files, recording_of, relpath, special_file

COLUMNS = [
    "path", "relpath", "sha256", "status", "reason", "category", "backend", "container", "codec",
    "sample_rate", "channels", "frames", "duration_s", "peak_dbfs", "band_limited",
    "missing_s",  # seconds the header promised and the file lacks (truncated)
    # row: "file" (one per file found or listed), "table" (an annotation table or listing), "region" (one of its rows).
    # A region row's relpath is "table:line", its path and sha256 are its recording's, duration_s its own length.
    "row", "start_s", "end_s", "label", "recording",
]  # fmt: skip
TEXT_COLUMNS = ["path", "relpath", "sha256", "status", "reason", "category", "backend", "container", "codec", "row", "label", "recording"]


def build_manifest(source: Source | str | Path, params: IngestParams = IngestParams(), workers: int = 1) -> pd.DataFrame:
    """One row per file found (or listed), per table and per table row (see COLUMNS); files in sorted path order."""
    source = source if isinstance(source, Source) else Source(root=str(source))
    root = Path(source.root)
    if source.kind == "manifest":
        listing = read_listing(source)
        files = sorted({Path(r["path"]) for r in listing.regions if r["path"] and os.path.lexists(r["path"])})
    else:
        files = list_files(root)
    tables = {p: table_path(p, root, source) for p in files if is_audio(p)} if source.kind == "annotated" else {}
    table_of_audio = {t: p for p, t in tables.items()}

    labelled = {p: category_of(p, root, source.category_from, source.category_pattern) for p in files}
    not_cry = {p for p in files if source.kind == "folder" and source.cry_labels is not None and labelled[p] not in source.cry_labels}
    special = {p: kind for p in files if (kind := special_file(p))}
    verdicts = _inspect_all([p for p in files if is_audio(p) and not p.is_dir() and p not in not_cry and p not in special],
                            params, workers)  # fmt: skip

    rows, by_path = [], {}
    for path in files:
        if path in table_of_audio:
            continue  # an annotation table: its rows follow, with its recording's
        row = {"path": str(path), "relpath": relpath(path, root), "row": "file"}
        if path.is_symlink() and path.is_dir():
            rows.append(row | {"status": "skipped", "reason": "link to a folder: not followed (it could loop)"})
            continue
        row |= _file_verdict(path, root, source, labelled[path], special.get(path), verdicts.get(path), path in not_cry)
        rows.append(row)
        by_path[path] = row  # skipped ones too: a listing that names one says what it is, not that it is missing
    _reject_copies(by_path, params)

    if source.kind == "annotated":
        for path, table in tables.items():
            if path in by_path:  # not a link to a folder that happens to end in .wav
                rows.extend(annotated_rows(by_path[path], table, root, source))
    elif source.kind == "manifest":
        rows.append(listing.row)
        rows.extend(region_rows(listing.regions, by_path, source))
    manifest = pd.DataFrame(rows, columns=COLUMNS)
    # rows never judged (rejected before decoding) hold None: not band-limited
    manifest["band_limited"] = manifest["band_limited"].eq(True)
    return manifest.astype({c: "Int64" for c in ("sample_rate", "channels", "frames")})


def _file_verdict(path: Path, root: Path, source: Source, category: str, special: str | None, verdict: dict | None,
                  not_cry: bool) -> dict:  # fmt: skip
    """What a file's manifest row says of it: skipped (not a regular file, not audio, not a cry label), or its
    category, recording and inspect's verdict."""
    if special:  # opening a FIFO blocks until a writer comes; a device can be endless
        return {"status": "skipped", "reason": f"not a regular file: a {special}, not opened"}
    if not is_audio(path):
        return {"status": "skipped",
                "reason": "hidden file" if path.name.startswith(".") else f"not an audio extension ({path.suffix or 'none'})"}
    row = {"category": category, "recording": recording_of(path, root, source)}
    if not_cry:
        return row | {"status": "skipped", "reason": f"not a cry label: {category!r} is not in cry_labels"}
    row |= verdict or {"status": "rejected", "reason": "unreadable: a folder, not a file"}
    if row["status"] == "ok" and not row["category"] and source.category_from in ("folder", "filename"):
        why = ("its name does not match the category pattern" if source.category_from == "filename"
               else "it is not inside a category folder")  # fmt: skip
        if source.unlabelled == "reject":
            row |= {"status": "rejected", "reason": f"unlabelled: {why}"}
        else:
            row["reason"] = "; ".join(filter(None, [row["reason"], f"uncategorised: {why}"]))
    return row


def _reject_copies(by_path: dict[Path, dict], params: IngestParams) -> None:
    """Byte-for-byte copies rejected, then the same audio in another encoding (_same_audio).

    The first copy in path order is kept, a real file before a link to it.
    """
    keep_first = sorted(by_path, key=lambda p: (p.is_symlink(), p))
    prints = {path: by_path[path].pop("_fingerprint", None) for path in keep_first}
    first_of_hash = {}
    for path in keep_first:
        row = by_path[path]
        if row["status"] == "ok":
            twin = first_of_hash.setdefault(row["sha256"], row["relpath"])
            if twin != row["relpath"]:
                row |= {"status": "rejected", "reason": f"duplicate: same content as {twin}"}
    _same_audio(by_path, keep_first, prints, params)


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


def read_manifest(path: str | Path) -> pd.DataFrame:
    """A manifest back from CSV with its types: empty text stays '', missing numbers are NaN."""
    table = pd.read_csv(
        path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False, na_values={c: [""] for c in COLUMNS if c not in TEXT_COLUMNS}
    )
    table["band_limited"] = table["band_limited"].astype(str).str.lower().eq("true")
    return table.astype({c: "Int64" for c in ("sample_rate", "channels", "frames")})
