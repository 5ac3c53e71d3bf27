"""Time to quality: the fewest sampling steps whose audio is no worse than the full chain's, and the time saved.

Each generated set (one sampler and step count) is compared with the baseline set --
the full ancestral chain of T steps when it was sampled, else the most steps -- by a
paired bootstrap: the held-out reference clips, the baseline clips and the tested clips
are resampled together, and every metric's difference (tested minus baseline; all are
distances, lower is better) gets a confidence interval. A set is "no worse" when no
interval lies wholly above zero: FAD and each acoustic Wasserstein distance. With few
clips the intervals are wide and "no worse" is a weak claim; the report shows n.

    from cry_diffusion import tradeoff
    result = tradeoff.compare({steps: evaluation_json, ...}, reference.ref, reference.ref_features, EvalParams())
"""

from __future__ import annotations

import numpy as np

from .evaluate import EvalParams, frechet, interval
from .features import FEATURES, wasserstein


def _w1(feats: dict, idx: np.ndarray, ref_feats: dict, ref_idx: np.ndarray, name: str) -> float | None:
    return wasserstein([feats[name][i] for i in idx], [ref_feats[name][i] for i in ref_idx])


def _differences(test: dict, base: dict, ref: np.ndarray, ref_feats: dict, p: EvalParams, rng) -> dict:
    """Bootstrap intervals of (test - base) for FAD and every feature's W1, the three sets resampled jointly."""
    te, be = np.asarray(test["embeddings"]), np.asarray(base["embeddings"])
    boots = {"fad": []} | {name: [] for name in FEATURES}
    for _ in range(p.bootstrap):
        ir, ib, it = (rng.integers(0, n, n) for n in (len(ref), len(be), len(te)))
        boots["fad"].append(frechet(te[it], ref[ir]) - frechet(be[ib], ref[ir]))
        for name in FEATURES:
            a, b = _w1(test["features"], it, ref_feats, ir, name), _w1(base["features"], ib, ref_feats, ir, name)
            boots[name].append(None if a is None or b is None else a - b)
    # the point values are the evaluations' own, on every clip
    point = {"fad": test["fad"]["plugin"] - base["fad"]["plugin"]}  # the bootstrap differences are of plug-in values
    for name in FEATURES:
        a, b = test["wasserstein"][name], base["wasserstein"][name]
        point[name] = None if a is None or b is None else a - b
    return {k: dict(zip(("value", "low", "high"), (point[k], *interval(v, p.confidence)))) for k, v in boots.items()}


def compare(evals: dict[int, dict], ref: np.ndarray, ref_feats: dict, p: EvalParams = EvalParams(),
            base_steps: int | None = None) -> dict:  # fmt: skip
    """evals: {steps: the evaluation dict of that set} -> every set against the baseline, and the fastest no-worse one.

    ref, ref_feats: the held-out embeddings and features every set was scored against
    (cry_diffusion.evaluate.Reference's ref and ref_features).
    """
    if not evals:
        raise ValueError("no generated sets to compare")
    counts = {steps: e["n"] for steps, e in evals.items()}
    if len(set(counts.values())) > 1:  # the paired bootstrap is calibrated at equal n (unequal: 20 of 30 false alarms)
        raise ValueError("sets of different sizes can't be compared (clips per step count: "
                         + ", ".join(f"{s} steps: {n}" for s, n in sorted(counts.items())) + ")")
    base_steps = base_steps or max(evals)
    base = evals[base_steps]
    ref = np.asarray(ref)
    rng = np.random.default_rng(p.seed)
    rows = []
    for steps in sorted(evals, reverse=True):
        e = evals[steps]
        row = {"steps": steps, "sampler": e.get("sampler"), "n": e["n"], "fad": e["fad"],
               "wall_seconds_per_audio_second": e.get("wall_seconds_per_audio_second"),
               "w1": {name: e["wasserstein"][name] for name in FEATURES}}  # fmt: skip
        base_wall = base.get("wall_seconds_per_audio_second")
        row["speedup"] = base_wall / row["wall_seconds_per_audio_second"] if base_wall and row["wall_seconds_per_audio_second"] else None
        if steps == base_steps:
            row |= {"difference": None, "worse_on": [], "no_worse": True}
        else:
            diff = _differences(e, base, ref, ref_feats, p, rng)
            worse = [k for k, d in diff.items() if np.isfinite(d["low"]) and d["low"] > 0]
            row |= {"difference": diff, "worse_on": worse, "no_worse": not worse}
        rows.append(row)
    candidates = [r for r in rows if r["no_worse"] and r["wall_seconds_per_audio_second"]]
    fastest = min(candidates, key=lambda r: r["wall_seconds_per_audio_second"]) if candidates else None
    return {"base_steps": base_steps, "base_sampler": base.get("sampler"), "confidence": p.confidence,
            "bootstrap": p.bootstrap, "rows": rows,
            "fastest_no_worse": None if fastest is None else {k: fastest[k] for k in ("steps", "sampler", "speedup")}}  # fmt: skip
