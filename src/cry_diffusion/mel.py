"""Log-mel spectrograms as the paper draws them: 80 bands, 25 ms window, 10 ms hop, 16 kHz.

One implementation serves the data stage, the figures and the evaluation, so a
real and a generated cry are always compared through the same lens.

    from cry_diffusion.mel import MelParams, log_mel
    mels = log_mel(segments, MelParams())     # [N, 80, frames], natural log
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import SAMPLE_RATE
from .params import Params


@dataclass(frozen=True)
class MelParams(Params):
    n_mels: int = 80  # bands, as in the paper
    win_ms: float = 25.0  # analysis window
    hop_ms: float = 10.0  # frame step: 100 frames per second
    n_fft: int = 512  # FFT size, >= the 400-sample window; the window is zero-padded to it
    fmin: float = 0.0  # lowest band edge, Hz
    fmax: float = 8000.0  # highest band edge, Hz (Nyquist at 16 kHz)
    floor: float = 1e-5  # magnitude floor before the log: about -100 dB, silence stays finite

    @property
    def win_length(self) -> int:
        return int(round(self.win_ms * SAMPLE_RATE / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.hop_ms * SAMPLE_RATE / 1000))

    def frames(self, samples: int) -> int:
        """Frames for a signal of `samples` (centred frames: one per hop, plus one)."""
        return samples // self.hop_length + 1


# Samples per batch on one thread (16 one-second rows): a batch's spectrogram stays near the CPU's cache, where
# 64 or 256 rows at a time ran at about half the speed (benchmarks/preprocessing.py, one core). Several threads
# wait on each other at every operation, so they take 16x as much at a time: on 2 busy cores 256 rows ran 1.3x
# faster than 64, and 16 rows at a third of the speed. The results are bit-identical whatever the batch.
BATCH_SAMPLES = 2**18


# Slaney's mel scale (librosa's default, not HTK's): linear below 1 kHz, 27 steps per factor of 6.4 above.
_LINEAR_HZ_PER_MEL, _KNEE_HZ, _LOG_STEP = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
_KNEE_MEL = _KNEE_HZ / _LINEAR_HZ_PER_MEL


def hz_to_mel(hz):
    """Frequency (Hz) -> mel, on Slaney's scale."""
    hz = np.asarray(hz, dtype=np.float64)
    above = _KNEE_MEL + np.log(np.maximum(hz, _KNEE_HZ) / _KNEE_HZ) / _LOG_STEP
    return np.where(hz >= _KNEE_HZ, above, hz / _LINEAR_HZ_PER_MEL)


def mel_to_hz(mel):
    """Mel -> frequency (Hz): hz_to_mel's inverse."""
    mel = np.asarray(mel, dtype=np.float64)
    above = _KNEE_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _KNEE_MEL) - _KNEE_MEL))
    return np.where(mel >= _KNEE_MEL, above, _LINEAR_HZ_PER_MEL * mel)


def mel_filterbank(n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float = SAMPLE_RATE / 2,
                   sample_rate: int = SAMPLE_RATE) -> np.ndarray:  # fmt: skip
    """[n_mels, 1 + n_fft // 2] float32: triangles evenly spaced on the mel scale, each scaled to constant energy
    (Slaney's norm), as librosa.filters.mel makes them by default (tests/test_mel.py holds the two equal).

    Built here, not taken from librosa: importing librosa costs about a second per process, and every stage that
    draws or scores mels (most of a run's jobs) needs nothing else of it.
    """
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    width = np.diff(edges)
    rising = (bins - edges[:-2, None]) / width[:-1, None]
    falling = (edges[2:, None] - bins) / width[1:, None]
    weights = np.maximum(0, np.minimum(rising, falling)).astype(np.float32)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights


@lru_cache(maxsize=8)
def _filters(params: MelParams):
    import torch

    return torch.from_numpy(mel_filterbank(params.n_fft, params.n_mels, params.fmin, params.fmax))


def mel_shape(shape: tuple[int, ...], params: MelParams = MelParams()) -> tuple[int, ...]:
    """Shape of log_mel's result for audio of `shape` ([N, samples] or [samples])."""
    return (*shape[:-1], params.n_mels, params.frames(shape[-1]))


def log_mel(audio, params: MelParams = MelParams(), batch: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Natural-log mel magnitude of float audio [N, samples] (or [samples]) -> [N, n_mels, frames].

    `audio` may be a memory map: it is read `batch` rows at a time (by default, about BATCH_SAMPLES
    samples' worth per batch, 16x that on several threads), and with `out` (e.g. an np.lib.format.open_memmap of mel_shape(audio.shape))
    nothing the size of the data is held in memory, however many hours it spans.
    """
    import torch  # here, not at the top: figure-only rules import MelParams without torch

    rows = audio if isinstance(audio, np.ndarray) else np.asarray(audio, np.float32)  # a memmap stays one
    squeeze = rows.ndim == 1
    rows = rows[None] if squeeze else rows
    batch = batch or max(1, BATCH_SAMPLES * (1 if torch.get_num_threads() == 1 else 16) // max(1, rows.shape[-1]))
    if out is None:
        out = np.empty(mel_shape(rows.shape, params), np.float32)
    window = torch.hann_window(params.win_length)
    fb = _filters(params)
    with torch.inference_mode():
        for i in range(0, len(rows), batch):
            chunk = torch.from_numpy(np.array(rows[i:i + batch], dtype=np.float32))  # a copy: memmaps are read-only
            spec = torch.stft(chunk, params.n_fft, params.hop_length, params.win_length, window,
                              center=True, pad_mode="reflect", return_complex=True).abs()  # fmt: skip
            out[i:i + batch] = torch.log(torch.clamp(fb @ spec, min=params.floor)).numpy()
    return out[0] if squeeze else out


def mel_range(mels, floor: float = MelParams.floor, chunk: int = 256) -> tuple[float, float]:
    """(low, high) of log-mels for `to_unit`: the floor's log, and the largest value (rounded up to a tenth).

    Read `chunk` rows at a time, so a memory-mapped mels.npy of any size is fine. A model keeps the
    range it was trained with in its file, so that its outputs are read back on the same scale.
    """
    high = max(float(np.max(mels[i:i + chunk])) for i in range(0, len(mels), chunk))
    return float(np.log(floor)), float(np.ceil(high * 10) / 10)


def to_unit(log_mels, low: float, high: float):
    """Natural-log mels -> [-1, 1] (low -> -1, high -> 1): the range a diffusion model's clean estimate is clipped to."""
    return (log_mels - low) * (2 / (high - low)) - 1


def from_unit(x, low: float, high: float):
    """The inverse of `to_unit`."""
    return (x + 1) * ((high - low) / 2) + low
