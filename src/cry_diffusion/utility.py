"""What synthetic cries are for: does adding them make a cry classifier better on real recordings?

The measures the field uses for generated training data, on held-out real recordings (split by
recording, as the segment stage splits them):

- TRTR: train on real training segments, test on real: the baseline;
- TSTR: train on generated clips only, as many per category as the real set has (Esteban et al.
  2017), which is the Classification Accuracy Score of Ravuri & Vinyals (2019): models with
  excellent FID could be useless as training data;
- augmented: real plus generated, at `ratios` generated clips per real one, and balanced:
  generated clips fill the small categories up to the largest; each at `fractions` of the
  training recordings, since scarcity is where synthesis should help.

The measure is unweighted average recall (UAR: the mean of the per-category recalls, the field's
measure for unbalanced cry classes) and accuracy. Each configuration is trained `seeds` times
(each seed draws its own recordings at a fraction below 1 and its own generated clips), and its
interval comes from a bootstrap over test recordings of the mean over seeds. A configuration
"helps" when its paired difference from TRTR at the same fraction (same seeds, same bootstrap
draws) lies above 0, "hurts" when below, and is "no difference" otherwise.

The classifier is the field's classic baseline: a multinomial logistic regression on each clip's
log-mel statistics (the per-band mean and spread over time, z-scored on its training set). It
trains in milliseconds, so every cell of the grid gets every seed.

    from cry_diffusion import utility
    result = utility.compare(train, test, pool, UtilityParams())   # each a Clips(mels, labels, recordings)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mel import MelParams, log_mel
from .params import Params


@dataclass(frozen=True)
class UtilityParams(Params):
    fractions: tuple[float, ...] = (0.1, 0.25, 1.0)  # shares of the training recordings kept, per category
    ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # generated clips added per real one
    balanced: bool = True  # also: generated clips fill each category up to the largest
    seeds: int = 3  # classifier trainings per configuration
    bootstrap: int = 1000  # resamples of the test recordings
    confidence: float = 0.95
    regularisation: float = 1.0  # the logistic regression's C (inverse strength)
    seed: int = 0


@dataclass
class Clips:
    """Log-mels [N, bands, frames] with a category and a recording per clip (generated clips: one recording each)."""

    mels: np.ndarray
    labels: np.ndarray
    recordings: np.ndarray

    def __post_init__(self):
        self.labels, self.recordings = np.asarray(self.labels, str), np.asarray(self.recordings, str)
        if not len(self.mels) == len(self.labels) == len(self.recordings):
            raise ValueError(f"{len(self.mels)} clips, {len(self.labels)} labels, {len(self.recordings)} recordings")

    def features(self) -> np.ndarray:
        return statistics(self.mels)


def statistics(mels: np.ndarray) -> np.ndarray:
    """Each clip's log-mel mean and spread over time, per band: [N, 2 x bands]."""
    mels = np.asarray(mels, np.float64)
    return np.concatenate([mels.mean(-1), mels.std(-1)], axis=1)


def fit_predict(x: np.ndarray, y: np.ndarray, test: np.ndarray, p: UtilityParams, seed: int) -> np.ndarray:
    """The classifier trained on (x, y), its predictions for `test`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(set(y.tolist())) < 2:  # one category only: it can only ever say that one
        return np.full(len(test), y[0])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=p.regularisation, max_iter=2000, random_state=seed))
    return model.fit(x, y).predict(test)


def uar(truth: np.ndarray, predicted: np.ndarray, classes, weights: np.ndarray | None = None) -> np.ndarray:
    """Unweighted average recall over `classes`; weights [B, N]: one value per row of clip weights (a bootstrap)."""
    weights = np.ones((1, len(truth))) if weights is None else weights
    recalls = []
    for c in classes:
        mine = truth == c
        recalls.append((weights * (mine & (predicted == c))).sum(1) / np.maximum((weights * mine).sum(1), 1e-12))
    return np.mean(recalls, axis=0)


def _pick_recordings(clips: Clips, fraction: float, rng) -> np.ndarray:
    """Indices of the clips of `fraction` of each category's recordings (at least one recording each)."""
    keep = []
    for c in np.unique(clips.labels):
        recordings = np.unique(clips.recordings[clips.labels == c])
        chosen = rng.choice(recordings, max(1, round(fraction * len(recordings))), replace=False)
        keep.append(np.flatnonzero((clips.labels == c) & np.isin(clips.recordings, chosen)))
    return np.sort(np.concatenate(keep))


