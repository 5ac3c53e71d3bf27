"""Segment: accepted audio, mono at 16 kHz, cut into fixed-length segments packed in one array.

Training reads one `segments.npy` ([N, samples] float32, memory-mappable)
instead of thousands of small files; `segments.csv` says which source file and
offset each row came from, and which side of the train/held-out split it is on.

What is cut: every accepted file whole (folder datasets), or only the accepted
regions of annotated recordings and listings. Files are decoded block by block
and segments go straight to disk, so a six-hour recording costs one block of
memory, not six hours of it.

    from cry_diffusion.segment import SegmentParams, segment_manifest
    table, summary = segment_manifest(manifest, SegmentParams(seconds=1.0), "segments.npy")
"""

from __future__ import annotations

import hashlib
import io
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np
import pandas as pd

from . import SAMPLE_RATE, audio
from .annotations import overlap_groups
from .atomic import atomic_path
from .params import Params

TABLE_COLUMNS = [
    "index", "path", "sha256", "category", "start_s", "padded_samples", "band_limited",
    "recording", "region_start_s", "region_end_s",
]  # fmt: skip


@dataclass
class SegmentParams(Params):
    seconds: float = 1.0  # 1 s for Chillanto-style clips, 5 s for deBarbaro-style
    remainder: str = "pad"  # what to do with a region's last partial segment: "pad" with zeros, or "drop"
    pad_min_fraction: float = 0.5  # pad only when at least this fraction of a segment is left
    heldout_fraction: float = 0.2  # share of source recordings kept out of training, for evaluation
    split_seed: int = 0  # changes which recordings are held out

    @property
    def samples(self) -> int:
        return int(round(self.seconds * SAMPLE_RATE))


@dataclass
class Span:
    """One stretch of a recording to cut: a whole file, or a union of overlapping annotated regions."""

    start: int  # first sample, at 16 kHz
    end: int | None  # one past the last sample; None: to the end of the recording
    category: str
    start_s: float  # as annotated (or 0 for a whole file)
    end_s: float  # as annotated (or the file's duration)


@dataclass
class Cut:
    """What cutting one recording's spans gave."""

    segments: list[tuple[int, int, int]]  # (span index, first sample, zero samples padded) per segment written
    dropped: list[int]  # per span: samples of a final partial segment too short to pad
    missing: list[int]  # per span: samples it asked for past the end of the decoded audio


def cut_stream(blocks: Iterable[np.ndarray], spans: list[Span], params: SegmentParams, sink: BinaryIO) -> Cut:
    """Cut sorted, disjoint `spans` of a stream of mono 16 kHz blocks into segments written to `sink` as float32.

    Blocks are read once, in order; only a partial segment is carried from one
    block to the next, so memory stays at one block whatever the recording's length.
    """
    n = params.samples
    buf = np.zeros(n, np.float32)
    fill, first = 0, 0  # samples in buf; stream position of its first sample
    result = Cut([], [0] * len(spans), [0] * len(spans))

    def feed(i: int, piece: np.ndarray, at: int) -> None:
        nonlocal fill, first
        while len(piece):
            if fill == 0:
                first = at
                whole = len(piece) // n * n
                if whole:  # whole segments straight from the block, no copy through buf
                    sink.write(np.ascontiguousarray(piece[:whole], dtype="<f4").data)
                    result.segments.extend((i, at + k, 0) for k in range(0, whole, n))
                    piece, at = piece[whole:], at + whole
                    continue
            take = min(n - fill, len(piece))
            buf[fill : fill + take] = piece[:take]
            fill, piece, at = fill + take, piece[take:], at + take
            if fill == n:
                sink.write(buf.data)
                result.segments.append((i, first, 0))
                fill = 0

    def finish(i: int, decoded_to: int) -> None:
        nonlocal fill
        span = spans[i]
        if span.end is not None and decoded_to < span.end:
            result.missing[i] = span.end - max(decoded_to, span.start)
        if fill and params.remainder == "pad" and fill >= params.pad_min_fraction * n:
            buf[fill:] = 0
            sink.write(buf.data)
            result.segments.append((i, first, n - fill))
        else:
            result.dropped[i] = fill
        fill = 0

    i, pos = 0, 0
    for block in blocks:
        b0, pos = pos, pos + len(block)
        while i < len(spans) and spans[i].start < pos:
            end = spans[i].end if spans[i].end is not None else pos + 1
            lo, hi = max(spans[i].start, b0), min(end, pos)
            if lo < hi:
                feed(i, block[lo - b0 : hi - b0], lo)
            if end > pos:
                break
            finish(i, end)
            i += 1
    for j in range(i, len(spans)):
        finish(j, pos)
    return result


