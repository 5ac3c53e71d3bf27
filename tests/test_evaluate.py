"""Evaluation metrics on signals with known answers, and on a model that has learnt something.

    pytest tests/test_evaluate.py             (about 1 minute on 2 CPU cores, most of it the slow test)
"""

import numpy as np
import pytest

from cry_diffusion import SAMPLE_RATE, evaluate
from cry_diffusion.embedding import EmbeddingParams, classify, embed, train_embedding
from cry_diffusion.features import clip_features, features_of, wasserstein

PARAMS = evaluate.EvalParams(bootstrap=50)


def tones(freqs, seconds=0.5, seed=0, amplitude=0.5):
    """One sine per frequency, random phase, with a little noise so no two clips are identical."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    waves = [amplitude * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs]
    return (np.stack(waves) + 0.01 * rng.standard_normal((len(freqs), len(t)))).astype(np.float32)


@pytest.mark.parametrize("freq", [250.0, 440.0, 900.0])
def test_pure_tone_f0_voicing_and_centroid(freq):
    f = features_of(tones([freq], seconds=1.0)[0])
    assert abs(f["f0_mean_hz"] - freq) < 0.01 * freq
    assert f["f0_range_hz"] < 0.02 * freq
    assert f["voiced_fraction"] > 0.95 and f["hnr_db"] > 15
    assert abs(f["centroid_hz"] - freq) < 0.1 * freq and f["flatness"] < 0.01


def test_noise_is_unvoiced_and_flat():
    f = features_of(np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.1)
    assert f["voiced_fraction"] < 0.1 and f["hnr_db"] < 0 and f["flatness"] > 0.3
    assert f["f0_mean_hz"] != f["f0_mean_hz"] or f["voiced_fraction"] > 0  # NaN when nothing is voiced
    assert clip_features(np.zeros((1, 1600)) + 1e-9)["voiced_fraction"] == [0.0]


def test_wasserstein_grows_with_the_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 500)
    assert wasserstein(a, a) == 0
    assert abs(wasserstein(a, a + 3) - 3) < 1e-9
    assert wasserstein(a, [None, None]) is None


def test_frechet_zero_for_identical_and_growing_with_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    assert evaluate.frechet(a, a) < 1e-4
    near, far = evaluate.frechet(a, b + 0.5), evaluate.frechet(a, b + 2.0)
    assert evaluate.frechet(a, b) < near < far
    assert abs(far - 8 * 4.0) < 3  # the mean term: 8 dimensions x 2.0 squared
    ci = evaluate.fad(a, b + 2.0, PARAMS)
    assert ci["low"] <= ci["value"] + 1 and ci["low"] < ci["high"]


def test_ndb_and_pairwise_see_a_collapse():
    rng = np.random.default_rng(0)
    real = np.concatenate([rng.normal(c, 0.1, (50, 2)) for c in ((0, 0), (5, 0), (0, 5), (5, 5))])
    centres = np.array([[0, 0], [5, 0], [0, 5], [5, 5]], float)
    share = np.full(4, 0.25)
    assert evaluate.ndb(centres, share, len(real), real[rng.permutation(200)[:80]], 0.05)["ndb"] == 0
    collapsed = rng.normal((0, 0), 0.1, (80, 2))
    assert evaluate.ndb(centres, share, len(real), collapsed, 0.05)["ndb"] == 4
    assert evaluate.pairwise_mean(collapsed) < 0.1 * evaluate.pairwise_mean(real)


@pytest.fixture(scope="module")
def tone_reference():
    """Tones between 300 and 700 Hz, embedded by mel statistics (no categories)."""
    rng = np.random.default_rng(1)
    train, heldout = tones(rng.uniform(300, 700, 60), seed=2), tones(rng.uniform(300, 700, 24), seed=3)
    bundle, info = train_embedding(train, None)
    assert info["kind"] == "mel statistics"
    return bundle, train, heldout, evaluate.Reference.build(bundle, train, heldout, PARAMS)


def test_copies_of_training_clips_are_caught(tone_reference):
    bundle, train, heldout, ref = tone_reference
    copies = evaluate.score(ref, bundle, train[:6])["nearest_train"]
    assert copies["near_copies"] == 6 and copies["index"] == list(range(6))
    fresh = evaluate.score(ref, bundle, tones(np.random.default_rng(9).uniform(300, 700, 6), seed=9))["nearest_train"]
    assert fresh["near_copies"] <= 1


def test_references_order_real_below_tones_below_noise(tone_reference):
    bundle, train, heldout, ref = tone_reference
    real = evaluate.score(ref, bundle, ref.floor_audio)["fad"]["value"]
    other = evaluate.score(ref, bundle, tones(np.random.default_rng(4).uniform(1500, 3000, 12), seed=4))["fad"]["value"]
    noise = evaluate.score(ref, bundle, evaluate.noise_like(train, 12))["fad"]["value"]
    assert real < other < noise


def test_embedding_classifier_learns_two_categories():
    rng = np.random.default_rng(0)
    audio = tones(np.r_[rng.uniform(300, 400, 24), rng.uniform(1200, 1500, 24)], seconds=0.25)
    labels = ["low"] * 24 + ["high"] * 24
    bundle, info = train_embedding(audio, labels, EmbeddingParams(epochs=25, dim=8))
    assert info["kind"] == "category classifier" and info["classes"] == ["high", "low"]
    test = tones([350, 1300, 330, 1400], seconds=0.25, seed=5)
    assert classify(bundle, test) == ["low", "high", "low", "high"]
    assert embed(bundle, test).shape == (4, 8)
    sweeps = evaluate.tone_sweeps(audio, 3)
    assert sweeps.shape == (3, audio.shape[1]) and abs(np.sqrt(np.mean(sweeps**2)) - np.sqrt(np.mean(audio**2))) < 0.05


@pytest.mark.slow
def test_a_trained_model_lands_between_real_and_noise(tmp_path):
    from cry_diffusion.diffusion import DiffusionParams
    from cry_diffusion.generate import generate
    from cry_diffusion.model import ModelParams
    from cry_diffusion.train import TrainParams, train

    freqs = np.repeat([400.0, 800.0], 24)
    # Tones in noise (about 11 dB SNR): a briefly trained model's own hiss then reads as data, not as failure.
    segments = tones(freqs, seconds=1.0, seed=0) + 0.1 * np.random.default_rng(7).standard_normal((48, SAMPLE_RATE)).astype(np.float32)
    # Far short of good audio, long enough to land between the real floor and noise (a smoke test does not).
    model_params = ModelParams(residual_layers=8, residual_channels=16, dilation_cycle=8)
    tp = TrainParams(steps=200, batch_size=8, crop_samples=4000, learning_rate=2e-3, checkpoint_every=200, log_every=50, threads=2)
    out = train(segments[::2], None, model_params, DiffusionParams(), tp, tmp_path / "m.pt", tmp_path / "ck", tmp_path / "loss.csv")
    generated, _ = generate(out, n=12, seconds=0.25, steps=6, seed=1)
    clips = segments[:, :4000]
    labels = ["low" if f < 600 else "high" for f in freqs]
    bundle, _ = train_embedding(clips[::2], labels[::2], EmbeddingParams(epochs=15, dim=8))
    ref = evaluate.Reference.build(bundle, clips[::2], clips[1::2], PARAMS)
    fad = {name: evaluate.score(ref, bundle, audio)["fad"]["value"]
           for name, audio in (("real", ref.floor_audio[:12]), ("generated", generated), ("noise", evaluate.noise_like(clips, 12)))}  # fmt: skip
    assert fad["real"] < fad["generated"] < fad["noise"], fad
