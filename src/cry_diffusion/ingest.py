"""Ingest: one manifest row for every file under a dataset's root, with its status and reason.

Nothing is silently lost: a file that can't be decoded, is empty, silent, too
short, full of NaNs, clipped or a byte-for-byte duplicate is listed as
`rejected` with the reason; a file that isn't audio by its extension is
`skipped`; everything else is `ok`.

    from cry_diffusion.ingest import IngestParams, build_manifest
    manifest = build_manifest("corpus/", IngestParams(), category_from="folder")
    manifest.to_csv("manifest.csv", index=False)
"""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import SAMPLE_RATE, audio

AUDIO_EXTENSIONS = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".mp4",
    ".3gp", ".3gpp", ".amr", ".caf", ".webm", ".aif", ".aiff", ".aifc", ".wma",
}  # fmt: skip

COLUMNS = [
    "path", "relpath", "sha256", "status", "reason", "category", "backend", "container", "codec",
    "sample_rate", "channels", "frames", "duration_s", "peak_dbfs", "band_limited",
]  # fmt: skip


@dataclass
class IngestParams:
    min_seconds: float = 0.25  # shorter files can't give even a padded segment worth learning from
    silence_dbfs: float = -60.0  # a peak below this is a silent (or dead-microphone) file
    max_clipped_fraction: float = 0.01  # more samples than this at full scale: a distorted recording
    exclude_band_limited: bool = False  # reject sources recorded below 16 kHz instead of flagging them


def list_files(root: str | Path) -> list[Path]:
    """Every regular file under `root`, sorted; directory symlinks aren't followed, so loops can't trap us."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {str(root)!r} is not a folder")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        found.extend(Path(folder) / name for name in files)
    return sorted(found)


def category_of(path: Path, root: Path, category_from: str, pattern: str | None) -> str:
    """The label a file carries: its folder's name, a named group of its file name, or none ('')."""
    if category_from == "folder":
        parent = path.parent.relative_to(root)
        return parent.parts[0] if parent.parts else ""
    if category_from == "filename":
        match = re.search(pattern, path.name)
        return match.group("category") if match else ""
    return ""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inspect(path: Path, params: IngestParams) -> dict:
    """Decode `path` once, streaming, and judge it. Never raises for bad audio: the verdict says why."""
    row: dict = {"sha256": sha256(path), "status": "rejected", "band_limited": False}
    if row["sha256"] == hashlib.sha256(b"").hexdigest():
        return row | {"reason": "empty: zero-byte file", "frames": 0, "duration_s": 0.0}
    try:
        info = audio.probe(path)
        row |= {k: getattr(info, k) for k in ("backend", "container", "codec", "sample_rate", "channels")}
        frames, peak, nonfinite, clipped = 0, 0.0, 0, 0
        for block in audio.blocks(path, info):
            frames += len(block)
            finite = np.isfinite(block)
            nonfinite += int(block.size - finite.sum())
            magnitude = np.abs(np.where(finite, block, 0.0))
            if magnitude.size:
                peak = max(peak, float(magnitude.max()))
            clipped += int((magnitude >= 0.999).sum())
    except audio.DecodeError as exc:
        return row | {"reason": f"unreadable: {exc}"}
    row |= {"frames": frames, "duration_s": frames / info.sample_rate}
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
    else:
        return row | {"status": "ok", "reason": "band-limited source, kept" if row["band_limited"] else ""}
    return row | {"reason": reason}


def _inspect_job(args):
    path, params = args
    return inspect(path, params)


def build_manifest(
    root: str | Path,
    params: IngestParams = IngestParams(),
    category_from: str = "folder",
    pattern: str | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """One row per file under `root` (see COLUMNS), in sorted path order."""
    root = Path(root)
    files = list_files(root)
    audio_files = [p for p in files if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")]
    jobs = [(p, params) for p in audio_files]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            verdicts = dict(zip(audio_files, pool.map(_inspect_job, jobs, chunksize=8)))
    else:
        verdicts = {p: inspect(p, params) for p in audio_files}

    rows, first_of_hash = [], {}
    for path in files:
        row = {"path": str(path), "relpath": str(path.relative_to(root))}
        if path not in verdicts:
            why = "hidden file" if path.name.startswith(".") else f"not an audio extension ({path.suffix or 'none'})"
            rows.append(row | {"status": "skipped", "reason": why})
            continue
        row |= verdicts[path]
        row["category"] = category_of(path, root, category_from, pattern)
        if row["status"] == "ok":
            twin = first_of_hash.setdefault(row["sha256"], row["relpath"])
            if twin != row["relpath"]:
                row |= {"status": "rejected", "reason": f"duplicate: same content as {twin}"}
        rows.append(row)
    manifest = pd.DataFrame(rows, columns=COLUMNS)
    manifest["band_limited"] = manifest["band_limited"].fillna(False).astype(bool)
    return manifest.astype({c: "Int64" for c in ("sample_rate", "channels", "frames")})


def params_from(config: dict) -> IngestParams:
    return IngestParams(**{k: config[k] for k in asdict(IngestParams()) if k in config})


def read_manifest(path: str | Path) -> pd.DataFrame:
    """A manifest back from CSV with its types: empty text stays '', missing numbers are NaN."""
    text = ["path", "relpath", "sha256", "status", "reason", "category", "backend", "container", "codec"]
    table = pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False, na_values={c: [""] for c in COLUMNS if c not in text})
    table["band_limited"] = table["band_limited"].astype(str).str.lower().eq("true")
    return table.astype({c: "Int64" for c in ("sample_rate", "channels", "frames")})
