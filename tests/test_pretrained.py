"""The pretrained (Resemblyzer GE2E) embedding: sane vectors, and a FAD that tells cries from non-cries.

Skipped where the resemblyzer wheel, which carries the weights, is not installed.

    pytest tests/test_pretrained.py
"""

import numpy as np
import pytest

from cry_diffusion import SAMPLE_RATE, pretrained
from cry_diffusion.distances import frechet
from cry_diffusion.evaluate import noise_like, tone_sweeps
from cry_diffusion.synth_cry import synthesize_cry
from cry_diffusion.synth_params import CATEGORIES

pytestmark = [
    pytest.mark.skipif(not pretrained.available(), reason="resemblyzer (the weights' wheel) not installed"),
    # batches of a few dozen 1.6-s partials: on a busy 2-core CPU a second thread made the LSTM 20-50x slower
    pytest.mark.usefixtures("one_thread"),
]


@pytest.fixture(scope="module")
def real():
    """Two halves of 1-s clips cut from 4-s synthetic cries, three per category, shuffled across categories."""
    clips = []
    for category in CATEGORIES:
        for seed in range(3):
            cry = synthesize_cry(category, 4.0, SAMPLE_RATE, seed=seed)
            clips += list(cry.reshape(4, SAMPLE_RATE))
    clips = np.stack(clips)[np.random.default_rng(0).permutation(len(clips))]
    return clips[: len(clips) // 2], clips[len(clips) // 2:]


def test_the_mel_frames_are_resemblyzer_s():
    """Its wav_to_mel_spectrogram is librosa.feature.melspectrogram with 40 bands, a 400-sample FFT and a 160-sample
    hop; ours is numpy's, equal to float32 rounding, at any length (padded, cut mid-hop)."""
    import librosa

    rng = np.random.default_rng(0)
    for samples in (4000, 16000, 16001, 25600):
        clips = (0.3 * rng.standard_normal((3, samples))).astype(np.float32)
        theirs = librosa.feature.melspectrogram(y=clips, sr=SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=40)
        ours = pretrained._power_mel(clips)
        assert ours.dtype == np.float32 and ours.shape == np.swapaxes(theirs, 1, 2).shape
        assert np.abs(ours - np.swapaxes(theirs, 1, 2)).max() <= 1e-6 * np.abs(theirs).max()


def test_describe_names_the_weights():
    d = pretrained.describe()
    assert d["dim"] == 256 and d["sample_rate"] == SAMPLE_RATE
    assert d["weight_file"].endswith("pretrained.pt") and "Apache" in d["licence"]


def test_vectors_are_unit_finite_and_repeatable(real):
    clips = np.concatenate([real[0][:3], np.zeros((1, SAMPLE_RATE), np.float32)])  # silence too
    e = pretrained.embed(clips)
    assert e.shape == (4, 256) and e.dtype == np.float64
    assert np.isfinite(e).all() and (e >= 0).all()  # ReLU outputs, averaged
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(pretrained.embed(clips), e)
    np.testing.assert_allclose(pretrained.embed(clips[1]), e[1:2], atol=1e-5)  # alone or in a batch


@pytest.mark.parametrize("seconds", [0.3, 1.0, 2.0, 5.0])
def test_any_length(real, seconds):
    """Shorter than a partial (1.6 s) tiles, longer averages partials; either way one unit vector per clip."""
    cry = synthesize_cry("normal", seconds, SAMPLE_RATE, seed=7)
    for pad in ("tile", "zeros"):
        e = pretrained.embed(np.stack([cry, cry[::-1]]), pad=pad)
        assert e.shape == (2, 256) and np.isfinite(e).all()
        np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-9)


def test_fad_ranks_real_below_sweeps_below_noise(real):
    """Against held-out real cries: other real cries score best, tone sweeps worse, Gaussian noise worst."""
    ref, test = real
    n = len(test)
    ref_e = pretrained.embed(ref)
    fad = {name: frechet(pretrained.embed(audio), ref_e)
           for name, audio in [("real", test), ("sweeps", tone_sweeps(ref, n, seed=1)),
                               ("noise", noise_like(ref, n, seed=2))]}
    assert fad["real"] < fad["sweeps"] < fad["noise"], fad
    assert fad["sweeps"] > 2 * fad["real"], fad  # a margin, not a coin toss (measured: ~3x)
