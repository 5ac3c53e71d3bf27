"""Log-mel spectrograms as the paper draws them: 80 bands, 25 ms window, 10 ms hop, 16 kHz.

One implementation serves the data stage, the figures and the evaluation, so a
real and a generated cry are always compared through the same lens.

    from cry_diffusion.mel import MelParams, log_mel
    mels = log_mel(segments, MelParams())     # [N, 80, frames], natural log
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from . import SAMPLE_RATE


@dataclass(frozen=True)
class MelParams:
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

    @classmethod
    def from_dict(cls, d: dict) -> "MelParams":
        return cls(**{k: d[k] for k in asdict(cls()) if k in d})


@lru_cache(maxsize=8)
def _filters(params: MelParams):
    import librosa
    import torch

    fb = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=params.n_fft, n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax)
    return torch.from_numpy(fb.astype(np.float32))


def log_mel(audio, params: MelParams = MelParams(), batch: int = 256) -> np.ndarray:
    """Natural-log mel magnitude of float audio [N, samples] (or [samples]) -> [N, n_mels, frames]."""
    import torch  # here, not at the top: figure-only rules import MelParams without torch

    x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    squeeze = x.ndim == 1
    x = x.reshape(-1, x.shape[-1])
    window = torch.hann_window(params.win_length)
    fb = _filters(params)
    out = []
    with torch.inference_mode():
        for chunk in x.split(batch):
            spec = torch.stft(chunk, params.n_fft, params.hop_length, params.win_length, window,
                              center=True, pad_mode="reflect", return_complex=True).abs()  # fmt: skip
            out.append(torch.log(torch.clamp(fb @ spec, min=params.floor)))
    mels = torch.cat(out).numpy() if out else np.zeros((0, params.n_mels, params.frames(x.shape[-1])), np.float32)
    return mels[0] if squeeze else mels
