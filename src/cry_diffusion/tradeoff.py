"""Time to quality: the fewest sampling steps whose audio is no worse than the full chain's, and the time saved.

Each generated set (one sampler and step count) is compared with the baseline set --
the full ancestral chain of T steps when it was sampled, else the most steps -- by a
paired bootstrap: the held-out reference clips, the baseline clips and the tested clips
are resampled together, and every measure's difference (tested minus baseline) gets a
confidence interval. The verdict is decided on measures that a narrower set can't win:

- KID (unbiased at any n), recall and coverage (diversity: they fall for a narrow or
  collapsed set), all in the level-normalised embedding, so that loudness is judged once,
- each acoustic feature's W1 distance to the real clips (the RMS level among them).

A set is "no worse" when no interval says it is worse, and "better" when one says it is
better and none says it is worse. FAD's difference is shown for context only: the
plug-in FD's small-sample bias grows with a set's spread, so a narrow set was called
significantly better than an equally distant shifted one in 60 of 60 trials at 32 clips.
With few clips the intervals are wide and "no worse" is a weak claim; the report shows n.

    from cry_diffusion import tradeoff
    result = tradeoff.compare({steps: evaluation_json, ...}, reference.ref_level, reference.ref_features, EvalParams())
"""

from __future__ import annotations

import numpy as np

from .evaluate import PRDC_K, EvalParams, _kid_from, _prdc_from, distances, frechet, interval, kernels, radii
from .features import FEATURES, wasserstein

HIGHER_IS_BETTER = ("recall", "coverage")
DECIDING = ("kid", *HIGHER_IS_BETTER, *FEATURES)  # what the verdict is decided on, in this order
LABELS = {"kid": "KID", "recall": "recall", "coverage": "coverage", "fad": "FAD"} | FEATURES


def _embeddings(e: dict) -> np.ndarray:
    return np.asarray(e.get("embeddings_level") or e["embeddings"])


class _Set:
    """One generated set's matrices against the reference, computed once for every bootstrap replicate."""

    def __init__(self, e: dict, ref: np.ndarray, k: int):
        self.e, self.x = e, _embeddings(e)
        self.kernels = kernels(self.x, ref)
        self.radii, self.d = radii(distances(self.x, self.x), k), distances(self.x, ref)

    def measures(self, it, ir, ref_feats: dict, r_ref: np.ndarray, ref: np.ndarray, k: int) -> dict:
        kxx, kyy, kxy = self.kernels
        found = _prdc_from(self.radii, r_ref, self.d, it, ir, k)
        out = {"kid": _kid_from(kxx, kyy, kxy, it, ir), "fad": frechet(self.x[it], ref[ir]),
               "recall": found["recall"], "coverage": found["coverage"]}  # fmt: skip
        for name in FEATURES:
            out[name] = wasserstein([self.e["features"][name][i] for i in it], [ref_feats[name][i] for i in ir])
        return out


def _differences(test: dict, base: dict, ref: np.ndarray, ref_feats: dict, p: EvalParams, rng) -> dict:
    """Bootstrap intervals of (test - base) for every measure, the three sets resampled jointly."""
    k = min(PRDC_K, len(test["embeddings"]) - 1, len(ref) - 1)
    t, b = _Set(test, ref, k), _Set(base, ref, k)
    r_ref = radii(distances(ref, ref), k)
    boots = {name: [] for name in ("fad", *DECIDING)}
    for _ in range(p.bootstrap):
        ir, ib, it = (rng.integers(0, n, n) for n in (len(ref), len(b.x), len(t.x)))
        if len(set(ir.tolist())) < 2 or len(set(it.tolist())) < 2 or len(set(ib.tolist())) < 2:
            continue  # no pair left for KID's unbiased average
        mt, mb = t.measures(it, ir, ref_feats, r_ref, ref, k), b.measures(ib, ir, ref_feats, r_ref, ref, k)
        for name in boots:
            boots[name].append(None if mt[name] is None or mb[name] is None else mt[name] - mb[name])
    # the point values are the evaluations' own, on every clip (FAD's: the plug-in, as its replicates are,
    # in the level-normalised space they resample)
    own = {e_id: _own(e) for e_id, e in (("test", test), ("base", base))}
    point = {name: None if own["test"][name] is None or own["base"][name] is None else own["test"][name] - own["base"][name]
             for name in boots}  # fmt: skip
    return {name: dict(zip(("value", "low", "high"), (point[name], *interval(v, p.confidence)))) for name, v in boots.items()}


