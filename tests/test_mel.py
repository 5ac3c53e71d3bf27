import numpy as np
import pytest
from conftest import tone

from cry_diffusion.mel import MelParams, log_mel


def test_shape_and_frame_rate():
    p = MelParams()
    assert (p.win_length, p.hop_length) == (400, 160)
    mels = log_mel(np.zeros((3, 16000), np.float32))
    assert mels.shape == (3, 80, 101)  # 100 frames per second, centred, plus one
    assert log_mel(np.zeros(32000, np.float32)).shape == (80, 201)
    assert np.isfinite(mels).all() and mels.max() == pytest.approx(np.log(p.floor))


def test_a_tone_lands_in_the_right_band():
    import librosa

    p = MelParams()
    centres = librosa.mel_frequencies(n_mels=p.n_mels + 2, fmin=p.fmin, fmax=p.fmax)[1:-1]
    for freq in (300, 1000, 4000):
        band = log_mel(tone(freq, 1.0, 16000), p).mean(axis=1).argmax()
        assert abs(centres[band] - freq) < 0.1 * freq + 50


def test_louder_is_higher_by_the_log_of_the_gain():
    quiet = log_mel(tone(500, 1.0, 16000, amplitude=0.1)).max()
    loud = log_mel(tone(500, 1.0, 16000, amplitude=0.4)).max()
    assert loud - quiet == pytest.approx(np.log(4), abs=0.05)
