"""Snapshots along training, and the quality-against-training-time measures (the pipeline's progress rule)."""

import numpy as np
import pytest
import torch

from cry_diffusion import progress
from cry_diffusion.diffusion import DiffusionParams
from cry_diffusion.evaluate import EvalParams
from cry_diffusion.generate import load_model
from cry_diffusion.model import ModelParams
from cry_diffusion.train import TrainParams, train
from cry_diffusion.train_dataset import _publish

pytestmark = pytest.mark.usefixtures("one_thread")


def test_snapshots_are_model_files_taken_along_the_way(tmp_path):
    segments = (np.random.default_rng(0).standard_normal((4, 800)) * 0.1).astype(np.float32)
    tp = TrainParams(steps=6, batch_size=2, crop_samples=400, checkpoint_every=4, log_every=5, threads=1,
                     snapshot_every=3)
    train(segments, None, ModelParams(residual_layers=2, residual_channels=8, dilation_cycle=2), DiffusionParams(),
          tp, tmp_path / "m.pt", tmp_path / "run", tmp_path / "loss.csv")
    snaps = sorted((tmp_path / "run" / "snapshots").glob("*.pt"))
    assert [s.name for s in snaps] == ["step-0000003.pt", "step-0000006.pt"]
    first, last = (torch.load(s, weights_only=True) for s in snaps)
    assert (first["step"], last["step"]) == (3, 6) and 0 < first["elapsed_seconds"] < last["elapsed_seconds"]
    model, _ = load_model(snaps[0], "cpu")  # the final model's format: sampling and scoring take it as it is
    assert not torch.equal(first["model"]["input_projection.weight"], last["model"]["input_projection.weight"])
    final = torch.load(tmp_path / "m.pt", weights_only=True)
    assert all(torch.equal(final["model"][k], last["model"][k]) for k in final["model"])

    # the pipeline's folder gets the snapshots this run's settings ask for, and nothing else
    out = tmp_path / "out"
    out.mkdir()
    (out / "step-0000099.pt").write_bytes(b"stale")
    _publish(snaps, out, TrainParams(steps=5, snapshot_every=3))
    assert sorted(p.name for p in out.iterdir()) == ["step-0000003.pt"]


def test_w1_interval_brackets_the_distance_and_shrinks_with_more_clips():
    rng = np.random.default_rng(0)
    p = EvalParams(bootstrap=300)
    small = progress.w1_interval(rng.normal(1, 1, 10), rng.normal(0, 1, 10), p)
    large = progress.w1_interval(rng.normal(1, 1, 400), rng.normal(0, 1, 400), p)
    for d in (small, large):
        assert d["low"] <= d["value"] <= d["high"]
    assert large["high"] - large["low"] < (small["high"] - small["low"]) / 3
    assert 0.8 < large["value"] < 1.2  # two unit normals one apart: W1 = 1
    # unvoiced clips have no f0: None and NaN drop out, and a side with nothing left gives no distance
    assert progress.w1_interval([None, float("nan")], [1.0, 2.0], p)["value"] is None


def test_identical_median_clips_do_not_pass_the_band_check():
    """A set of clips all at the real median passed 'median inside the real 10th-90th percentiles'; its spread now fails it."""
    from cry_diffusion.evaluate import EvalParams
    from cry_diffusion.progress import REAL_RANGE, inside

    rng = np.random.default_rng(0)
    real = rng.normal(400, 60, 200)
    band = list(np.percentile(real, REAL_RANGE))
    width = band[1] - band[0]
    p = EvalParams(bootstrap=200)
    assert inside(rng.normal(400, 60, 32).tolist(), band, width, 32, p)["inside"]
    same = inside([float(np.median(real))] * 32, band, width, 32, p)
    assert same["spread_ratio"] == 0 and not same["inside"]
    # a median that is inside by its point value but not by its interval
    edge = inside(rng.normal(band[1] - 5, 60, 32).tolist(), band, width, 32, p)
    assert edge["low"] < band[1] < edge["high"] and not edge["inside"]
    assert not inside([None] * 20 + rng.normal(400, 60, 12).tolist(), band, width, 32, p)["inside"]  # most clips unvoiced
