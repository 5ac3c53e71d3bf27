"""Time to quality: the fewest sampling steps whose audio is shown no worse than the full chain's, and the time saved.

Each generated set (one sampler and step count) is compared with the baseline set --
the full ancestral chain of T steps when it was sampled, else the most steps -- by a
bootstrap of every measure's difference (tested minus baseline): the held-out reference
clips are resampled, and so are the two sets' clips. The verdict is decided on measures
that a narrower set can't win:

- KID (unbiased at any n), recall and coverage (diversity: they fall for a narrow or
  collapsed set), all in the level-normalised embedding, so that loudness is judged once,
- the distinct fraction in each embedding (near-duplicates within the set: a collapse at any n),
- each acoustic feature's W1 distance to the real clips (the RMS level among them).

"No worse" is a non-inferiority decision: every measure has a margin (MARGINS; each W1's is
W1_MARGIN real standard deviations of its feature), and the tested set is no worse when each
difference's interval stops short of the margin on the worse side. It is "worse" when an
interval lies wholly on the worse side of 0, "better" when it is no worse and an interval
lies wholly on the better side of 0, and otherwise "undecided (too few clips)": the intervals
are too wide to tell, or the sets have fewer than MIN_CLIPS clips. Deciding "no worse" as "not shown worse" called a set shifted to KID
+0.36 no worse in 45 of 60 runs at 8 clips. FAD's difference is shown for context only: the
plug-in FD's small-sample bias grows with a set's spread, so a narrow set was called
significantly better than an equally distant shifted one in 60 of 60 trials at 32 clips.

Pairing (paired=True, the pipeline's case): the sets compared have the same clip count and
clip i of each was made from the same seed, starting noise and label, so one bootstrap index
draws clip i of both sets (their shared randomness cancels in the difference: where clip i of two
sets shares 64% of its variance, the KID and W1 intervals came out 37-43% narrower and recall's
10-29%, benchmarks/intervals.py). Sets from different generators, or from different seeds, are not paired: pass
paired=False and each set's clips are drawn independently.

    from cry_diffusion import tradeoff
    result = tradeoff.compare({steps: evaluation_json, ...}, reference.ref_level, reference.ref_features, EvalParams())
"""

from __future__ import annotations

import numpy as np

from .distances import (PRDC_K, EvalParams, centred_interval, counts, distances, distinct_fraction, fad, frechet, kernels,
                        kid, kid_replicates, prdc, prdc_replicates, radii)  # fmt: skip
from .features import FEATURES, finite, wasserstein, wasserstein_weighted

HIGHER_IS_BETTER = ("recall", "coverage", "distinct_fraction", "distinct_fraction_pretrained")
DECIDING = ("kid", *HIGHER_IS_BETTER, *FEATURES)  # what the verdict is decided on, in this order
LABELS = {"kid": "KID", "recall": "recall", "coverage": "coverage", "fad": "FAD",
          "distinct_fraction": "distinct fraction", "distinct_fraction_pretrained": "distinct fraction, pretrained"} | FEATURES
# The largest loss on each measure that still counts as no worse: KID a fifth of the way from real audio to the
# KID that a shift of 4 in FD gave (+0.36 at 8 clips); a tenth of the clips for the shares
MARGINS = {"kid": 0.2, "recall": 0.1, "coverage": 0.1, "distinct_fraction": 0.1, "distinct_fraction_pretrained": 0.1}
W1_MARGIN = 0.25  # each acoustic W1's margin, in standard deviations of that feature over the real clips
DISTINCT_SPACES = {"distinct_fraction": "in_domain", "distinct_fraction_pretrained": "pretrained"}
# Below this many clips per set no verdict: the bootstrap has too few distinct resamples (2 clips: 3) to say how
# far a difference could move, and the simulations that calibrate the verdict (benchmarks/intervals.py) start here
MIN_CLIPS = 8
UNDECIDED = "undecided (too few clips)"


def _embeddings(e: dict) -> np.ndarray:
    return np.asarray(e.get("embeddings_level") or e["embeddings"])


