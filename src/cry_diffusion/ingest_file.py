"""One audio file, decoded once (streaming) and judged: kept, or rejected with the reason, by the ingest settings.

    from cry_diffusion.ingest_file import IngestParams, inspect
    row = inspect(Path("corpus/pain/a.wav"), IngestParams())   # {"status": "ok", "reason": "", "sha256": ...}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import SAMPLE_RATE, audio, fingerprint
from .params import Params


@dataclass
class IngestParams(Params):
    min_seconds: float = 0.25  # shorter files can't give even a padded segment worth learning from
    silence_dbfs: float = -60.0  # a peak below this is a silent (or dead-microphone) file
    max_clipped_fraction: float = 0.01  # more samples than this at full scale: a distorted recording
    exclude_band_limited: bool = False  # reject sources recorded below 16 kHz instead of flagging them
    truncated: str = "keep"  # a file shorter than its header says: "keep" what is there (noted), or "reject" it
    duplicates: str = "reject"  # the same audio in another encoding (cry_diffusion.fingerprint): "reject" it, or
    # "same_side": keep it, on the same side of the train/held-out split as the first copy


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):  # Python 3.11 on: one reused buffer, no copy per chunk
            return hashlib.file_digest(f, "sha256").hexdigest()
        digest = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class _Scan:
    """What one streaming pass over a file's samples found."""

    frames: int = 0
    peak: float = 0.0
    nonfinite: int = 0  # NaN or Inf values
    clipped: int = 0  # samples at full scale
    head: list = field(default_factory=list)  # the down-mixed blocks of the first fingerprint.SECONDS, NaN-free


def _scan(path: Path, info: audio.AudioInfo) -> _Scan:
    """Every block once: its length, level, bad values and clipping, and the head the fingerprint is taken of."""
    s = _Scan()
    for block in audio.blocks(path, info):
        in_head = s.frames < fingerprint.SECONDS * info.sample_rate
        s.frames += len(block)
        if not block.size:
            continue
        lo, hi = float(block.min()), float(block.max())
        finite = np.isfinite(lo) and np.isfinite(hi)
        if in_head:
            s.head.append(audio.downmix(block) if finite else np.nan_to_num(audio.downmix(block)))
        if finite:  # the usual block: two passes instead of six
            s.peak = max(s.peak, -lo, hi)
            if max(-lo, hi) >= 0.999:  # only a block that reaches full scale can hold clipped samples
                s.clipped += int((np.abs(block) >= 0.999).sum())
        else:  # NaN or Inf somewhere: count them, and judge the level on the finite samples
            finite = np.isfinite(block)
            s.nonfinite += int(block.size - finite.sum())
            magnitude = np.abs(np.where(finite, block, 0.0))
            s.peak = max(s.peak, float(magnitude.max()))
            s.clipped += int((magnitude >= 0.999).sum())
    return s


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
        scan = _scan(path, info)
    except audio.DecodeError as exc:
        return row | {"reason": f"unreadable: {exc}"}
    row |= {"frames": scan.frames, "duration_s": scan.frames / info.sample_rate, "missing_s": info.missing_seconds}
    row["_fingerprint"] = fingerprint.fingerprint(np.concatenate(scan.head) if scan.head else np.zeros(0), info.sample_rate)
    row["peak_dbfs"] = 20 * np.log10(scan.peak) if scan.peak > 0 else -np.inf
    row["band_limited"] = info.sample_rate < SAMPLE_RATE
    return row | _verdict(row, info, scan, params)


def _verdict(row: dict, info: audio.AudioInfo, scan: _Scan, params: IngestParams) -> dict:
    """The status and reason of a file that decoded: the first check it fails, or ok with what was noted on the way."""
    truncated = (f"truncated: the header promises {row['duration_s'] + info.missing_seconds:.3f} s, "
                 f"{row['duration_s']:.3f} s are there") if info.missing_seconds else ""  # fmt: skip
    samples = max(scan.frames * info.channels, 1)
    if scan.frames == 0:
        reason = "empty: no audio frames"
    elif scan.nonfinite:
        reason = f"non-finite samples: {scan.nonfinite} NaN/Inf values"
    elif row["duration_s"] < params.min_seconds:
        reason = f"too short: {row['duration_s']:.3f} s < {params.min_seconds} s"
    elif row["peak_dbfs"] < params.silence_dbfs:
        reason = f"silent: peak {row['peak_dbfs']:.1f} dBFS < {params.silence_dbfs} dBFS"
    elif scan.clipped / samples > params.max_clipped_fraction:
        reason = f"clipped: {100 * scan.clipped / samples:.1f}% of samples at full scale > {100 * params.max_clipped_fraction:g}%"
    elif row["band_limited"] and params.exclude_band_limited:
        reason = f"band-limited: recorded at {info.sample_rate} Hz < {SAMPLE_RATE} Hz (exclude_band_limited is on)"
    elif truncated and params.truncated == "reject":
        reason = truncated
    else:
        notes = [truncated + " (kept)" if truncated else "",
                 "band-limited source, kept" if row["band_limited"] else "",
                 f"down-mixed from {info.channels} channels" if info.channels > 1 else ""]  # fmt: skip
        return {"status": "ok", "reason": "; ".join(filter(None, notes))}
    return {"reason": reason}
