"""Evaluation of a set of clips against real held-out audio: FAD, features, diversity, memorization.

Every set -- generated at one step count, or a reference (real held-out clips,
Gaussian noise, tone sweeps) -- is scored by the same function against the same
real reference, so the real floor and the noise ceiling sit beside each number.

    from cry_diffusion import evaluate
    ref = evaluate.Reference.build(bundle, train_audio, heldout_audio, EvalParams(), n_floor=16)
    ref.save("reference.npz")             # the pipeline's `reference` rule, once per dataset
    ref = evaluate.Reference.load("reference.npz")
    scores = evaluate.score(ref, bundle, generated_audio, labels=None)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import numpy as np

from . import SAMPLE_RATE, pretrained
from .atomic import atomic_path
from .embedding import bundle_mels, classify, embed, probabilities
from .features import FEATURES, clip_features, level_db, wasserstein
from .mel import MelParams
from .params import Params
from .runtime import resolve_device


@dataclass(frozen=True)
class EvalParams(Params):
    bootstrap: int = 200  # resamples for the FAD confidence interval
    confidence: float = 0.95
    ndb_bins: int = 10  # k-means clusters of real embeddings (fewer for small sets: at most train/5)
    ndb_alpha: float = 0.05  # significance of a bin's proportion test
    copy_percentile: float = 1.0  # near copy: closer to a training clip than this percentile of real-to-real
    seed: int = 0  # halves, bootstrap, k-means and the baselines


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


def centred_interval(point: float | None, boots, confidence: float) -> tuple[float, float]:
    """The percentile interval moved so that the replicates' mean sits on the point value.

    A resample repeats some clips and leaves out about a third, which biases a replicate of a
    k-NN or W1 measure one way (PRDC low: fewer distinct balls; W1 high: a coarser sample);
    the bias says nothing about the point value's own, so it is taken out of the interval.
    """
    values = np.array([v for v in boots if v is not None and np.isfinite(v)], float)
    if point is None or not values.size:
        return float("nan"), float("nan")
    low, high = interval(values, confidence)
    shift = point - float(values.mean())
    return low + shift, high + shift


def jackknife_interval(point, leave_one_out: list, confidence: float, bias_correct: bool = False) -> tuple:
    """Student-t interval from delete-one jackknife values, one array per sample ([n_g] or [n_g, measures]).

    Every replicate leaves one clip out, so none holds a duplicate: a k-NN ball or a W1 is
    recomputed on distinct clips, and the spread of the replicates carries both samples'
    variation (the variance adds over samples). bias_correct: centre on the jackknife's
    bias-corrected value (for a target that is the population's, not the expectation at this n).
    Degrees of freedom: the smaller sample's count less one.
    """
    from scipy.stats import t

    point = np.asarray(point, float)
    var, centre = np.zeros_like(point), point.copy()
    for values in leave_one_out:
        values = np.asarray(values, float)
        n = len(values)
        var = var + (n - 1) / n * ((values - values.mean(0)) ** 2).sum(0)
        if bias_correct:
            centre = centre - (n - 1) * (values.mean(0) - point)
    q = t.ppf(0.5 + confidence / 2, max(1, min(len(v) for v in leave_one_out) - 1))
    return centre - q * np.sqrt(var), centre + q * np.sqrt(var)


def wilson(k, n: int, confidence: float) -> tuple:
    """Wilson score interval of a proportion k/n (arrays work): the binomial uncertainty of n clips' shares."""
    from scipy.stats import norm

    z = norm.ppf(0.5 + confidence / 2)
    share = np.asarray(k, float) / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(np.clip(share * (1 - share), 0, None) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


# FAD's interval covers the true distance only once each set has this many clips per embedding
# dimension (Gaussian trials, 40-200 clips, 8-32 dimensions: coverage 92-100% at 3x and above,
# 0% at 24 clips in 32 dimensions). Below it the report marks FAD and points to KID.
FAD_CLIPS_PER_DIMENSION = 3


FD_FRACTIONS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # subset sizes, as shares of each set, for FAD's extrapolation
FD_DRAWS = 8  # random subsets per share below 1


def fd_infinity(test: np.ndarray, ref: np.ndarray, seed: int = 0) -> float:
    """The Fréchet distance extrapolated to infinitely many clips (FID-infinity, Chong & Forsyth 2020).

    The plug-in FD's bias falls as 1/n for each set, so FD on subsets of a share f of both
    sets is about FD_inf + c / f: fitted over FD_FRACTIONS (subsets without replacement, so
    no duplicate rows) and read at 1/f = 0. Measured on Gaussian sets of known distance:
    it leaves about a tenth of the bias that the bootstrap correction left at 24-48 clips
    (docs/evaluation.md, benchmarks/fooling.py).
    """
    rng = np.random.default_rng(seed)
    x, y = [], []
    for f in FD_FRACTIONS:
        na, nb = max(2, round(f * len(test))), max(2, round(f * len(ref)))
        for _ in range(1 if f == 1.0 else FD_DRAWS):
            x.append(len(test) / na)  # 1/f, as the sizes were rounded
            y.append(frechet(test[rng.choice(len(test), na, replace=False)], ref[rng.choice(len(ref), nb, replace=False)]))
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept)


def fad(test: np.ndarray, ref: np.ndarray, p: EvalParams) -> dict:
    """Fréchet distance: FID-infinity's extrapolated value with a basic bootstrap interval about it (clipped at 0).

    The plug-in distance is biased upward at small n (`plugin` keeps it), and resampling
    with replacement adds duplicate rows that bias every replicate further, so a percentile
    interval lies wholly above the estimate (0 of 40 trials covered it). The basic bootstrap
    reflects the replicates' spread about their mean onto the value: [v - (q_high - mean),
    v + (mean - q_low)]. "reliable" says whether n is large enough for the interval to cover
    (FAD_CLIPS_PER_DIMENSION); every table and figure marks a FAD where it is not.
    """
    rng = np.random.default_rng(p.seed)
    plugin = frechet(test, ref)
    boots = [frechet(test[rng.integers(0, len(test), len(test))], ref[rng.integers(0, len(ref), len(ref))])
             for _ in range(p.bootstrap)]  # fmt: skip
    low, high = interval(boots, p.confidence)
    value = fd_infinity(test, ref, p.seed) if min(len(test), len(ref)) >= 4 else 2 * plugin - float(np.mean(boots))
    centre = float(np.mean(boots)) if boots else plugin
    reliable = min(len(test), len(ref)) >= FAD_CLIPS_PER_DIMENSION * test.shape[1]
    return {"value": max(0.0, value), "low": max(0.0, value + centre - high), "high": max(0.0, value + centre - low),
            "plugin": plugin, "reliable": bool(reliable), "n": len(test), "n_ref": len(ref)}


def kid_replicates(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """Unbiased MMD² [B] of B weightings of the two sets' clips (wx [B, n], wy [B, m]: how often each clip was drawn).

    The pairs of a clip with itself, and with its own copies in a resample, are left out, as
    the estimate leaves out the diagonal; NaN where a set has fewer than two distinct clips.
    """
    def within(k, w):
        off = k - np.diag(np.diag(k))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.einsum("bi,ij,bj->b", w, off, w) / (w.sum(1) ** 2 - (w**2).sum(1))

    wx, wy = np.asarray(wx, float), np.asarray(wy, float)
    return within(kxx, wx) + within(kyy, wy) - 2 * np.einsum("bi,ij,bj->b", wx, kxy, wy) / (wx.sum(1) * wy.sum(1))


def counts(draws: np.ndarray, n: int) -> np.ndarray:
    """Index draws [B, k] (a bootstrap's) as how often each of n clips was drawn: [B, n]."""
    rows = [np.bincount(row, minlength=n) for row in draws]
    return np.stack(rows) if rows else np.zeros((0, n), int)


def kernels(test: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KID's kernel matrices (test-test, ref-ref, test-ref): k(x, y) = (x.y / dim + 1)^3 on scaled embeddings.

    Both sets are scaled so that the reference's mean squared norm is dim, which puts x.y / dim
    at order 1, where the cubic term matters. Unscaled, unit-norm 256-d GE2E vectors gave
    x.y / 256 of 0.001-0.004: a nearly linear kernel that sees the mean and not the covariance.
    """
    dim = test.shape[1]
    scale = np.sqrt(dim / max(float(np.mean((ref**2).sum(1))), 1e-12))
    a, b = test * scale, ref * scale
    return tuple((x @ y.T / dim + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))


def kid(test: np.ndarray, ref: np.ndarray, p: EvalParams) -> dict:
    """Kernel distance (KID, Bińkowski et al. 2018): unbiased MMD² with a cubic polynomial kernel (`kernels`), bootstrap interval.

    Unbiased at any n, so values at different n compare and small sets are fine. Each
    bootstrap replicate leaves out the pairs of a clip with its own duplicates, as the
    estimate leaves out the diagonal, so replicates stay unbiased and the percentile
    interval covers (Gaussian trials: 93-100% at 12-60 clips in 32 dimensions).
    """
    if min(len(test), len(ref)) < 2:
        return {"value": None, "low": None, "high": None, "n": len(test), "n_ref": len(ref)}
    kxx, kyy, kxy = kernels(test, ref)
    rng = np.random.default_rng(p.seed)
    draws = [(rng.integers(0, len(test), len(test)), rng.integers(0, len(ref), len(ref))) for _ in range(p.bootstrap)]
    boots = kid_replicates(kxx, kyy, kxy, counts([a for a, _ in draws], len(test)), counts([b for _, b in draws], len(ref)))
    low, high = interval(boots, p.confidence)  # a draw of one distinct clip has no pair to average: NaN, dropped
    value = kid_replicates(kxx, kyy, kxy, np.ones((1, len(test))), np.ones((1, len(ref))))[0]
    return {"value": float(value), "low": low, "high": high, "n": len(test), "n_ref": len(ref)}


PRDC_K = 5  # neighbours that set each clip's ball (Naeem et al. 2020 use 5)
PRDC = ("precision", "recall", "density", "coverage")


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between every row of a and every row of b: [Na, Nb], no [Na, Nb, dim] temporary."""
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(sq, 0, None))


def radii(d: np.ndarray, k: int) -> np.ndarray:
    """Each clip's k-nearest-neighbour radius within its own set, from that set's distances [N, N] (itself left out)."""
    d = d.copy()
    np.fill_diagonal(d, np.inf)
    return np.sort(d, 1)[:, k - 1]


def radii_leaving_out(d: np.ndarray, k: int) -> np.ndarray:
    """[N, N]: row j holds every clip's k-NN radius in the set with clip j left out (radii's, N times over).

    Leaving j out moves a clip's radius only where j was among its k nearest: to the (k+1)-th.
    With no (k+1)-th (N = k + 1) the ball stays as it was.
    """
    d = d.copy()
    np.fill_diagonal(d, np.inf)
    order, rows = np.argsort(d, 1), np.arange(len(d))
    kth = d[rows, order[:, k - 1]]
    after = d[rows, order[:, k]] if k <= len(d) - 2 else kth
    near = np.zeros(d.shape, bool)  # near[i, j]: j is among i's k nearest
    near[rows[:, None], order[:, :k]] = True
    return np.where(near.T, after[None, :], kth[None, :])


def prdc_replicates(d_tr: np.ndarray, r_test: np.ndarray, r_ref: np.ndarray, w_test: np.ndarray, w_ref: np.ndarray,
                    k: int, chunk: int = 64) -> np.ndarray:  # fmt: skip
    """Precision, recall, density and coverage [J, 4] of J weightings of the two sets' clips.

    w_test [J, n], w_ref [J, m]: how often each clip counts in each replicate (a bootstrap's
    counts, or a jackknife's 0 and 1); r_test, r_ref ([J, n] and [J, m], or one [n] and [m]
    for every replicate): each clip's k-NN ball in that replicate. A clip of weight 0 is out:
    its ball holds nothing and no ball holds it.
    """
    out = []
    for s in range(0, len(w_test), chunk):
        wt, wr = np.asarray(w_test[s : s + chunk], float), np.asarray(w_ref[s : s + chunk], float)
        rt = np.broadcast_to(r_test if np.ndim(r_test) == 1 else r_test[s : s + chunk], wt.shape)
        rr = np.broadcast_to(r_ref if np.ndim(r_ref) == 1 else r_ref[s : s + chunk], wr.shape)
        on_t, on_r = wt > 0, wr > 0
        in_ref = (d_tr[None] <= rr[:, None, :]) & on_r[:, None, :]  # test clip j inside reference ball i
        in_test = (d_tr[None] <= rt[:, :, None]) & on_t[:, :, None]  # reference clip i inside test ball j
        nt, nr = wt.sum(1), wr.sum(1)
        nearest = np.where(on_t[:, :, None], d_tr[None], np.inf).min(1)
        out.append(np.stack([(wt * in_ref.any(2)).sum(1) / nt,  # test clips inside the real manifold: fidelity
                             (wr * in_test.any(1)).sum(1) / nr,  # real clips inside the test manifold: diversity
                             np.einsum("jn,jnm,jm->j", wt, in_ref.astype(float), wr) / (k * nt),
                             (wr * (nearest <= rr)).sum(1) / nr], 1))  # real balls with a test clip in them
    return np.concatenate(out)


def prdc(test: np.ndarray, ref: np.ndarray, p: EvalParams, k: int = PRDC_K) -> dict:
    """Fidelity and diversity apart (Kynkäänniemi et al. 2019; Naeem et al. 2020), each with a jackknife interval.

    FAD and KID fold both into one number, so a set of a few real clips repeated can score
    as well as real audio; recall and coverage fall for it (a repeated clip's ball has radius
    0). k is capped below each set's size. The values depend on n: compare sets at one n,
    beside the real floor.

    The interval is the delete-one jackknife's (Student t), with each left-out clip's balls
    recomputed: a bootstrap resample holds about 63% distinct clips, so its replicates ran
    0.07-0.10 low and covered the expected value 71-79% of the time at 64 clips. Precision,
    recall and coverage are shares of n (or the reference's m) clips, and where every clip is
    inside no replicate moves, so their intervals reach at least as far as the share's Wilson
    interval: Gaussian trials cover the expected value 94-100% at 8 and 32 clips
    (tests/test_evaluate.py).
    """
    k = min(k, len(test) - 1, len(ref) - 1)
    if k < 1:
        return {name: {"value": None, "low": None, "high": None} for name in PRDC} | {"k": k}
    n, m = len(test), len(ref)
    d_tt, d_rr, d_tr = distances(test, test), distances(ref, ref), distances(test, ref)
    r_test, r_ref = radii(d_tt, k), radii(d_rr, k)
    point = prdc_replicates(d_tr, r_test, r_ref, np.ones((1, n)), np.ones((1, m)), k)[0]
    left_t = prdc_replicates(d_tr, radii_leaving_out(d_tt, k), r_ref, 1 - np.eye(n), np.ones((n, m)), k)
    left_r = prdc_replicates(d_tr, r_test, radii_leaving_out(d_rr, k), np.ones((m, n)), 1 - np.eye(m), k)
    low, high = jackknife_interval(point, [left_t, left_r], p.confidence)
    out = {}
    for i, name in enumerate(PRDC):
        lo, hi = float(low[i]), float(high[i])
        if name != "density":
            of = n if name == "precision" else m
            w_low, w_high = wilson(round(point[i] * of), of, p.confidence)
            lo, hi = min(lo, float(w_low)), min(max(hi, float(w_high)), 1.0)
        out[name] = {"value": float(point[i]), "low": max(lo, 0.0), "high": hi}
    return out | {"k": k}


def distinct_fraction(x: np.ndarray, ref: np.ndarray, threshold: float, p: EvalParams) -> dict:
    """The share of a set's clips whose nearest other clip of the set is farther than `threshold`.

    threshold: the real floor's near-duplicate threshold in this embedding, the distance at
    which a clip is a near copy of a training clip (Reference.copy_threshold: the
    copy_percentile of held-out clips' distances to their nearest training clip). A within-set
    measure: a collapse shows at any n, however few copies each mode has (a k-NN ball needs
    more than k copies of a clip before its radius falls to 0, so with fewer copies two
    far-apart modes cover the whole reference). `real` is the same share in real sets of the
    same size (subsets of the reference `ref`, drawn without replacement): its mean and
    2.5th-97.5th percentiles. `below_real`: the set's share is below that range, where real
    sets fall 2.5% of the time. The set's own interval is the share's Wilson interval. (score
    adds `floor`: the real floor's own share, computed so at the floor's n, the run's.)
    """
    n = len(x)
    if n < 2 or len(ref) < 2:
        return {"value": None, "low": None, "high": None, "n": n, "below_real": None}
    d = distances(x, x)
    np.fill_diagonal(d, np.inf)
    nearest = d.min(1)
    count = int((nearest > threshold).sum())
    low, high = wilson(count, n, p.confidence)
    size, draws = min(n, len(ref)), max(p.bootstrap, 1)
    picks = np.argsort(np.random.default_rng(p.seed).random((draws, len(ref))), 1)[:, :size]
    d_ref = distances(ref, ref)
    np.fill_diagonal(d_ref, np.inf)
    real = (d_ref[picks[:, :, None], picks[:, None, :]].min(-1) > threshold).mean(1)
    real_low, real_high = interval(real, p.confidence)
    return {"value": count / n, "low": float(low), "high": float(high), "n": n, "threshold": threshold,
            "nearest": nearest.tolist(), "below_real": bool(count / n < real_low),
            "real": {"value": float(real.mean()), "low": real_low, "high": real_high, "n": size}}  # fmt: skip


def _class_scores_from(probs: np.ndarray, real_probs: np.ndarray) -> dict:
    eps = 1e-12
    logp = np.log(probs + eps)
    marginal = probs.mean(0)
    entropy = -(probs * logp).sum(1)
    real_marginal = real_probs.mean(0)
    # KL(p_i || p_j) for every pair: sum_c p_i log p_i - p_i log p_j
    pairwise = (probs * logp).sum(1)[:, None] - probs @ logp.T
    off = ~np.eye(len(probs), dtype=bool)
    k = probs.shape[1]
    hist = (np.bincount(probs.argmax(1), minlength=k) + 0.5) / (len(probs) + 0.5 * k)  # add-half: no empty bin
    real_hist = (np.bincount(real_probs.argmax(1), minlength=k) + 0.5) / (len(real_probs) + 0.5 * k)
    return {
        "inception_score": float(np.exp(np.mean((probs * (logp - np.log(marginal + eps))).sum(1)))),
        "modified_inception_score": float(np.exp(pairwise[off].mean())) if off.any() else None,
        "am_score": float((real_marginal * (np.log(real_marginal + eps) - np.log(marginal + eps))).sum() + entropy.mean()),
        "histogram_kl": float((real_hist * np.log(real_hist / hist)).sum()),
    }


CLASS_SCORES = {"inception_score": "IS", "modified_inception_score": "mIS", "am_score": "AM",
                "histogram_kl": "category histogram KL"}  # fmt: skip


# The classifier's scores whose jackknife runs on the log: IS and mIS are exponentials of a mean KL
LOG_SCALE = ("inception_score", "modified_inception_score")


def class_scores(probs: np.ndarray, real_probs: np.ndarray, classes: list[str], p: EvalParams) -> dict:
    """The classifier's own scores of a set, as DiffWave's and SaShiMi's SC09 evaluations report them, with intervals.

    probs: the classifier's category probabilities of each clip [N, K]; real_probs: of the real
    reference clips. IS (higher: confident and varied), modified IS (Gurumurthy et al. 2017:
    varied within categories too), AM score (Zhou et al. 2018: lower; its marginal is the real
    clips'), and the KL from the real clips' predicted-category histogram to this set's (lower):
    a collapse onto a few categories shows here even where FAD can't see it.

    The intervals aim at the population's score, not this n's: each score is biased at a few
    clips (the marginal is fitted to the same clips; a histogram KL is never below 0), so the
    interval is the delete-one jackknife's about its bias-corrected value (IS and mIS on the
    log scale), KL and AM clipped at 0. At 8 clips the percentile bootstrap's covered IS 48%
    and a true KL of 0 never; this covers 90-96% (tests/test_evaluate.py).
    """
    point = _class_scores_from(probs, real_probs)
    names = list(CLASS_SCORES)

    def values(scores: dict) -> list:
        return [np.nan if scores[k] is None else np.log(scores[k]) if k in LOG_SCALE else scores[k] for k in names]

    left = [np.array([values(_class_scores_from(np.delete(probs, i, 0), real_probs)) for i in range(len(probs))]),
            np.array([values(_class_scores_from(probs, np.delete(real_probs, i, 0))) for i in range(len(real_probs))])]
    low, high = jackknife_interval(values(point), left, p.confidence, bias_correct=True)
    out = {}
    for i, name in enumerate(names):
        lo, hi = (np.exp(low[i]), np.exp(high[i])) if name in LOG_SCALE else (max(low[i], 0.0), max(high[i], 0.0))
        out[name] = {"value": point[name], "low": None if np.isnan(lo) else float(lo), "high": None if np.isnan(hi) else float(hi)}
    share = np.bincount(probs.argmax(1), minlength=len(classes)) / len(probs)
    real_share = np.bincount(real_probs.argmax(1), minlength=len(classes)) / len(real_probs)
    return out | {"histogram": dict(zip(classes, share.tolist())), "real_histogram": dict(zip(classes, real_share.tolist()))}


def pairwise_mean(x: np.ndarray) -> float | None:
    """Mean Euclidean distance between distinct members: a set's spread (collapse -> 0)."""
    if len(x) < 2:
        return None
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return float(d[np.triu_indices(len(x), 1)].mean())


def nearest(a: np.ndarray, b: np.ndarray, leave_one_out=False) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a: (distance to, index of) its nearest row of b.

    leave_one_out: a and b are the same set, and row i may not pick itself (its distance
    would be 0, and every threshold drawn from these distances would be 0 too); given a
    group per row (the recording each segment came from), no row may pick a row of its own
    group: neighbouring segments of one recording would set the copy threshold otherwise.
    """
    d = distances(a, b)
    if leave_one_out is True:
        np.fill_diagonal(d, np.inf)
    elif leave_one_out is not False:  # one group per row (its recording): no row may pick its own group
        groups = np.asarray(leave_one_out)
        d[groups[:, None] == groups[None, :]] = np.inf
    return d.min(1), d.argmin(1)


MEL_POOL = 4  # log-mel frames averaged into one block for the copy check (40 ms at a 10 ms hop)
MEL_RANGE_DB = 25  # each clip's log-mel clamped to this far below its loudest cell (why: mel_blocks)


def mel_blocks(audio: np.ndarray | None, bundle: dict, mels: np.ndarray | None = None) -> np.ndarray:
    """Clips -> log-mels in a space the classifier never saw, for the copy check: [N, n_mels, blocks] float32.

    Each clip's log-mel is clamped to MEL_RANGE_DB below its own peak (so the floor moves
    with the clip's level), then averaged over MEL_POOL frames: a copy with noise
    added at 30 dB SNR otherwise differs most in its quiet gaps, where the log of
    near-silence swings widely (measured on synthetic cries: near copies sat above the
    threshold with no clamp, and at a quarter of it with 25 dB).
    """
    mels = bundle_mels(bundle, audio, mels)
    mels = np.maximum(mels, mels.max(axis=(1, 2), keepdims=True) - MEL_RANGE_DB * np.log(10) / 20)  # magnitudes: dB/20
    blocks = max(1, mels.shape[-1] // MEL_POOL)
    return mels[..., : blocks * MEL_POOL].reshape(*mels.shape[:2], blocks, -1).mean(-1).astype(np.float32)


def at_level(mels: np.ndarray, gain_db: np.ndarray, bundle: dict) -> np.ndarray:
    """Log-mels of the same clips played gain_db [N] louder: a shift of the log magnitude, floored as log_mel floors it."""
    floor = np.log(MelParams.from_dict(bundle["mel_params"]).floor)
    return np.maximum(mels + (np.asarray(gain_db, np.float32) * np.log(10) / 20)[:, None, None], floor).astype(np.float32)


def nearest_window(query: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query clip [n_mels, b]: the RMS log-mel difference to, and index of, the closest same-length window
    of any reference clip [n_mels, B] (every offset). A query longer than the references is cut to their length.

    Training draws random crops, so a memorised clip can be any stretch of a training
    segment: whole-clip distances would miss it. RMS per cell keeps lengths comparable. The
    difference's mean over the cells is taken out (a gain is a constant shift of a log-mel),
    so a copy played louder or quieter is as close as the copy itself: with it left in, exact
    copies at -3.5 to -12 dB were missed every time.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    b = min(query.shape[-1], ref.shape[-1])
    q = query[..., :b].astype(np.float64)
    windows = sliding_window_view(ref, b, axis=-1)  # [N, n_mels, offsets, b], a view
    best, index = np.full(len(q), np.inf), np.zeros(len(q), int)
    for i in range(len(ref)):  # one reference clip at a time: memory stays at one clip's windows
        w = windows[i].astype(np.float64)
        dot = np.einsum("qmb,mob->qo", q, w)
        sq = (q**2).sum((1, 2))[:, None] + (w**2).sum((0, 2))[None, :] - 2 * dot
        offset = (q.sum((1, 2))[:, None] - w.sum((0, 2))[None, :]) / q[0].size  # the mean difference: a gain
        d = np.sqrt(np.clip(sq / q[0].size - offset**2, 0, None).min(1))
        closer = d < best
        best[closer], index[closer] = d[closer], i
    return best, index


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
    """The real side of every comparison, built once per dataset.

    "Level-normalised" (_level arrays): each clip brought to target_db, the real reference
    clips' median level (cry_diffusion.features.level_db), before it is embedded. Distances
    between level-normalised sets keep loudness apart from quality (the RMS level feature's
    W1 measures loudness), and the copy search runs there so that a copy at another level
    is still found.
    """

    train: np.ndarray  # embeddings of the training split (k-means bins)
    train_level: np.ndarray  # the same, level-normalised: where the copy search looks
    ref: np.ndarray  # held-out half B: what every set is compared with
    ref_level: np.ndarray  # half B, level-normalised
    ref_features: dict  # features of half B
    floor_audio: np.ndarray  # held-out half A: the real-vs-real floor, scored like any set
    target_db: float  # the level every clip is brought to for the level-normalised distances
    copy_threshold: float  # level-normalised distance to the training split at or below which a clip is a near copy
    real_nearest: np.ndarray  # held-out -> train nearest distances (level-normalised)
    train_mel: np.ndarray  # the training split in the log-mel copy-check space (mel_blocks)
    held_mel: np.ndarray  # the held-out clips (or the training split, when too few) in that space
    held_groups: np.ndarray  # held_mel's recordings, when it is the training split (leave-one-recording-out); else [0]
    mel_copy_threshold: float | None  # copy_threshold's rule in that space, for clips of mel_copy_blocks blocks
    mel_copy_blocks: int | None
    centres: np.ndarray
    real_share: np.ndarray
    ref_probs: np.ndarray  # the classifier's category probabilities of half B; [0, 0] without a classifier
    params: EvalParams
    ref_pretrained: np.ndarray  # half B in the pretrained embedding (cry_diffusion.pretrained); [0, 0] without it
    ref_pretrained_level: np.ndarray  # the same, level-normalised
    ref_labels: list | None  # half B's categories, for per-category distances of conditional models
    device: str  # where the embedding network runs (cry_diffusion.runtime.resolve_device)
    halves_from_train: bool  # fewer than two clips held out: the halves and thresholds come from the training split
    pretrained_copy_threshold: float | None = None  # copy_threshold's rule in the pretrained embedding (level-normalised)
    floor_distinct: dict | None = None  # the real floor's distinct fraction in each embedding (its n: the floor's)

    @classmethod
    def build(cls, bundle: dict, train_audio, heldout_audio, p: EvalParams, device="auto", n_floor: int | None = None,
              train_mels=None, heldout_mels=None, train_labels=None, heldout_labels=None,
              clip_samples: int | None = None, train_recordings=None) -> "Reference":  # fmt: skip
        """The reference for one dataset from its training and held-out clips [N, samples].

        The clips may be arrays or cry_diffusion.segment.Rows over a memory-mapped
        segments.npy, and their log-mels (train_mels, heldout_mels) may come precomputed
        (mels.npy): both are read CHUNK clips at a time. n_floor: keep that many real-floor
        clips, or stop with both counts when half the held-out clips are fewer. train_labels,
        heldout_labels: the clips' categories, for per-category scores of conditional models.
        clip_samples: the length of the clips to be scored, so that the log-mel copy threshold
        (a search over every window of the training split) is worked out here, once.
        train_recordings: the recording each training clip came from; with too few clips held
        out, a clip's copy-threshold search leaves out its whole recording, not only itself.
        """
        from sklearn.cluster import KMeans

        device = str(resolve_device(device))
        from_train = len(heldout_audio) < 2  # too little held out to halve (said in the report)
        if from_train:
            heldout_audio, heldout_mels, heldout_labels = train_audio, train_mels, train_labels
        order = np.random.default_rng(p.seed).permutation(len(heldout_audio))
        half_a, half_b = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2 :])
        floor = half_a if n_floor is None else same_n(half_a, n_floor, "the real floor (half the held-out clips)")
        ref_features, ref_levels = {}, []
        for rows in np.array_split(half_b, max(1, -(-len(half_b) // CHUNK))):
            clips = np.asarray(heldout_audio[rows], np.float32)
            ref_levels.extend(level_db(clips))
            for name, values in clip_features(clips).items():
                ref_features.setdefault(name, []).extend(values)
        target = float(np.median(ref_levels))
        train, train_level, train_mel = _embed_in_chunks(bundle, train_audio, train_mels, device, target)
        if from_train:
            held, held_level, held_mel = train, train_level, train_mel
        else:
            held, held_level, held_mel = _embed_in_chunks(bundle, heldout_audio, heldout_mels, device, target)
        ref_pretrained, ref_pretrained_level = _pretrained_in_chunks(heldout_audio, half_b, device, target)
        # from the training split, each clip is left out of its own search (else it finds itself at distance 0),
        # and so is the rest of its recording: a neighbouring segment of the same cry is no measure of a copy
        groups = np.arange(len(train)) if train_recordings is None else np.unique(np.asarray(train_recordings),
                                                                                     return_inverse=True)[1]
        real_nearest = nearest(held_level, train_level, leave_one_out=groups if from_train else False)[0]
        pretrained_threshold = None
        if ref_pretrained.size:  # the same rule in the pretrained embedding, from half B: within-set near-duplicates
            d = distances(ref_pretrained_level, _pretrained_in_chunks(train_audio, np.arange(len(train)), device, target)[1])
            if from_train:
                d[groups[half_b][:, None] == groups[None, :]] = np.inf
            pretrained_threshold = float(np.percentile(d.min(1), p.copy_percentile))
        copy_threshold = float(np.percentile(real_nearest, p.copy_percentile))
        # the floor's own distinct fraction, which every set of its n is read beside
        floor_audio = np.asarray(heldout_audio[floor], np.float32)
        floor_level = embed(bundle, None, device, mels=at_level(bundle_mels(bundle, floor_audio), target - level_db(floor_audio),
                                                                 bundle))  # fmt: skip
        floor_distinct = {"in_domain": distinct_fraction(floor_level, held_level[half_b], copy_threshold, p)}
        if ref_pretrained.size:
            floor_distinct["pretrained"] = distinct_fraction(_pretrained_pair(floor_audio, target, device)[1],
                                                             ref_pretrained_level, pretrained_threshold, p)  # fmt: skip
        floor_distinct = {space: {k: d[k] for k in ("value", "low", "high", "n")} for space, d in floor_distinct.items()}
        blocks = None if clip_samples is None else mel_blocks(np.zeros((1, clip_samples), np.float32), bundle).shape[-1]
        held_groups = groups if from_train else np.zeros(0, int)
        mel_threshold = None if blocks is None else _mel_threshold(held_mel, train_mel, blocks, held_groups, p)
        k = max(1, min(p.ndb_bins, len(train) // 5))
        km = KMeans(k, n_init=4, random_state=p.seed).fit(train)
        probs = probabilities(bundle, held[half_b], device)
        return cls(train, train_level, held[half_b], held_level[half_b], ref_features,
                   floor_audio, target, copy_threshold, real_nearest, train_mel, held_mel, held_groups,
                   mel_threshold, blocks, km.cluster_centers_, np.bincount(km.labels_, minlength=k) / len(train),
                   np.zeros((0, 0)) if probs is None else probs, p, ref_pretrained, ref_pretrained_level,
                   None if heldout_labels is None else [str(heldout_labels[i]) for i in half_b], device, from_train,
                   pretrained_threshold, floor_distinct)  # fmt: skip

    _ARRAYS = ("train", "train_level", "ref", "ref_level", "floor_audio", "real_nearest", "train_mel", "held_mel",
               "held_groups", "centres", "real_share", "ref_probs", "ref_pretrained", "ref_pretrained_level")

    def save(self, path) -> None:
        """One .npz, no pickles: the arrays as they are, the rest as JSON. Written atomically."""
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._ARRAYS}
        meta["params"] = self.params.to_dict()
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **{k: getattr(self, k) for k in self._ARRAYS})

    @classmethod
    def load(cls, path, device=None) -> "Reference":
        """A saved reference; device: where its user runs the embedding ("auto" resolves here; None: as saved)."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in cls._ARRAYS}
        meta["params"] = EvalParams.from_dict(meta["params"])
        if device is not None:
            meta["device"] = str(resolve_device(device))
        return cls(**arrays, **meta)


CHUNK = 256  # clips per pass when building a reference: memory holds one chunk's log-mels, whatever the corpus
THRESHOLD_CLIPS = 128  # held-out clips the log-mel copy threshold is drawn from: each searches the whole training split


def _mel_threshold(held_mel: np.ndarray, train_mel: np.ndarray, blocks: int, groups: np.ndarray, p: EvalParams) -> float:
    """copy_percentile of held-out clips' distances (cut to `blocks`) to every window of the training split.

    groups: when held_mel is the training split itself, each row's recording: a row's search
    skips every clip of its own recording. Empty: held_mel is held out, nothing to skip.
    """
    rows = np.arange(len(held_mel))
    if len(rows) > THRESHOLD_CLIPS:
        rows = np.sort(np.random.default_rng(p.seed).choice(rows, THRESHOLD_CLIPS, replace=False))
    if len(groups):
        dist = []
        for i in rows:
            others = train_mel[groups != groups[i]]
            dist.append(nearest_window(held_mel[[i], :, :blocks], others)[0][0] if len(others) else np.inf)
        dist = np.array(dist)
    else:
        dist = nearest_window(held_mel[rows][..., :blocks], train_mel)[0]
    return float(np.percentile(dist, p.copy_percentile))


def _embed_in_chunks(bundle: dict, audio, mels, device: str, target_db: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings, level-normalised embeddings, copy-check log-mel blocks) of every clip, CHUNK clips at a time.

    Log-mels are computed (or read) once per clip; the level-normalised ones are the same shifted.
    """
    vectors, levelled, blocks = [], [], []
    for i in range(0, len(audio), CHUNK):
        clips = np.asarray(audio[i:i + CHUNK], np.float32)
        chunk_mels = bundle_mels(bundle, clips if mels is None else None, mels=None if mels is None else mels[i:i + CHUNK])
        vectors.append(embed(bundle, None, device, mels=chunk_mels))
        levelled.append(embed(bundle, None, device, mels=at_level(chunk_mels, target_db - level_db(clips), bundle)))
        blocks.append(mel_blocks(None, bundle, mels=chunk_mels))
    return np.concatenate(vectors), np.concatenate(levelled), np.concatenate(blocks)


def _pretrained_in_chunks(audio, rows: np.ndarray, device: str, target_db: float) -> tuple[np.ndarray, np.ndarray]:
    """The pretrained embedding of audio[rows], as recorded and level-normalised ([0, 0] each when it isn't installed)."""
    if not pretrained.available():
        return np.zeros((0, 0)), np.zeros((0, 0))
    raw, levelled = [], []
    for part in np.array_split(rows, max(1, -(-len(rows) // CHUNK))):
        e, e_level = _pretrained_pair(np.asarray(audio[part], np.float32), target_db, device)
        raw.append(e)
        levelled.append(e_level)
    return np.concatenate(raw), np.concatenate(levelled)


def to_level(audio: np.ndarray, target_db: float) -> np.ndarray:
    """Each clip scaled to target_db (features.level_db); not clipped: it is only embedded, never played."""
    return (audio * 10 ** ((target_db - level_db(audio)) / 20)[:, None]).astype(np.float32)


def _distances(e: np.ndarray, ref: np.ndarray, p: EvalParams) -> dict:
    """FAD, KID, precision, recall, density and coverage of one embedded set against one embedded reference."""
    return {"fad": fad(e, ref, p), "kid": kid(e, ref, p)} | prdc(e, ref, p)


def embedding_scores(r: Reference, bundle: dict, audio: np.ndarray, mels: np.ndarray | None = None) -> dict:
    """FAD, KID, PRDC (as recorded and level-normalised, in both embeddings) and the distinct fraction of one set.

    With the set's embeddings under "_e" and "_e_level" (score keeps what it needs of them).
    """
    mels = bundle_mels(bundle, audio) if mels is None else mels
    e = embed(bundle, None, r.device, mels=mels)
    e_level = embed(bundle, None, r.device, mels=at_level(mels, r.target_db - level_db(audio), bundle))
    pretrained_scores, pretrained_level = _pretrained_scores(r, audio)
    return {
        **_distances(e, r.ref, r.params),
        "level_normalised": _distances(e_level, r.ref_level, r.params) | {"target_db": r.target_db},
        "pretrained": pretrained_scores,
        # near-duplicates within the set, in each embedding, level-normalised (a collapse at any n)
        "distinct_fraction": {space: d and d | {"floor": (r.floor_distinct or {}).get(space)} for space, d in {
            "in_domain": distinct_fraction(e_level, r.ref_level, r.copy_threshold, r.params),
            "pretrained": None if pretrained_level is None else
            distinct_fraction(pretrained_level, r.ref_pretrained_level, r.pretrained_copy_threshold, r.params)}.items()},
        "_e": e, "_e_level": e_level,
    }  # fmt: skip


def score(r: Reference, bundle: dict, audio: np.ndarray, labels: list[str] | None = None) -> dict:
    """Every metric of one set of clips [N, samples] against the reference; labels: the intended categories."""
    mels = bundle_mels(bundle, audio)  # once, for the embedding, the classifier and the copy check
    scores = embedding_scores(r, bundle, audio, mels)
    e, e_level = scores.pop("_e"), scores.pop("_e_level")
    feats = clip_features(audio)
    dist, idx = nearest(e_level, r.train_level)
    blocks = mel_blocks(None, bundle, mels=mels)
    mel_dist, mel_idx = nearest_window(blocks, r.train_mel)
    mel_threshold = r.mel_copy_threshold
    if r.mel_copy_blocks != blocks.shape[-1]:  # clips of another length than the reference was built for
        mel_threshold = _mel_threshold(r.held_mel, r.train_mel, blocks.shape[-1], r.held_groups, r.params)
    predicted = classify(bundle, None, r.device, mels=mels) if labels else None
    probs = probabilities(bundle, e, r.device)
    return {
        "n": len(audio),
        "n_ref": len(r.ref),
        "device": r.device,
        "halves_from_train": r.halves_from_train,
        **scores,
        "classifier": class_scores(probs, r.ref_probs, list(bundle["classes"]), r.params)
        if probs is not None and r.ref_probs.size and probs.shape[1] >= 2 else None,
        "wasserstein": {name: wasserstein(feats[name], r.ref_features[name]) for name in FEATURES},
        "features": feats,
        "ndb": ndb(r.centres, r.real_share, len(r.train), e, r.params.ndb_alpha),
        "pairwise": pairwise_mean(e),
        "pairwise_real": pairwise_mean(r.ref),
        "nearest_train": {"distance": dist.tolist(), "index": idx.tolist(), "threshold": r.copy_threshold,
                          "real_median": float(np.median(r.real_nearest)), "median": float(np.median(dist)),
                          "near_copies": int((dist <= r.copy_threshold).sum())},  # fmt: skip
        "nearest_train_mel": {"distance": mel_dist.tolist(), "index": mel_idx.tolist(), "threshold": mel_threshold,
                              "near_copies": int((mel_dist <= mel_threshold).sum())},  # fmt: skip
        "accuracy": float(np.mean(np.array(predicted) == np.array(labels))) if predicted else None,
        "per_category": _per_category(r, feats, labels, predicted),
        # kept so that sets can be compared with each other afterwards (cry_diffusion.tradeoff)
        "embeddings": e.tolist(),
        "embeddings_level": e_level.tolist(),
    }


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


# Where each measure of embedding_scores sits, as a dotted path, and whether higher is better (None: its own rule)
COLLAPSE_MEASURES = {f"{space}{name}": name in PRDC for space in ("", "level_normalised.", "pretrained.",
                                                                  "pretrained.level_normalised.")
                     for name in ("fad", "kid", *PRDC)} | {"distinct_fraction.in_domain": None,
                                                          "distinct_fraction.pretrained": None}  # fmt: skip


def at_path(scores: dict, path: str):
    """scores["a"]["b"] for "a.b"; None where any step is missing."""
    for key in path.split("."):
        scores = scores.get(key) if isinstance(scores, dict) else None
    return scores


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


def _per_category(r: Reference, feats: dict, labels: list[str] | None, predicted: list[str] | None) -> dict | None:
    """For a set generated by category: per category, the classifier's accuracy and each feature's W1 to real clips of it."""
    if not labels or r.ref_labels is None:
        return None
    out = {}
    for category in sorted(set(labels)):
        mine = [i for i, x in enumerate(labels) if x == category]
        real = [i for i, x in enumerate(r.ref_labels) if x == category]
        out[category] = {
            "n": len(mine), "n_ref": len(real),
            "accuracy": float(np.mean([predicted[i] == category for i in mine])) if predicted else None,
            "wasserstein": {name: wasserstein([feats[name][i] for i in mine], [r.ref_features[name][i] for i in real])
                            if real else None for name in FEATURES},
        }  # fmt: skip
    return out


def _pretrained_scores(r: Reference, audio: np.ndarray) -> tuple[dict | None, np.ndarray | None]:
    """The distances in the pretrained embedding, as recorded and level-normalised: a ruler that never saw this dataset.

    With the level-normalised embeddings themselves (None, None without the embedding).
    """
    if not r.ref_pretrained.size:
        return None, None
    e, e_level = _pretrained_pair(audio, r.target_db, r.device)
    return _distances(e, r.ref_pretrained, r.params) | {
        "level_normalised": _distances(e_level, r.ref_pretrained_level, r.params)} | {
        k: v for k, v in pretrained.describe().items() if k in ("name", "trained_on", "dim")}, e_level


def _pretrained_pair(audio: np.ndarray, target_db: float, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Clips in the pretrained embedding, as recorded and brought to target_db."""
    return pretrained.embed(audio, device), pretrained.embed(to_level(np.asarray(audio, np.float32), target_db), device)


def same_n(audio: np.ndarray, n: int, what: str) -> np.ndarray:
    """The first n clips, or an error naming both counts: FAD's bias depends on n, so sets are compared at one n."""
    if len(audio) < n:
        raise ValueError(f"{what} has {len(audio)} clips, fewer than the {n} every other set is scored on "
                         f"(sampling.n_samples): lower sampling.n_samples to {len(audio)}, or hold out more "
                         f"audio (heldout_fraction)")
    return audio[:n]


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