class _Set:
    """One generated set's matrices against the reference, computed once for every bootstrap replicate."""

    def __init__(self, e: dict, ref: np.ndarray, k: int):
        self.e, self.x = e, _embeddings(e)
        self.kernels = kernels(self.x, ref)
        self.radii, self.d = radii(distances(self.x, self.x), k), distances(self.x, ref)
        self.distinct = {}  # each clip: farther than the near-duplicate threshold from every other clip of the set
        for name, space in DISTINCT_SPACES.items():
            d = (e.get("distinct_fraction") or {}).get(space)
            self.distinct[name] = None if not d or d.get("nearest") is None else np.array(d["nearest"]) > d["threshold"]

    def measures(self, it: np.ndarray, ir: np.ndarray, ref_feats: dict, r_ref: np.ndarray, ref: np.ndarray, k: int) -> dict:
        """Every measure over B replicates at once: it [B, n], ir [B, m] index draws -> {name: [B]} (None: not measured)."""
        wt, wr = counts(it, len(self.x)), counts(ir, len(ref))
        found = prdc_replicates(self.d, self.radii, r_ref, wt, wr, k)
        out = {"kid": kid_replicates(*self.kernels, wt, wr),
               "fad": np.array([frechet(self.x[a], ref[b]) for a, b in zip(it, ir)]),
               "recall": found[:, 1], "coverage": found[:, 3]}  # fmt: skip
        for name, distinct in self.distinct.items():
            out[name] = None if distinct is None else (wt * distinct).sum(1) / wt.sum(1)
        for name in FEATURES:
            mine = np.array([np.nan if v is None else v for v in self.e["features"][name]], float)
            real = np.array([np.nan if v is None else v for v in ref_feats[name]], float)
            wm, wre = wt[:, np.isfinite(mine)], wr[:, np.isfinite(real)]
            ok = (wm.sum(1) > 0) & (wre.sum(1) > 0)  # a replicate that drew no clip with a value has no W1
            w1 = np.full(len(wt), np.nan)
            if ok.any():
                w1[ok] = wasserstein_weighted(mine[np.isfinite(mine)], real[np.isfinite(real)], wm[ok], wre[ok])
            out[name] = w1
        return out


def _differences(test: dict, base: dict, ref: np.ndarray, ref_feats: dict, p: EvalParams, rng, paired: bool) -> dict:
    """Bootstrap intervals of (test - base) for every measure: the reference resampled, and both sets' clips
    (with one index for clip i of both sets when paired). Each interval is centred on the difference of the
    evaluations' own values (distances.centred_interval): a resample's duplicates bias PRDC and W1 replicates."""
    k = min(PRDC_K, len(test["embeddings"]) - 1, len(ref) - 1)
    t, b = _Set(test, ref, k), _Set(base, ref, k)
    r_ref = radii(distances(ref, ref), k)
    draws = [(rng.integers(0, len(ref), len(ref)), rng.integers(0, len(t.x), len(t.x))) for _ in range(p.bootstrap)]
    draws = [(ir, it, it if paired else rng.integers(0, len(b.x), len(b.x))) for ir, it in draws]
    # no pair left for KID's unbiased average in a draw of one clip
    draws = [d for d in draws if all(len(set(x.tolist())) > 1 for x in d)]
    ir, it, ib = (np.array([d[i] for d in draws]).reshape(len(draws), -1) for i in range(3))
    mt, mb = t.measures(it, ir, ref_feats, r_ref, ref, k), b.measures(ib, ir, ref_feats, r_ref, ref, k)
    own = {"test": _own(test), "base": _own(base)}
    point = {name: None if own["test"][name] is None or own["base"][name] is None else own["test"][name] - own["base"][name]
             for name in ("fad", *DECIDING)}  # fmt: skip
    # worse or better on any one of m measures: each decided at 1 - (1 - confidence) / m (Bonferroni)
    family = 1 - (1 - p.confidence) / max(1, sum(point[name] is not None for name in DECIDING))
    out = {}
    for name, value in point.items():
        boots = [] if mt[name] is None or mb[name] is None or not draws else mt[name] - mb[name]
        out[name] = dict(zip(("value", "low", "high"), (value, *centred_interval(value, boots, p.confidence))))
        out[name]["family"] = list(centred_interval(value, boots, family))
    return out


def _own(e: dict) -> dict:
    """The point values the differences are taken between: the evaluation's own, on every clip."""
    levelled = e.get("level_normalised") or e
    # FAD from the same level-normalised embeddings the replicates resample: the raw one is another space
    out = {"fad": levelled["fad"]["plugin"], "kid": levelled["kid"]["value"]}
    for name in ("recall", "coverage"):
        out[name] = (levelled.get(name) or {}).get("value")
    for name, space in DISTINCT_SPACES.items():
        out[name] = ((e.get("distinct_fraction") or {}).get(space) or {}).get("value")
    return out | {name: e["wasserstein"][name] for name in FEATURES}


def margins(ref_feats: dict) -> dict:
    """MARGINS, with each acoustic W1's margin in its feature's units (W1_MARGIN real standard deviations)."""
    spread = {name: finite(ref_feats[name]) for name in FEATURES}
    return MARGINS | {name: W1_MARGIN * float(x.std()) if len(x) > 1 else None for name, x in spread.items()}


