"""Annotation tables and listings: a manifest row for each table, and one for each of its lines, judged against
the recording it points into.

An annotated dataset has a (start, end, label) table beside each long recording; a manifest dataset
has one CSV the user wrote, listing (path, category, start, end). cry_diffusion.ingest calls

    from cry_diffusion import ingest_regions
    listing = ingest_regions.read_listing(source)                  # a manifest dataset's CSV
    rows = ingest_regions.region_rows(listing.regions, by_path, source)
    rows = ingest_regions.annotated_rows(audio_row, ingest_regions.table_path(path, root, source), root, source)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .annotations import TableError, judge, read_table, seconds
from .ingest_file import sha256
from .ingest_source import Source, relpath


def table_path(audio_path: Path, root: Path, source: Source) -> Path:
    """Where a recording's annotation table is: Source.annotations filled in with its folder, stem and name."""
    rel = Path(relpath(audio_path, root))
    return Path(os.path.normpath(root / source.annotations.format(dir=rel.parent, stem=rel.stem, name=rel.name)))


def _table_row(path: Path, root: Path, status: str, reason: str) -> dict:
    digest = sha256(path) if path.is_file() else ""
    return {"path": str(path), "relpath": relpath(path, root), "sha256": digest, "status": status, "reason": reason, "row": "table"}


def annotated_rows(audio_row: dict, table: Path, root: Path, source: Source) -> list[dict]:
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
    return [head, *region_rows(regions, {Path(audio_row["path"]): audio_row}, source)]


@dataclass
class Listing:
    row: dict  # the listing's own manifest row
    regions: list[dict]  # its lines, with "path" resolved against the root


def read_listing(source: Source) -> Listing:
    """The user's listing CSV. A missing file or path column is a config error, raised (Snakemake checks first)."""
    root = Path(source.root)
    path = root / source.manifest
    entries = read_table(path, source.table, ["path"], ["category", "start", "end"])
    where = relpath(path, root)
    for e in entries:
        e |= {"path": os.path.normpath(root / e["path"]) if e["path"] else "", "where": f"{where}:{e['line']}"}
    return Listing(_table_row(path, root, "ok", f"lists {len(entries)} regions"), entries)


def region_rows(entries: list[dict], by_path: dict[Path, dict], source: Source) -> list[dict]:
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