def _own(e: dict) -> dict:
    levelled = e.get("level_normalised") or e
    # FAD from the same level-normalised embeddings the replicates resample: the raw one is another space
    out = {"fad": levelled["fad"]["plugin"], "kid": levelled["kid"]["value"]}
    for name in HIGHER_IS_BETTER:
        out[name] = (levelled.get(name) or {}).get("value")
    return out | {name: e["wasserstein"][name] for name in FEATURES}


def verdict(diff: dict) -> tuple[list[str], list[str]]:
    """(measures on which the tested set is worse, those on which it is better): intervals wholly on one side of 0."""
    worse, better = [], []
    for name in DECIDING:
        d = diff[name]
        if d["low"] is None or not np.isfinite(d["low"]):
            continue
        sign = -1 if name in HIGHER_IS_BETTER else 1  # distances: up is worse; recall, coverage: down is worse
        if (sign > 0 and d["low"] > 0) or (sign < 0 and d["high"] < 0):
            worse.append(name)
        elif (sign > 0 and d["high"] < 0) or (sign < 0 and d["low"] > 0):
            better.append(name)
    return worse, better


def compare(evals: dict[int, dict], ref: np.ndarray, ref_feats: dict, p: EvalParams = EvalParams(),
            base_steps: int | None = None) -> dict:  # fmt: skip
    """evals: {steps: the evaluation dict of that set} -> every set against the baseline, and the fastest no-worse one.

    ref, ref_feats: the held-out embeddings (level-normalised, as the evaluations' own
    `embeddings_level`: cry_diffusion.evaluate.Reference's ref_level) and features every set was scored against.
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
        levelled = e.get("level_normalised") or e
        row = {"steps": steps, "sampler": e.get("sampler"), "n": e["n"], "fad": levelled["fad"], "kid": levelled["kid"],
               "recall": levelled.get("recall"), "coverage": levelled.get("coverage"),
               "wall_seconds_per_audio_second": e.get("wall_seconds_per_audio_second"),
               "w1": {name: e["wasserstein"][name] for name in FEATURES}}  # fmt: skip
        base_wall = base.get("wall_seconds_per_audio_second")
        row["speedup"] = base_wall / row["wall_seconds_per_audio_second"] if base_wall and row["wall_seconds_per_audio_second"] else None
        if steps == base_steps:
            row |= {"difference": None, "worse_on": [], "better_on": [], "no_worse": True, "better": False}
        else:
            diff = _differences(e, base, ref, ref_feats, p, rng)
            worse, better = verdict(diff)
            row |= {"difference": diff, "worse_on": worse, "better_on": better, "no_worse": not worse,
                    "better": bool(better) and not worse}  # fmt: skip
        rows.append(row)
    candidates = [r for r in rows if r["no_worse"] and r["wall_seconds_per_audio_second"]]
    fastest = min(candidates, key=lambda r: r["wall_seconds_per_audio_second"]) if candidates else None
    return {"base_steps": base_steps, "base_sampler": base.get("sampler"), "confidence": p.confidence,
            "bootstrap": p.bootstrap, "deciding": list(DECIDING), "rows": rows,
            "fastest_no_worse": None if fastest is None else {k: fastest[k] for k in ("steps", "sampler", "speedup")}}  # fmt: skip
