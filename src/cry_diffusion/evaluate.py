"""Evaluation of a set of clips against real held-out audio: FAD, features, diversity, memorization.

Every set -- generated at one step count, or a reference (real held-out clips,
Gaussian noise, tone sweeps) -- is scored by the same function against the same
real reference, so the real floor and the noise ceiling sit beside each number.

    from cry_diffusion import evaluate
    refs = evaluate.Reference.build(bundle, train_audio, heldout_audio, EvalParams())
    scores = evaluate.score(refs, bundle, generated_audio, labels=None)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from . import SAMPLE_RATE
from .embedding import classify, embed
from .features import FEATURES, clip_features, wasserstein
from .runtime import resolve_device


@dataclass(frozen=True)
class EvalParams:
    bootstrap: int = 200  # resamples for the FAD confidence interval
    confidence: float = 0.95
    ndb_bins: int = 10  # k-means clusters of real embeddings (fewer for small sets: at most train/5)
    ndb_alpha: float = 0.05  # significance of a bin's proportion test
    copy_percentile: float = 1.0  # near copy: closer to a training clip than this percentile of real-to-real
    seed: int = 0  # halves, bootstrap, k-means and the baselines

    @classmethod
    def from_dict(cls, d: dict) -> "EvalParams":
        return cls(**{k: d[k] for k in asdict(cls()) if k in d})


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two embedding sets [N, dim]."""
    if len(a) > len(b):
        a, b = b, a  # symmetric; the trace term below is cheapest through the smaller set
    xa = (a - a.mean(0)) / np.sqrt(max(len(a) - 1, 1))  # cov_a = xa.T @ xa
    xb = (b - b.mean(0)) / np.sqrt(max(len(b) - 1, 1))
    # trace(sqrtm(cov_a cov_b)) = sum of sqrt eigenvalues of xa cov_b xa.T: [n_a, n_a], symmetric, >= 0.
    # Exact, and far cheaper than sqrtm of [dim, dim] two hundred times for the bootstrap.
    if len(a) <= a.shape[1]:
        eig = np.linalg.eigvalsh((xa @ xb.T) @ (xb @ xa.T))
    else:  # many clips, few dimensions: the same eigenvalues from sqrt(cov_a) cov_b sqrt(cov_a), [dim, dim]
        w, v = np.linalg.eigh(xa.T @ xa)
        root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        eig = np.linalg.eigvalsh(root_a @ (xb.T @ xb) @ root_a)
    trace_root = np.sqrt(np.clip(eig, 0, None)).sum()
    mean_term = ((a.mean(0) - b.mean(0)) ** 2).sum()
    return float(max(0.0, mean_term + (xa**2).sum() + (xb**2).sum() - 2 * trace_root))


