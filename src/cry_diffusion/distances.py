"""Distances between two sets of embeddings, with their intervals: pure arithmetic on [N, dim] matrices.

FAD (extrapolated to infinitely many clips), KID, precision/recall/density/coverage, the
distinct fraction (near-duplicates within a set), NDB, a set's spread, the nearest-row search
the copy check runs on, and the interval rules they share. Any two embedding matrices will do;
nothing here knows audio, a model or the pipeline (cry_diffusion.evaluate embeds the clips and
calls these):

    from cry_diffusion import distances
    p = distances.EvalParams()                 # bootstrap, confidence, seed (the `evaluation` config section)
    distances.fad(test, ref, p)                # {"value", "low", "high", "plugin", "reliable", ...}
    distances.kid(test, ref, p)
    distances.prdc(test, ref, p)               # {"precision": {...}, "recall": ..., "density": ..., "coverage": ..., "k"}
    distances.distinct_fraction(test, ref, threshold, p)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import Params


@dataclass(frozen=True)
class EvalParams(Params):
    """The `evaluation` config section. Most of it sets the intervals here; ndb_bins and copy_percentile are
    evaluate.Reference's. It lives with the distances so that they need nothing else of the package."""

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
    from scipy.special import stdtrit  # scipy.stats.t.ppf's own: scipy.stats costs 0.4 s more to import

    point = np.asarray(point, float)
    var, centre = np.zeros_like(point), point.copy()
    for values in leave_one_out:
        values = np.asarray(values, float)
        n = len(values)
        var = var + (n - 1) / n * ((values - values.mean(0)) ** 2).sum(0)
        if bias_correct:
            centre = centre - (n - 1) * (values.mean(0) - point)
    q = stdtrit(max(1, min(len(v) for v in leave_one_out) - 1), 0.5 + confidence / 2)
    return centre - q * np.sqrt(var), centre + q * np.sqrt(var)


def wilson(k, n: int, confidence: float) -> tuple:
    """Wilson score interval of a proportion k/n (arrays work): the binomial uncertainty of n clips' shares."""
    from scipy.special import ndtri  # scipy.stats.norm.ppf's own

    z = ndtri(0.5 + confidence / 2)
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


def ndb(centres: np.ndarray, real_share: np.ndarray, n_real: int, test: np.ndarray, alpha: float) -> dict:
    """Number of statistically different bins (Richardson & Weiss 2018): two-proportion z-test per k-means bin."""
    from scipy.special import ndtr  # scipy.stats.norm.sf(x) is ndtr(-x)

    bins = nearest(test, centres)[1]
    share = np.bincount(bins, minlength=len(centres)) / len(test)
    pooled = (real_share * n_real + share * len(test)) / (n_real + len(test))
    se = np.sqrt(np.maximum(pooled * (1 - pooled) * (1 / n_real + 1 / len(test)), 1e-12))
    different = 2 * ndtr(-np.abs(share - real_share) / se) < alpha
    return {"ndb": int(different.sum()), "bins": len(centres), "ndb_fraction": float(different.mean())}
