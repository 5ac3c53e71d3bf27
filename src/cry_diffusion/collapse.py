"""The collapse family: sets of a few real clips repeated, as a generator that lost its diversity makes them,
and which measures can't tell them from the real floor (the report marks those measures).

    from cry_diffusion import collapse
    collapse.collapse_family(floor_audio)                  # {"2 clips repeated": clips, ...}
    collapse.collapse_blind_spots(ref, bundle, floor_audio)   # the `evaluate` rule, on the real floor
"""

from __future__ import annotations

import numpy as np

from .distances import PRDC
from .evaluate import Reference, at_path, embedding_scores

COLLAPSE_MODES = (2, 3, 4, 5, 6)  # the collapse family: this many real clips, each repeated to fill a set
COLLAPSE_SNR_DB = 30.0  # its noisy members: every copy after a clip's first with its own white noise at this SNR


def with_noise(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """The clips with white noise added at snr_db below each clip's own RMS."""
    rms = np.sqrt(np.mean(np.square(audio, dtype=np.float64), axis=1, keepdims=True))
    noise = np.random.default_rng(seed).standard_normal(audio.shape) * rms * 10 ** (-snr_db / 20)
    return (audio + noise).astype(np.float32)


def collapse_family(audio: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Sets as large as `audio`, made of its first 2 to 6 clips repeated: a collapse, as a generator that lost its
    diversity makes it. At 8 clips every clip has fewer copies than k + 1, at 32 more; each set exactly, and
    with every copy after a clip's first carrying its own noise at COLLAPSE_SNR_DB (never an exact repeat). Only
    members with a repeat: none at 2 clips."""
    n, out = len(audio), {}
    for modes in (m for m in COLLAPSE_MODES if m < n):  # a set of n distinct clips is no collapse
        which = np.repeat(np.arange(modes), -(-n // modes))[:n]
        exact = np.asarray(audio[which], np.float32)
        first = np.r_[True, which[1:] != which[:-1]][:, None]
        out[f"{modes} clips repeated"] = exact
        out[f"{modes} clips repeated, noise at {COLLAPSE_SNR_DB:g} dB SNR"] = np.where(
            first, exact, with_noise(exact, COLLAPSE_SNR_DB, seed + modes))
    return out


# Where each measure of evaluate.embedding_scores sits, as a dotted path, and whether higher is better (None: its own rule)
COLLAPSE_MEASURES = {f"{space}{name}": name in PRDC for space in ("", "level_normalised.", "pretrained.",
                                                                  "pretrained.level_normalised.")
                     for name in ("fad", "kid", *PRDC)} | {"distinct_fraction.in_domain": None,
                                                          "distinct_fraction.pretrained": None}  # fmt: skip


def collapse_blind_spots(r: Reference, bundle: dict, floor_audio: np.ndarray) -> dict:
    """Which measures can't tell the real floor from members of the collapse family, at the floor's n.

    A member is told apart when its interval lies wholly on the worse side of the floor's value
    (the distinct fraction: when it is below the real sets' range). `blind`: measure (a dotted
    path, COLLAPSE_MEASURES) -> the members it lets through; the report marks those measures.
    """
    floor = embedding_scores(r, bundle, floor_audio)
    blind: dict[str, list[str]] = {}
    members = collapse_family(floor_audio, r.params.seed)
    for label, audio in members.items():
        scores = embedding_scores(r, bundle, audio)
        for path, higher in COLLAPSE_MEASURES.items():
            mine, base = at_path(scores, path), at_path(floor, path)
            if mine is None or base is None:
                continue
            if higher is None:
                seen = bool(mine["below_real"])
            elif mine["value"] is None or base["value"] is None:
                seen = False
            else:
                seen = mine["high"] < base["value"] if higher else mine["low"] > base["value"]
            if not seen:
                blind.setdefault(path, []).append(label)
    return {"n": len(floor_audio), "members": list(members), "blind": blind}
