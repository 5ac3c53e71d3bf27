"""Time to quality (cry_diffusion.tradeoff): the paired bootstrap tells a same-quality set from a worse one.

    pytest tests/test_tradeoff.py
"""

import numpy as np

from cry_diffusion.evaluate import EvalParams, frechet, kid, prdc
from cry_diffusion.features import FEATURES
from cry_diffusion.tradeoff import compare

P = EvalParams(bootstrap=100)


def evaluation(rng, n, shift, wall, ref, ref_feats, sampler, e=None):
    """An evaluation dict as cry_diffusion.evaluate.score writes it, for clips whose embeddings sit `shift` away."""
    e = rng.standard_normal((n, ref.shape[1])) + shift if e is None else e
    feats = {name: (rng.standard_normal(n) + 10 * shift).tolist() for name in FEATURES}
    feats["f0_mean_hz"][0] = None  # an unvoiced clip: undefined pitch must not break the bootstrap
    fad = {"value": frechet(e, ref), "low": 0.0, "high": 0.0, "plugin": frechet(e, ref)}
    distances = {"kid": kid(e, ref, EvalParams(bootstrap=0)), "fad": fad} | prdc(e, ref, EvalParams(bootstrap=0))
    return {"n": n, "embeddings": e.tolist(), "features": feats, "sampler": sampler, "wall_seconds_per_audio_second": wall,
            "fad": fad, "level_normalised": distances, "wasserstein": {name: 0.0 for name in FEATURES}}


def test_fad_difference_is_taken_in_the_space_its_interval_resamples():
    """The raw embeddings of a quieter set sit elsewhere than its level-normalised ones; the difference's point value
    must be the level-normalised one, or it can lie outside its own interval (+16.4 with [-10.8, -5.8] on a CPU run)."""
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((40, 4))
    ref_feats = {name: rng.standard_normal(40).tolist() for name in FEATURES}
    evals = {200: evaluation(rng, 40, 0.0, 10.0, ref, ref_feats, "ancestral"),
             8: evaluation(rng, 40, 0.0, 1.0, ref, ref_feats, "dpmpp2m")}
    evals[8]["embeddings_level"], evals[200]["embeddings_level"] = evals[8]["embeddings"], evals[200]["embeddings"]
    quiet = np.asarray(evals[8]["embeddings"]) - 3.0  # what its raw embeddings look like before levelling
    evals[8]["embeddings"], evals[8]["fad"] = quiet.tolist(), {"value": frechet(quiet, ref), "plugin": frechet(quiet, ref)}
    d = compare(evals, ref, ref_feats, P)["rows"][1]["difference"]["fad"]
    assert d["low"] <= d["value"] <= d["high"], d


def test_same_quality_is_no_worse_and_a_shifted_set_is_worse():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((60, 4))
    ref_feats = {name: rng.standard_normal(60).tolist() for name in FEATURES}
    evals = {200: evaluation(rng, 60, 0.0, 10.0, ref, ref_feats, "ancestral"),
             50: evaluation(rng, 60, 0.0, 2.5, ref, ref_feats, "ddim"),
             6: evaluation(rng, 60, 1.5, 0.3, ref, ref_feats, "fast")}  # fmt: skip
    result = compare(evals, ref, ref_feats, P)
    rows = {r["steps"]: r for r in result["rows"]}
    assert [r["steps"] for r in result["rows"]] == [200, 50, 6]
    assert rows[200]["no_worse"] and rows[200]["difference"] is None
    assert rows[50]["no_worse"], rows[50]["worse_on"]
    d = rows[50]["difference"]["kid"]
    assert d["low"] <= 0 <= d["high"]
    assert not rows[6]["no_worse"] and "kid" in rows[6]["worse_on"] and "f0_mean_hz" in rows[6]["worse_on"]
    assert rows[6]["difference"]["fad"]["low"] > 0  # FAD's difference is still there, as context
    assert "fad" not in rows[6]["worse_on"]
    # the fastest set that is no worse: 50 steps, 4x less time than 200; 6 steps is faster but worse
    assert result["fastest_no_worse"] == {"steps": 50, "sampler": "ddim", "speedup": 4.0}


def test_a_narrower_set_is_not_called_better_than_an_equally_distant_one():
    """Narrow (variance 0.25) against mean-shifted, both at true FD 8 from the reference, 32 clips against 22 in 32-d.

    FAD's difference called the narrow set significantly better in every trial (its plug-in
    bias grows with spread); the verdict, decided on KID, recall, coverage and the acoustic
    distances, must not, and must see that the narrow set lost diversity.
    """
    rng = np.random.default_rng(7)
    dim, trials = 32, 12
    fad_says_better = called_better = recall_worse = 0
    for _ in range(trials):
        ref = rng.standard_normal((22, dim))
        ref_feats = {name: rng.standard_normal(22).tolist() for name in FEATURES}
        shift = np.zeros(dim)
        shift[:8] = 1.0  # |shift|^2 = 8
        narrow = evaluation(rng, 32, 0.0, 1.0, ref, ref_feats, "ddim", e=0.5 * rng.standard_normal((32, dim)))
        shifted = evaluation(rng, 32, 0.0, 10.0, ref, ref_feats, "ancestral", e=rng.standard_normal((32, dim)) + shift)
        row = [r for r in compare({7: narrow, 200: shifted}, ref, ref_feats, P)["rows"] if r["steps"] == 7][0]
        fad_says_better += row["difference"]["fad"]["high"] < 0
        called_better += row["better"]
        recall_worse += "recall" in row["worse_on"] or "coverage" in row["worse_on"]
    assert fad_says_better >= trials - 2, fad_says_better  # the trap is there
    assert called_better == 0 and recall_worse >= trials - 2, (called_better, recall_worse)


def test_labels_of_chains_that_take_nearly_the_same_time_do_not_overprint():
    """The 6- and 7-step chains sit almost on one x: every other label of such a run goes below its point."""
    from cry_diffusion.evalplots import _crowded
    from cry_diffusion.plots import plt

    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.set_xscale("log")
    wall = np.array([0.91, 0.049, 0.034, 0.030])  # 200, 7, 6 steps, and a fourth as close again
    ax.plot(wall, np.ones(4), "o")
    # from the left: above, below, above; 0.91 stands alone
    assert _crowded(ax, wall, np.ones(4)) == [False, False, True, False]
    assert _crowded(ax, wall[:2], np.ones(2)) == [False, False]
    plt.close(fig)