def _pick_generated(pool: Clips, counts: dict, rng) -> np.ndarray:
    """Indices of `counts[c]` generated clips of each category c, drawn without replacement."""
    picks = []
    for c, k in counts.items():
        mine = np.flatnonzero(pool.labels == c)
        if k > len(mine):
            raise ValueError(f"the pool has {len(mine)} generated clips of {c!r}, {k} are asked for")
        picks.append(rng.choice(mine, k, replace=False))
    return np.concatenate(picks) if picks else np.zeros(0, int)


def pool_size(counts: dict[str, int], p: UtilityParams) -> dict[str, int]:
    """How many generated clips of each category the grid can draw at once (counts: the real training clips of each)."""
    largest = max(counts.values(), default=0)
    return {c: max(n, round(max(p.ratios, default=0) * n), largest - n if p.balanced else 0) for c, n in counts.items()}


def skipped(categories: int, conditional: bool, route: str) -> str | None:
    """Why the stage can't measure a dataset, or None when it can."""
    if categories < 2:
        return f"{categories} categor{'y' if categories == 1 else 'ies'} in the training split: no classifier to train"
    if not conditional:
        section = "model" if route == "waveform" else "mel_prior.model"
        return (f"the {route} generator is unconditional, so it makes no clips of a chosen category: "
                f"set {section}.conditional: true")
    return None


def configurations(train: Clips, p: UtilityParams):
    """(name, fraction, how the generated clips are counted per category): the grid, TRTR first at each fraction."""
    for f in p.fractions:
        yield "trtr", f, None
        for r in p.ratios:
            yield f"augmented x{r:g}", f, ("ratio", r)
        if p.balanced:
            yield "balanced", f, ("balanced", None)
    yield "tstr", 1.0, ("only", None)


def compare(train: Clips, test: Clips, pool: Clips, p: UtilityParams = UtilityParams()) -> dict:
    """Every configuration's UAR and accuracy on the test recordings, with intervals, and its difference from TRTR."""
    overlap = set(train.recordings) & set(test.recordings)
    if overlap:  # split by recording, never by segment
        raise ValueError(f"test recordings in the training set: {sorted(overlap)[:5]}")
    classes = sorted(set(train.labels) & set(test.labels))
    if len(classes) < 2:
        raise ValueError(f"categories on both sides of the split: {classes}; a classifier needs two or more")
    keep = np.isin(train.labels, classes)
    train = Clips(train.mels[keep], train.labels[keep], train.recordings[keep])
    test_x, features, pool_x = test.features(), train.features(), pool.features()
    # the bootstrap over test recordings: each replicate weighs a clip by how often its recording was drawn
    groups, which = np.unique(test.recordings, return_inverse=True)
    draws = np.random.default_rng(p.seed).integers(0, len(groups), (p.bootstrap, len(groups)))
    weights = np.stack([np.bincount(d, minlength=len(groups)) for d in draws])[:, which].astype(float)
    rows = []
    for name, fraction, how in configurations(train, p):
        seeds_uar, seeds_acc, boots, sizes = [], [], [], []
        for s in range(p.seeds):
            rng = np.random.default_rng([p.seed, s, round(1000 * fraction)])
            real = _pick_recordings(train, fraction, rng)
            counts = {c: int((train.labels[real] == c).sum()) for c in classes}
            if how is None:
                gen = np.zeros(0, int)
            elif how[0] == "ratio":
                gen = _pick_generated(pool, {c: round(how[1] * n) for c, n in counts.items()}, rng)
            elif how[0] == "balanced":
                gen = _pick_generated(pool, {c: max(counts.values()) - n for c, n in counts.items()}, rng)
            else:  # synthetic only, as many per category as the real set has
                gen, real = _pick_generated(pool, counts, rng), np.zeros(0, int)
            x = np.concatenate([features[real], pool_x[gen]])
            y = np.concatenate([train.labels[real], pool.labels[gen]])
            predicted = fit_predict(x, y, test_x, p, s)
            seeds_uar.append(float(uar(test.labels, predicted, classes)[0]))
            seeds_acc.append(float(np.mean(predicted == test.labels)))
            boots.append(uar(test.labels, predicted, classes, weights))
            sizes.append({"real": int(len(real)), "generated": int(len(gen))})
        rows.append({"name": name, "fraction": fraction, "seeds": seeds_uar, "sizes": sizes, "replicates": np.mean(boots, 0),
                     "uar": _summary(float(np.mean(seeds_uar)), np.mean(boots, 0), p),
                     "accuracy": float(np.mean(seeds_acc))})  # fmt: skip
    baseline = {r["fraction"]: r for r in rows if r["name"] == "trtr"}
    for r in rows:
        base = baseline.get(r["fraction"]) if r["name"] != "tstr" else baseline.get(max(p.fractions))
        if base is None or base is r:
            r["difference"], r["effect"] = None, "baseline"
            continue
        r["difference"] = _summary(r["uar"]["value"] - base["uar"]["value"], r["replicates"] - base["replicates"], p)
        low, high = r["difference"]["low"], r["difference"]["high"]
        r["effect"] = "helps" if low > 0 else "hurts" if high < 0 else "no difference"
    for r in rows:
        del r["replicates"]
    return {"classes": classes, "chance": 1 / len(classes), "test_clips": int(len(test.labels)),
            "test_recordings": int(len(groups)), "train_clips": int(len(train.labels)),
            "train_recordings": int(len(set(train.recordings))), "params": p.to_dict(), "rows": rows}  # fmt: skip


