"""Quality against training time: each snapshot of a run, sampled and scored as the final model is.

Training keeps the EMA model every `train.snapshot_every` steps (cry_diffusion.train). Each
snapshot is sampled with the same sampler, clip count, length and seed as the final model's
full chain, and scored against the same reference. The x axis is the training wall time the
snapshot records (on the device it trained on), so the curve reads "quality after so many
GPU minutes". Besides FAD, KID, recall and coverage, each acoustic feature gets its W1
distance with a bootstrap interval, and the clips' values are held to the real held-out
clips' (`inside`): the bootstrap interval of their median lies within the real clips'
10th-90th percentiles, and their own 10th-90th percentile spread is within a factor
SPREAD_FACTOR of the real one, so that a set of identical median clips does not pass.

    from cry_diffusion import progress
    result = progress.measure(snapshot_paths, reference, bundle, n=16, seconds=1.0, steps=200)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .evaluate import EvalParams, Reference, interval, score
from .features import FEATURES, finite, wasserstein
from .generator import generate

log = logging.getLogger("cry_diffusion.progress")
REAL_RANGE = (10, 90)  # percentiles of the real clips' values that a generated median should fall between
SPREAD_FACTOR = 2.0  # the generated clips' spread (REAL_RANGE's width) must be within this factor of the real clips'


def inside(values, real_range: list | None, real_spread: float | None, n: int, p: EvalParams) -> dict:
    """Whether one feature's clip values sit inside the real ones: median (with its bootstrap interval) and spread.

    Passes when at least half of the n clips have a value, the median's interval lies in the
    real range, and the values' REAL_RANGE width is within SPREAD_FACTOR of the real width.
    """
    x = finite(values)
    if not len(x) or real_range is None:
        return {"median": None, "low": None, "high": None, "spread_ratio": None, "inside": None}
    rng = np.random.default_rng(p.seed)
    low, high = interval([np.median(x[rng.integers(0, len(x), len(x))]) for _ in range(p.bootstrap)], p.confidence)
    spread = float(np.subtract(*np.percentile(x, REAL_RANGE[::-1])))
    ratio = spread / real_spread if real_spread else None
    ok = (2 * len(x) >= n and real_range[0] <= low and high <= real_range[1]
          and ratio is not None and 1 / SPREAD_FACTOR <= ratio <= SPREAD_FACTOR)  # fmt: skip
    return {"median": float(np.median(x)), "low": low, "high": high, "spread_ratio": ratio, "inside": bool(ok)}


def w1_interval(generated, real, p: EvalParams) -> dict:
    """W1 between one feature's generated and real values, with a percentile bootstrap interval (both resampled)."""
    a, b = finite(generated), finite(real)
    if not len(a) or not len(b):
        return {"value": None, "low": None, "high": None}
    rng = np.random.default_rng(p.seed)
    boots = [wasserstein(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))])
             for _ in range(p.bootstrap)]  # fmt: skip
    low, high = interval(boots, p.confidence)
    return {"value": wasserstein(a, b), "low": low, "high": high}


def band_checks(features: dict, ranges: dict, n: int, p: EvalParams) -> dict:
    """`inside` for every feature of a scored set (cry_diffusion.evaluate.score's "features"), against `real_ranges`."""
    return {name: inside(features[name], ranges[name], None if ranges[name] is None else ranges[name][1] - ranges[name][0],
                         n, p) for name in FEATURES}  # fmt: skip


def real_ranges(ref: Reference) -> dict:
    """Each feature's 10th-90th percentile over the real held-out clips (None where no clip has a value)."""
    out = {}
    for name in FEATURES:
        x = finite(ref.ref_features[name])
        out[name] = [float(v) for v in np.percentile(x, REAL_RANGE)] if len(x) else None
    return out


def measure(snapshots: list, ref: Reference, bundle: dict, n: int, seconds: float, steps: int, seed: int = 0,
            route: str = "waveform", vocoder: dict | None = None, labels="each", **sampling) -> dict:  # fmt: skip
    """Sample and score every snapshot (model files of a route's generator: cry_diffusion.generator), oldest first.

    route, vocoder: cry_diffusion.generator.generate's (a mel prior's snapshots are vocoded as its
    route says). sampling: further keyword arguments of cry_diffusion.generate.generate
    (batch_size, device, precision, graph, guidance_scale, threads).
    """
    ranges = real_ranges(ref)
    rows = []
    for path in sorted(snapshots, key=lambda s: Path(s).name):
        audio, info = generate(route, path, n, seconds, steps, seed, labels, vocoder=vocoder, **sampling)
        scores = score(ref, bundle, audio, info["label_names"])
        values = {name: finite(scores["features"][name]) for name in FEATURES}
        checks = band_checks(scores["features"], ranges, n, ref.params)
        levelled = scores["level_normalised"]
        rows.append({
            "step": info["model_step"], "minutes": (info["model_elapsed_seconds"] or float("nan")) / 60,
            "trained_on": info["model_trained_on"], "sampled_on": info["device"], "sampler": info["sampler"],
            "n": scores["n"], "n_ref": scores["n_ref"], "fad": scores["fad"], "kid": scores["kid"],
            "level_normalised": {k: levelled[k] for k in ("fad", "kid", "recall", "coverage")},
            "recall": scores["recall"], "coverage": scores["coverage"],
            "pretrained": None if not scores["pretrained"] else {k: scores["pretrained"][k] for k in ("fad", "kid", "recall", "coverage")},
            "wasserstein": {name: w1_interval(scores["features"][name], ref.ref_features[name], ref.params)
                            for name in FEATURES},
            "median": {name: checks[name]["median"] for name in FEATURES},
            "median_interval": {name: [checks[name]["low"], checks[name]["high"]] for name in FEATURES},
            "spread_ratio": {name: checks[name]["spread_ratio"] for name in FEATURES},
            "with_value": {name: len(x) for name, x in values.items()},  # f0 has none for an unvoiced clip
            "inside": {name: checks[name]["inside"] for name in FEATURES},
        })  # fmt: skip
        log.info("step %d (%.1f min): FAD %.3g", rows[-1]["step"], rows[-1]["minutes"], scores["fad"]["value"])
    return {"route": route, "steps": steps, "n": n, "seconds": seconds, "real_range": ranges, "percentiles": list(REAL_RANGE),
            "spread_factor": SPREAD_FACTOR, "rows": rows}
