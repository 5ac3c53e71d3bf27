import numpy as np
import pytest
from conftest import tone

from cry_diffusion.mel import MelParams, log_mel, mel_filterbank


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


@pytest.mark.parametrize("n_fft, n_mels, fmin, fmax", [(512, 80, 0.0, 8000.0), (400, 40, 0.0, 8000.0),
                                                      (1024, 64, 50.0, 7000.0), (512, 80, 1000.0, 8000.0)])  # fmt: skip
def test_the_filterbank_is_librosa_s_to_the_bit(n_fft, n_mels, fmin, fmax):
    import librosa

    ours = mel_filterbank(n_fft, n_mels, fmin, fmax)
    theirs = librosa.filters.mel(sr=16000, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_scoring_and_drawing_mels_leave_librosa_unimported():
    """librosa costs a second of every job that imports it, and the stages that make, draw and score mels need none
    of it: the mel route's Griffin-Lim is the one stage that does."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from cry_diffusion import evalplots, evaluate, progress, tradeoff, pretrained\n"
            "from cry_diffusion.mel import log_mel\n"
            "clips = np.random.default_rng(0).standard_normal((2, 16000)).astype(np.float32)\n"
            "log_mel(clips); pretrained._power_mel(clips)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('librosa', 'numba')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
