"""Tables of time regions: annotation tables beside long recordings, and listings a user writes.

Both are CSV (or TSV) rows that point into audio: an annotation row is
(start, end, label) of the recording it sits beside; a listing row is
(path, category, start, end). Every row gets a verdict of its own, so the
manifest can say what happened to each annotated second: cut, skipped as not
a cry, or rejected as reversed, negative, empty or outside the recording.
Overlapping rows are never clipped: rows of one category are cut once, as
their union, and the shared seconds are reported; rows of different categories
that overlap can't both be right, so the later one is rejected.

    from cry_diffusion.annotations import TableFormat, read_table
    rows = read_table("P01.csv", TableFormat(), required=["start", "end"], optional=["label"])
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_COLUMNS = {"path": "path", "category": "category", "start": "start", "end": "end", "label": "label"}


class TableError(Exception):
    """The table as a whole can't be used (unreadable, or a needed column is missing); the message says why."""


@dataclass
class TableFormat:
    # Which column holds each field: a header name, or a 0-based position when the table has no header row
    # (Audacity label tracks: {start: 0, end: 1, label: 2} with sep "\t").
    columns: dict = field(default_factory=lambda: dict(DEFAULT_COLUMNS))
    time_unit: str = "s"  # "s" or "ms": ELAN and many annotation tools export milliseconds
    sep: str = ","  # the field separator; "\t" for TSV and Audacity labels


def read_table(path: str | Path, fmt: TableFormat, required: list[str], optional: list[str] = ()) -> list[dict]:
    """Rows as {field: text, 'line': line number in the file}; fields in `optional` the table lacks are absent.

    Raises TableError when the file isn't text, isn't a table, or lacks a required column.
    """
    positional = all(isinstance(fmt.columns.get(f), int) for f in required)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=fmt.sep)
            lines = [(reader.line_num, [c.strip() for c in cells]) for cells in reader if any(c.strip() for c in cells)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TableError(f"unreadable table: {exc}") from None
    if positional:
        width = max((len(cells) for _, cells in lines), default=0)
        where = {f: fmt.columns[f] for f in (*required, *optional) if isinstance(fmt.columns.get(f), int)}
        body = lines
    else:
        if not lines:
            raise TableError("unreadable table: no header row")
        header = lines[0][1]
        where = {f: header.index(fmt.columns[f]) for f in (*required, *optional) if fmt.columns.get(f) in header}
        width, body = len(header), lines[1:]
    missing = [f for f in required if f not in where or where[f] >= width]
    if missing:
        has = f"has {width} columns" if positional else f"has: {', '.join(header)}"
        raise TableError(f"missing column(s) {', '.join(repr(fmt.columns.get(f)) for f in missing)} ({has})")
    return [
        {"line": line, **{f: cells[i] if i < len(cells) else "" for f, i in where.items() if i < width}}
        for line, cells in body
    ]


def seconds(text: str, unit: str) -> float | None:
    """A time cell in seconds; None when empty or not a finite number."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    return value / 1000 if unit == "ms" else value


def judge(regions: list[dict], duration: float, tolerance: float) -> list[tuple[str, str]]:
    """(status, reason) for each region {start, end, category, line, start_text, end_text}, in order.

    `start`/`end` are seconds or None (unparseable). A region may end up to
    `tolerance` seconds past the recording (annotation tools round); it is then
    cut at the end and the reason says so. Anything further out is rejected.
    """
    verdicts: list[tuple[str, str] | None] = [None] * len(regions)
    for i, r in enumerate(regions):
        start, end = r["start"], r["end"]
        if start is None or end is None:
            bad = "start" if start is None else "end"
            verdicts[i] = ("rejected", f"unparseable: {bad} {r[bad + '_text']!r} is not a time")
        elif start < 0:
            verdicts[i] = ("rejected", f"negative time: starts at {start:g} s")
        elif end < start:
            verdicts[i] = ("rejected", f"reversed: ends at {end:g} s, before its start at {start:g} s")
        elif end == start:
            verdicts[i] = ("rejected", f"empty: starts and ends at {start:g} s")
        elif start >= duration or end > duration + tolerance:
            verdicts[i] = ("rejected", f"outside the recording: {start:g}-{end:g} s, the recording is {duration:g} s")
        elif end > duration:
            verdicts[i] = ("ok", f"ends {end - duration:.3g} s past the recording's end: cut at the end")
        else:
            verdicts[i] = ("ok", "")
    ok = [i for i, v in enumerate(verdicts) if v[0] == "ok"]
    for group in overlap_groups([regions[i] for i in ok]):
        first = regions[ok[group[0]]]
        reach = first["end"]
        for i in (ok[k] for k in group[1:]):
            r = regions[i]
            shared = min(reach, r["end"]) - r["start"]
            if r["category"] != first["category"]:
                why = f"overlaps line {first['line']} (category {first['category']!r}) by {shared:g} s with another category"
                verdicts[i] = ("rejected", f"overlap: {why}")
                continue
            note = f"overlaps line {first['line']} by {shared:g} s: the shared seconds are cut once"
            verdicts[i] = ("ok", "; ".join(filter(None, [verdicts[i][1], note])))
            reach = max(reach, r["end"])
    return verdicts


def overlap_groups(regions: list[dict]) -> list[list[int]]:
    """Indices of regions {start, end, category} in chains of overlap, by start; touching regions stay apart.

    The first region of a group sets its category; a later one of another
    category is a conflict for `judge` and doesn't widen the group.
    """
    groups: list[list[int]] = []
    reach = -math.inf
    for i in sorted(range(len(regions)), key=lambda i: (regions[i]["start"], regions[i]["end"])):
        r = regions[i]
        if groups and r["start"] < reach:
            groups[-1].append(i)
            if r["category"] == regions[groups[-1][0]]["category"]:
                reach = max(reach, r["end"])
        else:
            groups.append([i])
            reach = r["end"]
    return groups