def cut(signal: np.ndarray, params: SegmentParams) -> tuple[np.ndarray, int, int]:
    """Cut a whole mono 16 kHz signal into rows; returns (segments, padded samples, dropped samples)."""
    sink = io.BytesIO()
    done = cut_stream([signal], [Span(0, None, "", 0.0, len(signal) / SAMPLE_RATE)], params, sink)
    rows = np.frombuffer(sink.getvalue(), "<f4").reshape(-1, params.samples)
    return rows, sum(p for _, _, p in done.segments), done.dropped[0]


def plan(manifest: pd.DataFrame, regions: bool) -> list[tuple[pd.Series, list[Span]]]:
    """(source row, spans) per recording to decode, in path order.

    `regions`: cut the accepted region rows (annotated and manifest datasets),
    overlapping ones once as their union; otherwise every accepted file whole.
    """
    kind = manifest["row"] if "row" in manifest else pd.Series("file", index=manifest.index)
    ok = manifest[(manifest["status"] == "ok") & (kind == ("region" if regions else "file"))]
    if not regions:
        return [(src, [Span(0, None, src["category"], 0.0, src["duration_s"])]) for _, src in ok.iterrows()]
    jobs = []
    for _, rows in sorted(ok.groupby("path", sort=False), key=lambda item: item[0]):
        records = [{"start": r.start_s, "end": r.end_s, "category": r.category} for r in rows.itertuples()]
        spans = []
        for group in overlap_groups(records):
            start, end = records[group[0]]["start"], max(records[k]["end"] for k in group)
            spans.append(Span(round(start * SAMPLE_RATE), round(end * SAMPLE_RATE), records[group[0]]["category"], start, end))
        jobs.append((rows.iloc[0], spans))
    return jobs


def _segment_file(path: str, spans: list[Span], params: SegmentParams, sink: BinaryIO) -> Cut:
    return cut_stream(audio.mono_blocks(path), spans, params, sink)


def _segment_to_part(args) -> Cut:
    path, spans, params, part = args
    with open(part, "wb") as sink:
        return _segment_file(path, spans, params, sink)


def _cut_all(jobs, params: SegmentParams, sink: BinaryIO, scratch: Path, workers: int):
    """Cut results in job order, segments appended to `sink`.

    Workers write each file's segments to a part file of their own, which is
    appended and deleted as its turn comes: no file's segments travel through memory.
    """
    if workers <= 1 or len(jobs) <= 1:
        for src, spans in jobs:
            yield _segment_file(src["path"], spans, params, sink)
        return
    parts = [scratch.with_name(f"{scratch.name}.{k}.part") for k in range(len(jobs))]
    try:
        with ProcessPoolExecutor(workers) as pool:
            args = [(src["path"], spans, params, part) for (src, spans), part in zip(jobs, parts)]
            for part, done in zip(parts, pool.map(_segment_to_part, args)):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, sink, 1 << 24)
                part.unlink()
                yield done
    finally:
        for part in parts:
            part.unlink(missing_ok=True)


def _npy_header(shape: tuple[int, int]) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return header.getvalue()