def interval(boots, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap values (None and NaN dropped); NaNs when none is left."""
    values = [v for v in boots if v is not None and np.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def fad(test: np.ndarray, ref: np.ndarray, p: EvalParams) -> dict:
    """Fréchet distance with a bootstrap interval (both sets resampled)."""
    rng = np.random.default_rng(p.seed)
    boots = [frechet(test[rng.integers(0, len(test), len(test))], ref[rng.integers(0, len(ref), len(ref))])
             for _ in range(p.bootstrap)]  # fmt: skip
    low, high = interval(boots, p.confidence)
    return {"value": frechet(test, ref), "low": low, "high": high}


def pairwise_mean(x: np.ndarray) -> float | None:
    """Mean Euclidean distance between distinct members: a set's spread (collapse -> 0)."""
    if len(x) < 2:
        return None
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return float(d[np.triu_indices(len(x), 1)].mean())


def nearest(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a: (distance to, index of) its nearest row of b."""
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    return d.min(1), d.argmin(1)


def ndb(centres: np.ndarray, real_share: np.ndarray, n_real: int, test: np.ndarray, alpha: float) -> dict:
    """Number of statistically different bins (Richardson & Weiss 2018): two-proportion z-test per k-means bin."""
    from scipy.stats import norm

    bins = nearest(test, centres)[1]
    share = np.bincount(bins, minlength=len(centres)) / len(test)
    pooled = (real_share * n_real + share * len(test)) / (n_real + len(test))
    se = np.sqrt(np.maximum(pooled * (1 - pooled) * (1 / n_real + 1 / len(test)), 1e-12))
    different = 2 * norm.sf(np.abs(share - real_share) / se) < alpha
    return {"ndb": int(different.sum()), "bins": len(centres), "ndb_fraction": float(different.mean())}


@dataclass
class Reference:
    """The real side of every comparison, built once per dataset."""

    train: np.ndarray  # embeddings of the training split (memorization, k-means bins)
    ref: np.ndarray  # held-out half B: what every set is compared with
    ref_features: dict  # features of half B
    floor_audio: np.ndarray  # held-out half A: the real-vs-real floor, scored like any set
    copy_threshold: float  # distance to the training split below which a clip is a near copy
    real_nearest: np.ndarray  # held-out -> train nearest distances
    centres: np.ndarray
    real_share: np.ndarray
    params: EvalParams
    device: str  # where the embedding network runs (cry_diffusion.runtime.resolve_device)

    @classmethod
    def build(cls, bundle: dict, train_audio: np.ndarray, heldout_audio: np.ndarray, p: EvalParams,
              device="auto") -> "Reference":  # fmt: skip
        from sklearn.cluster import KMeans

        device = str(resolve_device(device))
        train = embed(bundle, train_audio, device)
        if len(heldout_audio) < 2:  # too little held out to halve: the halves come from the training split (said in the report)
            heldout_audio = train_audio
        order = np.random.default_rng(p.seed).permutation(len(heldout_audio))
        half_a, half_b = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2 :])
        held = embed(bundle, heldout_audio, device)
        real_nearest = nearest(held, train)[0]
        k = max(1, min(p.ndb_bins, len(train) // 5))
        km = KMeans(k, n_init=4, random_state=p.seed).fit(train)
        return cls(train, held[half_b], clip_features(heldout_audio[half_b]), heldout_audio[half_a],
                   float(np.percentile(real_nearest, p.copy_percentile)), real_nearest, km.cluster_centers_,
                   np.bincount(km.labels_, minlength=k) / len(train), p, device)  # fmt: skip


def score(r: Reference, bundle: dict, audio: np.ndarray, labels: list[str] | None = None) -> dict:
    """Every metric of one set of clips [N, samples] against the reference; labels: the intended categories."""
    e = embed(bundle, audio, r.device)
    feats = clip_features(audio)
    dist, idx = nearest(e, r.train)
    predicted = classify(bundle, audio, r.device) if labels else None
    return {
        "n": len(audio),
        "device": r.device,
        "fad": fad(e, r.ref, r.params),
        "wasserstein": {name: wasserstein(feats[name], r.ref_features[name]) for name in FEATURES},
        "features": feats,
        "reference_features": r.ref_features,
        "ndb": ndb(r.centres, r.real_share, len(r.train), e, r.params.ndb_alpha),
        "pairwise": pairwise_mean(e),
        "pairwise_real": pairwise_mean(r.ref),
        "nearest_train": {"distance": dist.tolist(), "index": idx.tolist(), "threshold": r.copy_threshold,
                          "real_median": float(np.median(r.real_nearest)), "median": float(np.median(dist)),
                          "near_copies": int((dist < r.copy_threshold).sum())},  # fmt: skip
        "accuracy": float(np.mean(np.array(predicted) == np.array(labels))) if predicted else None,
        # kept so that sets can be compared with each other afterwards (cry_diffusion.tradeoff)
        "embeddings": e.tolist(),
        "reference_embeddings": r.ref.tolist(),
    }


def noise_like(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Gaussian noise as long as a real clip and as loud as the real clips on average."""
    rms = float(np.sqrt(np.mean(np.square(real, dtype=np.float64))))
    x = np.random.default_rng(seed).standard_normal((n, real.shape[1])) * rms
    return np.clip(x, -1, 1).astype(np.float32)


def tone_sweeps(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A second kind of sound: linear sine sweeps between random pitches in 200-2000 Hz, at the real RMS."""
    rng = np.random.default_rng(seed)
    rms = float(np.sqrt(np.mean(np.square(real, dtype=np.float64))))
    t = np.arange(real.shape[1]) / SAMPLE_RATE
    start, end = rng.uniform(200, 2000, (2, n, 1))
    phase = 2 * np.pi * (start * t + (end - start) * t**2 / (2 * max(t[-1], 1e-9)))
    return (np.sqrt(2) * rms * np.sin(phase)).astype(np.float32)
