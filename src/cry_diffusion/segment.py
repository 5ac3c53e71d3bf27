"""Segment: every accepted file, mono at 16 kHz, cut into fixed-length segments packed in one array.

Training reads one `segments.npy` ([N, samples] float32, memory-mappable)
instead of thousands of small files; `segments.csv` says which source file and
offset each row came from, and which side of the train/held-out split it is on.

    from cry_diffusion.segment import SegmentParams, segment_manifest
    table, summary = segment_manifest(manifest, SegmentParams(seconds=1.0), "segments.npy")
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import SAMPLE_RATE, audio
from .atomic import atomic_path


@dataclass
class SegmentParams:
    seconds: float = 1.0  # 1 s for Chillanto-style clips, 5 s for deBarbaro-style
    remainder: str = "pad"  # what to do with a file's last partial segment: "pad" with zeros, or "drop"
    pad_min_fraction: float = 0.5  # pad only when at least this fraction of a segment is left
    heldout_fraction: float = 0.2  # share of source recordings kept out of training, for evaluation
    split_seed: int = 0  # changes which recordings are held out

    @property
    def samples(self) -> int:
        return int(round(self.seconds * SAMPLE_RATE))


def cut(signal: np.ndarray, params: SegmentParams) -> tuple[np.ndarray, int, int]:
    """Cut a mono 16 kHz signal into rows; returns (segments, padded samples, dropped samples)."""
    n = params.samples
    full, rest = divmod(len(signal), n)
    rows = [signal[: full * n].reshape(full, n)]
    padded = dropped = 0
    if rest and params.remainder == "pad" and rest >= params.pad_min_fraction * n:
        rows.append(np.pad(signal[full * n :], (0, n - rest))[None])
        padded = n - rest
    else:
        dropped = rest
    return np.concatenate(rows).astype(np.float32, copy=False), padded, dropped


def _segment_file(args) -> tuple[np.ndarray, int, int]:
    path, params = args
    return cut(audio.load(path), params)


def assign_split(groups: pd.Series, categories: pd.Series, params: SegmentParams) -> pd.Series:
    """'train' or 'heldout' per row, decided per group so a recording never sits on both sides.

    Groups are ordered by a seeded hash and the first share of each category's
    groups is held out: deterministic, balanced across categories, and stable
    when unrelated files are added.
    """
    split = pd.Series("train", index=groups.index)
    for _, idx in groups.groupby(categories.fillna("")).groups.items():
        keys = sorted(set(groups[idx]), key=lambda g: hashlib.sha256(f"{params.split_seed}:{g}".encode()).hexdigest())
        n_heldout = int(round(params.heldout_fraction * len(keys)))
        if params.heldout_fraction > 0 and len(keys) > 1:
            n_heldout = min(max(n_heldout, 1), len(keys) - 1)
        split[groups.isin(keys[:n_heldout]) & groups.index.isin(idx)] = "heldout"
    return split


def segment_manifest(manifest: pd.DataFrame, params: SegmentParams, out_npy: str | Path, workers: int = 1):
    """Write the packed segments to `out_npy`; return (segments table, accounting summary)."""
    accepted = manifest[manifest["status"] == "ok"].reset_index(drop=True)
    jobs = [(Path(p), params) for p in accepted["path"]]
    if workers > 1 and len(jobs) > 1:
        pool = ProcessPoolExecutor(workers)
        results = pool.map(_segment_file, jobs, chunksize=4)
    else:
        pool, results = None, map(_segment_file, jobs)

    rows, per_file, total = [], [], 0
    out_npy = Path(out_npy)
    raw = out_npy.with_name(f".{out_npy.name}.{os.getpid()}.raw")
    try:
        # Rows stream to a raw file as files finish, so memory holds one file's segments at a time.
        with open(raw, "wb") as sink:
            for (_, src), (segs, padded, dropped) in zip(accepted.iterrows(), results):
                segs.tofile(sink)
                for k in range(len(segs)):
                    last = k == len(segs) - 1
                    rows.append({
                        "index": total + k, "path": src["path"], "sha256": src["sha256"],
                        "category": src["category"], "start_s": k * params.seconds,
                        "padded_samples": padded if last else 0,
                        "band_limited": bool(src["band_limited"]),
                    })  # fmt: skip
                total += len(segs)
                per_file.append({"path": src["path"], "segments": len(segs), "padded_samples": padded, "dropped_samples": dropped})
        _raw_to_npy(raw, out_npy, (total, params.samples))
    finally:
        if pool:
            pool.shutdown()
        raw.unlink(missing_ok=True)

    table = pd.DataFrame(rows, columns=["index", "path", "sha256", "category", "start_s", "padded_samples", "band_limited"])
    # A content-duplicate shares its sha256, so grouping by hash keeps twins on one side too.
    table["split"] = assign_split(table["sha256"], table["category"], params) if len(table) else []
    files = pd.DataFrame(per_file, columns=["path", "segments", "padded_samples", "dropped_samples"])
    summary = accounting(manifest, files, params)
    return table, summary


def _raw_to_npy(raw: Path, out_npy: Path, shape: tuple[int, int]) -> None:
    with atomic_path(out_npy) as tmp, open(tmp, "wb") as f, open(raw, "rb") as src:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        while chunk := src.read(1 << 24):
            f.write(chunk)


def accounting(manifest: pd.DataFrame, files: pd.DataFrame, params: SegmentParams) -> dict:
    """Seconds in against seconds out: every second of accepted audio is in a segment or explained."""
    ok = manifest["status"] == "ok"
    seconds_in = float(manifest.loc[ok, "duration_s"].sum())
    in_segments = float((files["segments"] * params.samples - files["padded_samples"]).sum()) / SAMPLE_RATE
    dropped = float(files["dropped_samples"].sum()) / SAMPLE_RATE
    return {
        "params": asdict(params),
        "files_found": int(len(manifest)),
        "files_ok": int(ok.sum()),
        "files_rejected": int((manifest["status"] == "rejected").sum()),
        "files_skipped": int((manifest["status"] == "skipped").sum()),
        "seconds_in": seconds_in,
        "seconds_rejected": float(manifest.loc[manifest["status"] == "rejected", "duration_s"].fillna(0).sum()),
        "segments": int(files["segments"].sum()),
        "seconds_out": float(files["segments"].sum()) * params.seconds,
        "seconds_in_segments": in_segments,
        "seconds_padding": float(files["padded_samples"].sum()) / SAMPLE_RATE,
        "seconds_dropped_remainder": dropped,
        # Resampling may round a file's length by a sample or two; more than that is a real loss.
        "unexplained_seconds": seconds_in - in_segments - dropped,
    }


def read_table(path: str | Path) -> pd.DataFrame:
    """segments.csv back with its types (an empty category stays '')."""
    return pd.read_csv(path, dtype={"path": str, "sha256": str, "category": str, "split": str}, keep_default_na=False)