def _summary(value: float, replicates: np.ndarray, p: UtilityParams) -> dict:
    """A value with the basic bootstrap's interval about it (the replicates' spread about their mean, reflected)."""
    tail = 100 * (1 - p.confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    centre = float(np.mean(replicates))
    return {"value": value, "low": value + centre - high, "high": value + centre - low}


def sections(result: dict) -> dict:
    """utility.json's top-level keys: trtr, tstr, augmented (by name, then real-data fraction) and the grid's rows."""
    rows = result["rows"]
    augmented = {}
    for r in rows:
        if r["name"] not in ("trtr", "tstr"):
            augmented.setdefault(r["name"], {})[str(r["fraction"])] = r
    return {"trtr": {str(r["fraction"]): r for r in rows if r["name"] == "trtr"},
            "tstr": next(r for r in rows if r["name"] == "tstr"), "augmented": augmented}


def verdict(result: dict) -> str:
    """One plain sentence: does adding generated clips help this classifier on real recordings?"""
    rows = [r for r in result["rows"] if r["name"] not in ("trtr", "tstr")]
    helps = [f"{r['name']} at {r['fraction']:g} of the recordings" for r in rows if r["effect"] == "helps"]
    hurts = [f"{r['name']} at {r['fraction']:g}" for r in rows if r["effect"] == "hurts"]
    tstr = next(r for r in result["rows"] if r["name"] == "tstr")
    said = (f"Generated clips help the classifier ({', '.join(helps)})" if helps
            else "No mix of generated clips helps the classifier beyond its intervals")
    if hurts:
        said += f"; they hurt it ({', '.join(hurts)})"
    above = tstr["uar"]["low"] > result["chance"]
    said += (f"; trained on generated clips alone it reaches UAR {tstr['uar']['value']:.2f} "
             f"({'above' if above else 'not above'} chance, {result['chance']:.2f})")
    return said + "."


def classifier(train: Clips, p: UtilityParams = UtilityParams(), mel: MelParams = MelParams()):
    """The TRTR classifier on every training clip, as a function of audio: predict(audio [N, samples]) -> categories."""
    features, labels = train.features(), train.labels

    def predict(audio: np.ndarray) -> np.ndarray:
        return fit_predict(features, labels, statistics(log_mel(np.asarray(audio, np.float32), mel)), p, 0)

    return predict
