"""Quality against training time: each snapshot of a run, sampled and scored as the final model is.

Training keeps the EMA model every `train.snapshot_every` steps (cry_diffusion.train). Each
snapshot is sampled with the same sampler, clip count, length and seed as the final model's
full chain, and scored against the same reference. The x axis is the training wall time the
snapshot records (on the device it trained on), so the curve reads "quality after so many
GPU minutes". Besides FAD, each acoustic feature gets its W1 distance with a bootstrap
interval, and the clips' median against the real held-out clips' 10th-90th percentiles.

    from cry_diffusion import progress
    result = progress.measure(snapshot_paths, reference, bundle, n=16, seconds=1.0, steps=200)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .evaluate import EvalParams, Reference, interval, score
from .features import FEATURES, finite, wasserstein
from .generate import generate

log = logging.getLogger("cry_diffusion.progress")
REAL_RANGE = (10, 90)  # percentiles of the real clips' values that a generated median should fall between


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


def real_ranges(ref: Reference) -> dict:
    """Each feature's 10th-90th percentile over the real held-out clips (None where no clip has a value)."""
    out = {}
    for name in FEATURES:
        x = finite(ref.ref_features[name])
        out[name] = [float(v) for v in np.percentile(x, REAL_RANGE)] if len(x) else None
    return out


def measure(snapshots: list, ref: Reference, bundle: dict, n: int, seconds: float, steps: int, seed: int = 0,
            **sampling) -> dict:  # fmt: skip
    """Sample and score every snapshot (model files from cry_diffusion.train), oldest first.

    sampling: further keyword arguments of cry_diffusion.generate.generate (batch_size, device,
    precision, graph, guidance_scale, threads).
    """
    ranges = real_ranges(ref)
    rows = []
    for path in sorted(snapshots, key=lambda s: Path(s).name):
        audio, info = generate(path, n, seconds, steps, seed, labels="each", **sampling)
        scores = score(ref, bundle, audio, info["label_names"])
        values = {name: finite(scores["features"][name]) for name in FEATURES}
        medians = {name: float(np.median(x)) if len(x) else None for name, x in values.items()}
        rows.append({
            "step": info["model_step"], "minutes": (info["model_elapsed_seconds"] or float("nan")) / 60,
            "trained_on": info["model_trained_on"], "sampled_on": info["device"], "sampler": info["sampler"],
            "n": scores["n"], "n_ref": scores["n_ref"], "fad": scores["fad"], "kid": scores["kid"],
            "wasserstein": {name: w1_interval(scores["features"][name], ref.ref_features[name], ref.params)
                            for name in FEATURES},
            "median": medians,
            "with_value": {name: len(x) for name, x in values.items()},  # f0 has none for an unvoiced clip
            # inside the real range, by the median of at least half the clips
            "inside": {name: None if medians[name] is None or ranges[name] is None else
                       bool(2 * len(values[name]) >= n and ranges[name][0] <= medians[name] <= ranges[name][1])
                       for name in FEATURES},
        })  # fmt: skip
        log.info("step %d (%.1f min): FAD %.3g", rows[-1]["step"], rows[-1]["minutes"], scores["fad"]["value"])
    return {"steps": steps, "n": n, "seconds": seconds, "real_range": ranges, "percentiles": list(REAL_RANGE),
            "rows": rows}
