"""The mel route's first half: a diffusion model that generates log-mel spectrograms of cries.

Waveform DiffWave must learn a cry's pitch period (about 40 samples at 400 Hz) sample by sample. In
an 80-band log-mel, 100 frames a second, the same pitch is a set of horizontal stripes that a small
network sees at once; a vocoder (cry_diffusion.vocoder) then makes audio of them. This is how the
field generates non-speech vocalizations (ExVo 2022's vocal bursts), and DiffWave's own headline
result is its mel-conditioned vocoder.

The network is DiffWave's own (cry_diffusion.model): gated residual layers of dilated convolutions
with the diffusion step (and the category) added in every layer, run here over mel frames with the
bands as channels. Dilations are in frames, so a cycle of 1..32 covers a cry unit (0.5-1.5 s) in a
few layers. It learns log-mels scaled to [-1, 1] (cry_diffusion.mel.to_unit, with the range kept in
the model file) and samples with the project's samplers (cry_diffusion.diffusion): the same step
counts, eps or v prediction, Min-SNR weighting, DDIM and DPM-Solver++, and classifier-free guidance.

    from cry_diffusion import mel_prior
    log_mels, info = mel_prior.generate("results/embedded/mel_prior/model.pt", n=8, seconds=1.0, steps=200)

(python -m cry_diffusion.generator makes WAVs of them, through a vocoder.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checkpoint import read_network
from . import SAMPLE_RATE
from .generate import sample_from
from .mel import MelParams, from_unit
from .model import DiffWave, ModelParams
from .runtime import start

NETWORK = "mel_prior"  # what its model file says it holds


@dataclass
class PriorParams(ModelParams):
    residual_layers: int = 12
    residual_channels: int = 256  # wider than the waveform model: 80 bands in and out of every position
    dilation_cycle: int = 6  # dilations 1..32 frames: two cycles see about 2.5 s
    n_mels: int = 80  # bands of the log-mels it generates (the mel stage's mel.n_mels)


class MelPrior(DiffWave):
    """DiffWave over log-mels [B, n_mels, frames]: the bands are its data channels."""

    def __init__(self, params: PriorParams | None = None):
        params = params or PriorParams()
        super().__init__(params, data_channels=params.n_mels)


def load(path, device="cpu") -> tuple[MelPrior, dict]:
    """A prior's model file (cry_diffusion.mel_prior_train) -> (the network with its EMA weights, in eval mode; the file)."""
    ckpt = read_network(path, NETWORK, "a mel prior")
    model = MelPrior(PriorParams.from_dict(ckpt["model_params"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


def frames(seconds: float, mel: MelParams) -> int:
    """Frames of the log-mel of `seconds` of audio, as the mel stage computes them (centred frames)."""
    return mel.frames(round(seconds * SAMPLE_RATE))


def generate(model_path, n: int, seconds: float, steps: int, seed: int = 0, labels=None, guidance_scale: float = 1.0,
             batch_size: int = 16, device="auto", threads: int = 0, precision: str = "auto", graph: str = "auto",
             ddim_spacing: str = "logsnr", solver: str = "ddim") -> tuple[np.ndarray, dict]:
    """n log-mels for clips of `seconds` -> (float32 [n, n_mels, frames], natural log as mels.npy; info dict).

    info holds the mel settings the prior was trained on ("mel_params"): a vocoder must read them so.

    The arguments are cry_diffusion.generate.generate's: labels "each" cycles through a conditional
    prior's categories, and the same seed gives the same mels on the same kind of device.
    """
    device = start(device, threads)
    model, ckpt = load(model_path, device)
    mel = MelParams.from_dict(ckpt["mel_params"])
    shape = (model.params.n_mels, frames(seconds, mel))
    x, info = sample_from(model, ckpt, n, shape, seconds, steps, seed, labels, guidance_scale, batch_size, device,
                          precision, graph, ddim_spacing, solver)
    clip = ckpt["diffusion_params"].get("clip", 1.0)
    return from_unit(x / clip, *ckpt["mel_range"]).astype(np.float32), info | {"network": NETWORK, "mel_params": mel.to_dict()}
