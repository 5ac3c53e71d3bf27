"""The mel route's second half: log-mel spectrograms to audio.

Two vocoders, each a config choice (`vocoder.kinds`) and each scored on its own:

- "griffin_lim": no training. The mel magnitudes go back to a linear spectrogram (non-negative
  least squares through the same mel filters, librosa), whose phase Griffin-Lim's iterations
  recover (fast Griffin-Lim, momentum 0.99). Pitch survives it; a metallic, phasey sound is its mark.
- "diffwave": DiffWave's own vocoder (Kong et al. 2021, the model behind its MOS 4.44): the waveform
  network of cry_diffusion.model with the log-mel upsampled to the 160-sample hop by two transposed
  convolutions and added, through a 1x1 convolution, to every residual layer's dilated convolution.
  Trained on the training segments' (audio, log-mel) pairs (cry_diffusion.vocoder_train), it
  samples with DiffWave's fast 6-step schedule.

A vocoder's ceiling is copy synthesis: held-out real log-mels through it, scored as one more set
(`copy-synthesis-<vocoder>`). No prior can sound better than its vocoder does on real mels.

    python -m cry_diffusion.vocoder --mels mels.npy --kind griffin_lim --out audio.npy
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import SAMPLE_RATE
from .checkpoint import read_network
from .diffusion import DiffusionParams
from .mel import MelParams, log_mel, to_unit
from .model import DiffWave, ModelParams
from .params import Params

VOCODERS = ("griffin_lim", "diffwave")
NETWORK = "vocoder"  # what a trained vocoder's model file says it holds


@dataclass(frozen=True)
class GriffinLimParams(Params):
    iterations: int = 32  # phase-recovery iterations (librosa's default)
    momentum: float = 0.99  # fast Griffin-Lim (Perraudin et al. 2013)


def griffin_lim(log_mels: np.ndarray, mel: MelParams, samples: int, p: GriffinLimParams = GriffinLimParams(),
                seed: int = 0) -> np.ndarray:  # fmt: skip
    """Natural-log mels [N, n_mels, frames] (as cry_diffusion.mel.log_mel makes them) -> audio [N, samples]."""
    import librosa

    rng = np.random.default_rng(seed)
    out = np.zeros((len(log_mels), samples), np.float32)
    for i, m in enumerate(np.asarray(log_mels, np.float64)):
        magnitude = librosa.feature.inverse.mel_to_stft(np.exp(m), sr=SAMPLE_RATE, n_fft=mel.n_fft, power=1.0,
                                                        fmin=mel.fmin, fmax=mel.fmax)  # fmt: skip
        y = librosa.griffinlim(magnitude, n_iter=p.iterations, hop_length=mel.hop_length, win_length=mel.win_length,
                               window="hann", center=True, length=samples, momentum=p.momentum, init="random",
                               random_state=rng)  # fmt: skip
        out[i] = np.clip(y, -1, 1)
    return out


@dataclass
class VocoderParams(ModelParams):
    residual_layers: int = 12
    residual_channels: int = 32
    dilation_cycle: int = 6  # dilations 1..32 samples: with the mel given, it needs to see a few pitch periods, not a cry
    n_mels: int = 80  # bands of its input log-mels (mel.n_mels)
    hop: int = 160  # samples per mel frame (mel.hop_ms at 16 kHz): the upsampler's total stride


@dataclass(frozen=True)
class VocoderDiffusionParams(DiffusionParams):
    steps: int = 50  # DiffWave's vocoder: T = 50, betas linear to 0.05, sampled by the fast 6-step schedule
    beta_end: float = 0.05


def _strides(hop: int) -> tuple[int, int]:
    """Two strides whose product is hop, as near each other as they come (160 -> 10, 16)."""
    low = max(d for d in range(1, int(hop**0.5) + 1) if hop % d == 0)
    return low, hop // low


class MelDiffWave(DiffWave):
    """DiffWave conditioned on a log-mel: forward(audio [B, T], step [B], mel [B, n_mels, frames]) -> eps [B, T].

    mel is scaled to [-1, 1] (cry_diffusion.mel.to_unit with the model file's range); frame j
    conditions samples j*hop .. (j+1)*hop - 1.
    """

    def __init__(self, params: VocoderParams | None = None):
        params = params or VocoderParams()
        super().__init__(params)
        self.upsampler = nn.ModuleList(nn.ConvTranspose2d(1, 1, (3, 2 * s), stride=(1, s), padding=(1, s // 2))
                                       for s in _strides(params.hop))  # fmt: skip
        # every layer's conditioner projection as one 1x1 convolution (rows [2C i, 2C (i+1)) = layer i)
        self.conditioner = nn.Conv1d(params.n_mels, 2 * params.residual_channels * params.residual_layers, 1)

    def use_layer_kernel(self, kernel: str, device) -> MelDiffWave:
        if kernel != "torch":
            raise ValueError("the vocoder's residual layers run as PyTorch ops only (the fused kernels take no conditioner)")
        return self

    def upsample(self, mel: torch.Tensor, samples: int) -> torch.Tensor:
        x = mel.unsqueeze(1)
        for conv in self.upsampler:
            x = F.leaky_relu(conv(x), 0.4)
        return x.squeeze(1)[..., :samples]

    def forward(self, audio: torch.Tensor, step: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        conditioners = self.conditioner(self.upsample(mel, audio.shape[-1])).chunk(self.params.residual_layers, dim=1)
        return super().forward(audio, step, None, list(conditioners))


def load(path, device="cpu") -> tuple[MelDiffWave, dict]:
    """A trained vocoder's model file (cry_diffusion.vocoder_train) -> (the network with its EMA weights, eval mode; the file)."""
    ckpt = read_network(path, NETWORK, "a vocoder")
    model = MelDiffWave(VocoderParams.from_dict(ckpt["model_params"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


def vocode(log_mels: np.ndarray, kind: str, mel: MelParams, samples: int, model_path=None, steps: int | None = None,
           seed: int = 0, batch_size: int = 16, device="cpu", threads: int = 0,
           griffin: GriffinLimParams = GriffinLimParams()) -> tuple[np.ndarray, dict]:  # fmt: skip
    """Log-mels [N, n_mels, frames] (natural log) -> (audio float32 [N, samples] in [-1, 1], info).

    kind: one of VOCODERS; "diffwave" needs model_path, and samples with `steps` of its
    diffusion (None: its fast schedule, DiffWave's 6 steps). info: the vocoder, its settings and its wall time.
    """
    if kind not in VOCODERS:
        raise ValueError(f"vocoder must be one of {VOCODERS}, got {kind!r}")
    start = time.perf_counter()
    if kind == "griffin_lim":
        audio = griffin_lim(log_mels, mel, samples, griffin, seed)
        info = {"vocoder": kind, "iterations": griffin.iterations, "momentum": griffin.momentum}
    else:
        from .generate import sample_from
        from .runtime import start as start_device

        if model_path is None:
            raise ValueError("the diffwave vocoder needs its trained model file")
        device = start_device(device, threads)
        model, ckpt = load(model_path, device)
        if MelParams.from_dict(ckpt["mel_params"]) != mel:
            raise ValueError(f"{model_path} was trained on log-mels of other settings ({ckpt['mel_params']}) than "
                             f"these ({mel.to_dict()}): retrain it (the workflow does this itself)")
        condition = torch.from_numpy(to_unit(np.asarray(log_mels, np.float32), *ckpt["mel_range"])).clamp(-1, 1)
        fast = len(ckpt["diffusion_params"]["fast_betas"])
        audio, sampled = sample_from(model, ckpt, len(log_mels), samples, samples / SAMPLE_RATE, steps or fast, seed,
                                     batch_size=batch_size, device=device, precision="fp32", graph="off",
                                     condition=condition)  # fmt: skip
        info = {"vocoder": kind, "sampler": sampled["sampler"], "steps": sampled["steps"], "model_step": ckpt["step"],
                "model_elapsed_seconds": ckpt["elapsed_seconds"], "device": sampled["device"]}
    wall = time.perf_counter() - start
    return audio.astype(np.float32), info | {"wall_seconds": wall, "wall_seconds_per_audio_second":
                                             wall / max(len(log_mels) * samples / SAMPLE_RATE, 1e-9)}


def copy_synthesis(real: np.ndarray, kind: str, mel: MelParams, **vocoding) -> tuple[np.ndarray, dict]:
    """Real clips [N, samples] made log-mels (as the mel stage makes them) and audio again by a vocoder: its ceiling.

    vocoding: `vocode`'s other arguments. The workflow passes the real floor's held-out clips, so that
    the ceiling is scored on the very clips the floor is: a perfect vocoder would score as the floor does.
    """
    audio, info = vocode(log_mel(np.asarray(real, np.float32), mel), kind, mel, real.shape[1], **vocoding)
    return audio, info | {"n": len(audio), "seconds": real.shape[1] / SAMPLE_RATE, "label_names": None,
                          "sampler": "copy synthesis"}


def main(argv=None) -> None:
    import json

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mels", required=True, help=".npy of natural-log mels [N, n_mels, frames]")
    ap.add_argument("--kind", default="griffin_lim", choices=VOCODERS)
    ap.add_argument("--model", help="the trained vocoder (kind diffwave)")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--out", required=True, help=".npy of the audio [N, samples]")
    a = ap.parse_args(argv)
    audio, info = vocode(np.load(a.mels), a.kind, MelParams(), round(a.seconds * SAMPLE_RATE), a.model)
    np.save(a.out, audio)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