def segment_manifest(manifest: pd.DataFrame, params: SegmentParams, out_npy: str | Path, workers: int = 1, regions: bool = False):
    """Write the packed segments to `out_npy`; return (segments table, accounting summary).

    `regions`: cut only accepted region rows (annotated and manifest datasets), not whole files.
    """
    jobs = plan(manifest, regions)
    rows, per_span = [], []
    with atomic_path(out_npy) as tmp, open(tmp, "wb") as sink:
        # numpy leaves room in the header for the row count to grow, so it is rewritten in place at the end.
        header = _npy_header((0, params.samples))
        sink.write(header)
        for (src, spans), done in zip(jobs, _cut_all(jobs, params, sink, tmp, workers)):
            # read from the manifest's row once per file, not per segment: a pandas lookup costs as much as a cut
            same = {"path": src["path"], "sha256": src["sha256"], "band_limited": bool(src["band_limited"]),
                    "recording": src.get("recording") or src["sha256"]}  # fmt: skip
            for i, first, padded in done.segments:
                span = spans[i]
                rows.append(same | {"index": len(rows), "category": span.category, "start_s": first / SAMPLE_RATE,
                                    "padded_samples": padded, "region_start_s": span.start_s, "region_end_s": span.end_s})
            for i, span in enumerate(spans):
                mine = [p for k, _, p in done.segments if k == i]
                per_span.append({
                    "path": src["path"], "seconds": span.end_s - span.start_s, "band_limited": bool(src["band_limited"]),
                    "segments": len(mine), "padded_samples": sum(mine), "dropped_samples": done.dropped[i],
                    "missing_samples": done.missing[i],
                })  # fmt: skip
        final = _npy_header((len(rows), params.samples))
        if len(final) != len(header):
            raise RuntimeError("npy header grew past its reserved room")  # numpy changed its format: fail, don't corrupt
        sink.seek(0)
        sink.write(final)

    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table["split"] = assign_split(table["recording"], table["category"], params) if len(table) else []
    columns = ["path", "seconds", "band_limited", "segments", "padded_samples", "dropped_samples", "missing_samples"]
    spans = pd.DataFrame(per_span, columns=columns)
    return table, accounting(manifest, spans, table, params, regions)


def assign_split(groups: pd.Series, categories: pd.Series, params: SegmentParams) -> pd.Series:
    """'train' or 'heldout' per row, decided per group (source recording) so a recording never sits on both sides.

    Each group counts for its most common category; within a category, groups
    are ordered by a seeded hash and the first share is held out: deterministic,
    balanced across categories, and stable when unrelated files are added.
    """
    categories = categories.fillna("")
    main = categories.groupby(groups).agg(lambda c: c.value_counts().sort_index().idxmax())
    held = set()
    for _, keys in main.groupby(main):
        keys = sorted(keys.index, key=lambda g: hashlib.sha256(f"{params.split_seed}:{g}".encode()).hexdigest())
        n_heldout = int(round(params.heldout_fraction * len(keys)))
        if params.heldout_fraction > 0 and len(keys) > 1:
            n_heldout = min(max(n_heldout, 1), len(keys) - 1)
        held.update(keys[:n_heldout])
    return pd.Series(np.where(groups.isin(held), "heldout", "train"), index=groups.index)


def accounting(manifest: pd.DataFrame, spans: pd.DataFrame, table: pd.DataFrame, params: SegmentParams, regions: bool) -> dict:
    """Seconds in against seconds out: every second of accepted audio (or annotated cry) is in a segment or explained.

    seconds_in = seconds_in_segments + seconds_dropped_remainder + seconds_overlap + seconds_past_end
    + unexplained_seconds, where unexplained is rounding to whole samples, at most
    reconcile_tolerance_seconds; more than that is a real loss.
    """
    kind = manifest["row"] if "row" in manifest else pd.Series("file", index=manifest.index)
    files, cut_rows = manifest[kind == "file"], manifest[kind == ("region" if regions else "file")]
    tables, region_rows = manifest[kind == "table"], manifest[kind == "region"]

    def seconds(status: str, band_limited: bool | None = None) -> float:
        rows = cut_rows[cut_rows["status"] == status]
        if band_limited is not None:
            rows = rows[rows["band_limited"] == band_limited]
        return float(rows["duration_s"].fillna(0).sum())

    def count(rows: pd.DataFrame, status: str) -> int:
        return int((rows["status"] == status).sum())

    seconds_in = seconds("ok")
    in_segments = float((spans["segments"] * params.samples - spans["padded_samples"]).sum()) / SAMPLE_RATE
    dropped = float(spans["dropped_samples"].sum()) / SAMPLE_RATE
    past_end = float(spans["missing_samples"].sum()) / SAMPLE_RATE
    overlap = seconds_in - float(spans["seconds"].sum()) if regions else 0.0
    split = table["split"] if "split" in table else pd.Series(dtype=str)
    return {
        "params": params.to_dict(),
        "cut_from": "regions" if regions else "files",  # what seconds_in counts: accepted region rows, or accepted files
        "files_found": int(len(files)),
        "files_ok": count(files, "ok"),
        "files_rejected": count(files, "rejected"),
        "files_skipped": count(files, "skipped"),
        "tables_found": int(len(tables)),
        "tables_rejected": count(tables, "rejected"),
        "regions_found": int(len(region_rows)),
        "regions_ok": count(region_rows, "ok"),
        "regions_rejected": count(region_rows, "rejected"),
        "regions_skipped": count(region_rows, "skipped"),
        "seconds_in": seconds_in,
        "seconds_in_band_limited": seconds("ok", band_limited=True),
        "seconds_rejected": seconds("rejected"),
        # promised by truncated files' headers and never there: not in seconds_in, and not lost by us
        "seconds_truncated": float(files["missing_s"].fillna(0).sum()) if "missing_s" in files else 0.0,
        "seconds_skipped": seconds("skipped"),
        "recordings": int(table["recording"].nunique()),
        "recordings_heldout": int(table.loc[split == "heldout", "recording"].nunique()),
        "segments": int(spans["segments"].sum()),
        "segments_heldout": int((split == "heldout").sum()),
        "seconds_out": float(spans["segments"].sum()) * params.seconds,
        "seconds_in_segments": in_segments,
        "seconds_padding": float(spans["padded_samples"].sum()) / SAMPLE_RATE,
        "seconds_dropped_remainder": dropped,
        "seconds_overlap": overlap,  # annotated twice by overlapping rows, cut once
        "seconds_past_end": past_end,  # annotated past the end of the recording (within end_tolerance_s)
        "unexplained_seconds": seconds_in - in_segments - dropped - overlap - past_end,
        # Resampling may round a file's length, and each region's edges, by a sample or two.
        "reconcile_tolerance_seconds": 2 * len(spans) / SAMPLE_RATE + 1e-6,
    }