def verdict(diff: dict, margin: dict) -> tuple[list[str], list[str], list[str]]:
    """(measures on which the tested set is worse, better, and undecided).

    Worse or better: the difference's family-wise interval (`family`: Bonferroni over the measures)
    lies wholly on that side of 0. Undecided: the interval reaches the margin on the worse side
    (or there is none), so "no worse" can't be shown.
    A measure that neither set has (no pretrained embedding; no clip with a pitch) is left out.
    """
    worse, better, undecided = [], [], []
    for name in DECIDING:
        d, m = diff[name], margin.get(name)
        if d["value"] is None:  # not measured for these sets (no pretrained embedding; no clip with a pitch)
            continue
        if d["low"] is None or not np.isfinite(d["low"]) or m is None:
            undecided.append(name)
            continue
        sign = -1 if name in HIGHER_IS_BETTER else 1  # distances: up is worse; shares: down is worse
        low, high = sorted((sign * d["low"], sign * d["high"]))  # as a loss: up is worse
        family_low, family_high = sorted((sign * d["family"][0], sign * d["family"][1]))
        if family_low > 0:
            worse.append(name)
            continue
        if high >= m:
            undecided.append(name)
        if family_high < 0:
            better.append(name)
    return worse, better, undecided


def compare(evals: dict, ref: np.ndarray, ref_feats: dict, p: EvalParams = EvalParams(), base_steps=None,
            paired: bool = True) -> dict:  # fmt: skip
    """evals: {set name or step count: the evaluation dict of that set} -> every set against the baseline, and the
    fastest one shown no worse.

    ref, ref_feats: the held-out embeddings (level-normalised, as the evaluations' own
    `embeddings_level`: cry_diffusion.evaluate.Reference's ref_level) and features every set was
    scored against. paired: clip i of every set shares its seed, starting noise and label (one
    generator, one seed: the pipeline's step counts); False for sets that don't.
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
    margin = margins(ref_feats)
    rng = np.random.default_rng(p.seed)
    rows = []
    for steps in sorted(evals, reverse=True):
        e = evals[steps]
        levelled = e.get("level_normalised") or e
        row = {"steps": steps, "sampler": e.get("sampler"), "n": e["n"], "fad": levelled["fad"], "kid": levelled["kid"],
               "recall": levelled.get("recall"), "coverage": levelled.get("coverage"),
               "distinct_fraction": {space: ((e.get("distinct_fraction") or {}).get(space) or {}).get("value")
                                     for space in DISTINCT_SPACES.values()},
               "wall_seconds_per_audio_second": e.get("wall_seconds_per_audio_second"),
               "w1": {name: e["wasserstein"][name] for name in FEATURES}}  # fmt: skip
        base_wall = base.get("wall_seconds_per_audio_second")
        row["speedup"] = base_wall / row["wall_seconds_per_audio_second"] if base_wall and row["wall_seconds_per_audio_second"] else None
        if steps == base_steps:
            row |= {"difference": None, "worse_on": [], "better_on": [], "undecided_on": [], "verdict": "baseline",
                    "no_worse": True, "better": False}  # fmt: skip
        else:
            diff = _differences(e, base, ref, ref_feats, p, rng, paired)
            worse, better, undecided = verdict(diff, margin) if e["n"] >= MIN_CLIPS else ([], [], list(DECIDING))
            said = "worse" if worse else UNDECIDED if undecided else "better" if better else "no worse"
            row |= {"difference": diff, "worse_on": worse, "better_on": better, "undecided_on": undecided,
                    "verdict": said, "no_worse": said in ("no worse", "better"), "better": said == "better"}  # fmt: skip
        rows.append(row)
    candidates = [r for r in rows if r["no_worse"] and r["wall_seconds_per_audio_second"]]
    fastest = min(candidates, key=lambda r: r["wall_seconds_per_audio_second"]) if candidates else None
    return {"base_steps": base_steps, "base_sampler": base.get("sampler"), "confidence": p.confidence,
            "bootstrap": p.bootstrap, "paired": paired, "deciding": list(DECIDING), "margins": margin, "rows": rows,
            "fastest_no_worse": None if fastest is None else {k: fastest[k] for k in ("steps", "sampler", "speedup")}}  # fmt: skip


def evaluation_of(embeddings: np.ndarray, features: dict, ref: np.ndarray, ref_feats: dict, threshold: float,
                  **extra) -> dict:  # fmt: skip
    """What compare() reads of an evaluation (cry_diffusion.evaluate.score's keys), for a set scored outside the
    pipeline (a simulation): its level-normalised embeddings [n, dim] and clip features, against ref and ref_feats.

    threshold: the near-duplicate distance (Reference.copy_threshold in the pipeline). extra: more keys
    (sampler, wall_seconds_per_audio_second). Point values only: compare() makes the intervals.
    """
    e, p = np.asarray(embeddings, float), EvalParams(bootstrap=0)
    return {"n": len(e), "embeddings": e.tolist(), "embeddings_level": e.tolist(), "features": features,
            "wasserstein": {name: wasserstein(features[name], ref_feats[name]) for name in FEATURES},
            "level_normalised": {"fad": fad(e, ref, p), "kid": kid(e, ref, p)} | prdc(e, ref, p),
            "distinct_fraction": {"in_domain": distinct_fraction(e, ref, threshold, p), "pretrained": None}} | extra
