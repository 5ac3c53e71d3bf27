"""A pretrained audio embedding that runs offline: Resemblyzer's GE2E speaker encoder, 256-d.

The network (the Real-Time-Voice-Cloning speaker encoder, trained with the Generalized
End-to-End loss of Wan et al. 2018) is a 3-layer LSTM over 40-band mel frames (16 kHz, 25 ms
window, 10 ms hop); its last hidden state goes through a 256x256 linear layer and a ReLU and is
L2-normalised. Its weights ship inside the `resemblyzer` wheel (Apache-2.0), so nothing is
downloaded at run time. It learnt speech, not cries: a second, independent ruler for FAD.

Try it (after `pip install resemblyzer`):

    python -c "from cry_diffusion import pretrained as p, synth_cry; print(p.describe()); print(p.embed(synth_cry.synthesize_cry('pain', 1.0)).shape)"

Why we never import `resemblyzer`: its __init__ imports webrtcvad, which imports pkg_resources,
which recent setuptools no longer ships (this venv's 84.2.1 has none); and its loader calls
torch.load without weights_only. We read only its weight file, with weights_only=True, into the
copy of the network below, and compute the mel frames as its `audio.wav_to_mel_spectrogram`
does. Its webrtcvad silence trimming is left out: pauses are part of a cry, and generated audio
is judged as it is.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .mel import mel_filterbank
from .runtime import resolve_device

SAMPLE_RATE = 16_000
N_MELS, N_FFT, HOP = 40, 400, 160  # resemblyzer/hparams.py: 40 bands, 25 ms window, 10 ms step
PARTIAL_FRAMES = 160  # one partial utterance: 1.6 s of frames
RATE, MIN_COVERAGE = 1.3, 0.75  # embed_utterance's defaults: partials per second, last partial kept if this full
TARGET_DBFS = -30.0  # preprocess_wav raises quieter clips to this level (never lowers louder ones)
DIM = 256
PACKAGE, WEIGHTS = "resemblyzer", "pretrained.pt"


class SpeakerEncoder(nn.Module):
    """resemblyzer.VoiceEncoder's network, parameter names kept so its state dict loads strictly."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, DIM)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        e = torch.relu(self.linear(hidden[-1]))
        # the original divides by the bare norm: an all-negative pre-activation would give NaN
        return e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)


def weight_file() -> Path | None:
    """The installed wheel's pretrained.pt, found without executing the package's __init__."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / WEIGHTS).is_file():
            return Path(folder) / WEIGHTS
    return None


def available() -> bool:
    return weight_file() is not None


def describe() -> dict:
    path = weight_file()
    return {
        "name": "Resemblyzer GE2E speaker encoder (3-layer LSTM on 40-band mel frames)",
        "trained_on": "speech for speaker verification: LibriSpeech train, VoxCeleb1 dev and VoxCeleb2, "
                      "about 3200 h from 8371 speakers (Real-Time-Voice-Cloning, whose encoder this is)",
        "licence": "Apache-2.0 (resemblyzer wheel, weights included)",
        "package": PACKAGE,
        "weight_file": str(path) if path else None,
        "sample_rate": SAMPLE_RATE,
        "dim": DIM,
    }


@functools.lru_cache(maxsize=4)
def _model(device: str) -> SpeakerEncoder:
    path = weight_file()
    if path is None:
        raise RuntimeError(f"no {PACKAGE} weights installed: pip install {PACKAGE}")
    # the checkpoint also holds the GE2E loss's similarity scale and the optimiser state; only the network is wanted
    state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    net = SpeakerEncoder()
    net.load_state_dict({k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))})
    return net.eval().to(device)


def _partials(n_samples: int) -> tuple[list[int], int]:
    """resemblyzer's compute_partial_slices: first frame of each partial, and the padded length in samples."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round(SAMPLE_RATE / RATE / HOP))
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    coverage = (n_samples - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts = starts[:-1]
    return starts, (starts[-1] + PARTIAL_FRAMES) * HOP


def _louder(audio: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(np.square(audio, dtype=np.float64), axis=1, keepdims=True))
    gain = 10 ** (TARGET_DBFS / 20) / np.maximum(rms, 1e-12)
    # silence stays silence: the original's log10(0) would scale it by infinity
    return (audio * np.where((gain > 1) & (rms > 0), gain, 1.0)).astype(np.float32)


def _power_mel(audio: np.ndarray) -> np.ndarray:
    """[N, samples] -> [N, frames, 40] float32: the power mel frames resemblyzer's wav_to_mel_spectrogram gives
    (librosa.feature.melspectrogram's defaults: centred frames, zero-padded, periodic Hann window), to float32
    rounding (tests/test_pretrained.py)."""
    padded = np.pad(audio, ((0, 0), (N_FFT // 2, N_FFT // 2)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=1)[:, ::HOP]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    power = np.abs(np.fft.rfft(frames * window, axis=-1).astype(np.complex64)) ** 2
    return (power @ mel_filterbank(N_FFT, N_MELS, sample_rate=SAMPLE_RATE).T).astype(np.float32)


def embed(audio: np.ndarray, device="cpu", pad: str = "tile", batch: int = 256) -> np.ndarray:
    """Clips [N, samples] (float32, 16 kHz, equal length) -> L2-normalised embeddings [N, 256], float64.

    The network sees 1.6 s partials, one every ~0.77 s, whose embeddings are averaged and
    renormalised, as the original does. Where the last partial runs past the clip's end (always,
    for clips under 1.6 s) the clip is repeated to fill it (pad="tile"): the encoder keeps only
    its final LSTM state, and after the original's trailing zeros (pad="zeros", which matches
    resemblyzer to float32 rounding) that state has partly forgotten the clip; on 1-s cries the
    zeros ranked Gaussian noise closer to real cries than tone sweeps, tiling did not.
    device: "cpu", "cuda", or "auto" (the project's resolve_device).
    """
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    if len(audio) == 0 or audio.shape[1] == 0:
        raise ValueError(f"embed needs at least one non-empty clip, got shape {audio.shape}")
    if pad not in ("tile", "zeros"):
        raise ValueError(f"pad must be 'tile' or 'zeros', not {pad!r}")
    audio = _louder(audio)
    n = audio.shape[1]
    starts, length = _partials(n)
    if pad == "tile" and n < length:
        audio = np.tile(audio, (1, -(-length // n)))[:, :length]
    else:
        audio = np.pad(audio, ((0, 0), (0, max(0, length - n))))
    mel = _power_mel(audio)  # [N, frames, bands]: power mel, not log, as trained
    parts = np.stack([mel[:, s:s + PARTIAL_FRAMES] for s in starts], axis=1)  # [N, P, 160, 40]
    flat = torch.from_numpy(parts.reshape(-1, PARTIAL_FRAMES, N_MELS))
    device = resolve_device(device)
    net = _model(str(device))
    with torch.inference_mode():
        out = torch.cat([net(flat[i:i + batch].to(device)).cpu() for i in range(0, len(flat), batch)])
    e = out.double().numpy().reshape(len(audio), len(starts), DIM).mean(axis=1)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