class NothingToTrainOn(ValueError):
    """A dataset left no segments for training: said at the segment stage, before any later stage can trip on it."""


def require_training_segments(name: str, manifest: pd.DataFrame, table: pd.DataFrame) -> None:
    """Raise NothingToTrainOn, in one message naming the dataset, what was found and what to change."""
    if len(table) and (table["split"] == "train").any():
        return
    files = manifest[manifest["row"] == "file"]
    counts = []
    for status, group in files.groupby("status"):
        kinds = sorted({reason.split(":", 1)[0] for reason in group["reason"] if reason})
        counts.append(f"{len(group)} {status}" + (f" ({', '.join(kinds)})" if status != "ok" else ""))
    found = ", ".join(counts)
    if not len(files):
        why = "no files under its root"
    elif not len(table):
        why = f"no audio left to cut into segments: {len(files)} files: {found or 'none'}"
    else:
        why = f"all {len(table)} segments fell in the held-out split ({table['recording'].nunique()} recordings)"
    raise NothingToTrainOn(f"dataset {name}: nothing to train on: {why}. Each file's reason is in its manifest.csv; "
                           f"point datasets.{name}.root at the audio, relax the ingest limits, or lower heldout_fraction.")


def read_table(path: str | Path) -> pd.DataFrame:
    """segments.csv back with its types (an empty category stays '')."""
    return pd.read_csv(path, dtype={"path": str, "sha256": str, "category": str, "split": str, "recording": str}, keep_default_na=False)


SIDES = ("train", "heldout")


def side(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """One side of the train/held-out split: its rows of the segment table, in table order.

    Their `index` column points into segments.npy and mels.npy (`Rows(segments, rows["index"])`
    reads them); every stage selects a side here.
    """
    if name not in SIDES:
        raise ValueError(f"a side of the split is one of {SIDES}, not {name!r}")
    return table[table["split"] == name]


class Rows:
    """Some rows of a (memory-mapped) [N, ...] array, read only when indexed: a split of segments.npy without a copy.

    rows[i], rows[i:j], rows[index_array] and rows[i, columns] read those rows from the array
    underneath, so a stage can walk a corpus larger than memory a chunk at a time.
    """

    def __init__(self, array: np.ndarray, rows):
        self.array, self.rows = array, np.asarray(rows, dtype=np.int64)
        self.shape, self.ndim = (len(self.rows), *array.shape[1:]), array.ndim

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            row, rest = key[0], key[1:]
            return self.array[(self.rows[row], *rest)]
        return self.array[self.rows[key]]
