"""Time to quality (cry_diffusion.tradeoff): the paired bootstrap tells a same-quality set from a worse one.

    pytest tests/test_tradeoff.py
"""

import numpy as np

from cry_diffusion.evaluate import EvalParams, frechet
from cry_diffusion.features import FEATURES
from cry_diffusion.tradeoff import compare


def evaluation(rng, n, shift, wall, ref, ref_feats, sampler):
    """An evaluation dict as cry_diffusion.evaluate.score writes it, for clips whose embeddings sit `shift` away."""
    e = rng.standard_normal((n, 4)) + shift
    feats = {name: (rng.standard_normal(n) + 10 * shift).tolist() for name in FEATURES}
    feats["f0_mean_hz"][0] = None  # an unvoiced clip: undefined pitch must not break the bootstrap
    return {"n": n, "embeddings": e.tolist(), "features": feats, "sampler": sampler, "wall_seconds_per_audio_second": wall,
            "fad": {"value": frechet(e, ref), "low": 0.0, "high": 0.0, "plugin": frechet(e, ref)},
            "wasserstein": {name: 0.0 for name in FEATURES}}


def test_same_quality_is_no_worse_and_a_shifted_set_is_worse():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((60, 4))
    ref_feats = {name: rng.standard_normal(60).tolist() for name in FEATURES}
    evals = {200: evaluation(rng, 60, 0.0, 10.0, ref, ref_feats, "ancestral"),
             50: evaluation(rng, 60, 0.0, 2.5, ref, ref_feats, "ddim"),
             6: evaluation(rng, 60, 1.5, 0.3, ref, ref_feats, "fast")}  # fmt: skip
    result = compare(evals, ref, ref_feats, EvalParams(bootstrap=100))
    rows = {r["steps"]: r for r in result["rows"]}
    assert [r["steps"] for r in result["rows"]] == [200, 50, 6]
    assert rows[200]["no_worse"] and rows[200]["difference"] is None
    assert rows[50]["no_worse"], rows[50]["worse_on"]
    d = rows[50]["difference"]["fad"]
    assert d["low"] <= 0 <= d["high"]
    assert not rows[6]["no_worse"] and "fad" in rows[6]["worse_on"] and "f0_mean_hz" in rows[6]["worse_on"]
    assert rows[6]["difference"]["fad"]["low"] > 0
    # the fastest set that is no worse: 50 steps, 4x less time than 200; 6 steps is faster but worse
    assert result["fastest_no_worse"] == {"steps": 50, "sampler": "ddim", "speedup": 4.0}


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
