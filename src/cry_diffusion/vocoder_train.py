"""The pipeline's `train_vocoder` stage as one library call: segments and their log-mels in, DiffWave's vocoder out.

    from cry_diffusion.vocoder_train import train_vocoder
    train_vocoder("segments.npy", "mels.npy", "segments.csv", "vocoder.pt", "loss.csv", "checkpoints",
                  model_config={}, diffusion_config={"steps": 50, "beta_end": 0.05}, train_config={"steps": 1000},
                  mel_config={})

A batch is batch_size random crops of the training segments, each with the log-mel frames that
cover it (frame j conditions samples j*hop .. (j+1)*hop - 1), scaled to [-1, 1] by the training
log-mels' range. The loop is cry_diffusion.loop's: resumable, its loss history whole.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from . import SAMPLE_RATE
from .loop import TrainParams, fit
from .mel import MelParams, mel_range, to_unit
from .segment import Rows, read_table
from .train_dataset import run_folder, training_rows
from .vocoder import NETWORK, MelDiffWave, VocoderDiffusionParams, VocoderParams

log = logging.getLogger("cry_diffusion.train")


def train_vocoder(segments_npy, mels_npy, table_csv, out_path, loss_csv, checkpoint_root, model_config: dict,
                  diffusion_config: dict, train_config: dict, mel_config: dict, device: str = "auto",
                  threads: int = 0) -> Path:  # fmt: skip
    """Train the mel-conditioned DiffWave on the training side of a dataset; returns out_path.

    The *_config arguments are the config's `vocoder.diffwave` sections and `mel`. train.crop_seconds
    is rounded down to whole frames (null: whole segments).
    """
    table = read_table(table_csv)
    segments, mels = np.load(segments_npy, mmap_mode="r"), np.load(mels_npy, mmap_mode="r")
    rows = training_rows(table, table_csv)
    mel = MelParams.from_dict(mel_config)
    hop, length = mel.hop_length, segments.shape[1]
    crop_seconds = train_config.get("crop_seconds") or length / SAMPLE_RATE
    tp = TrainParams.from_dict(train_config, crop_samples=int(round(crop_seconds * SAMPLE_RATE)), threads=threads)
    frames = max(1, min(tp.crop_samples, length) // hop)  # of a crop: whole frames, the audio hop-aligned to them
    mp = VocoderParams.from_dict(model_config, n_mels=mels.shape[1], hop=hop)
    dp = VocoderDiffusionParams.from_dict(diffusion_config)
    index = rows["index"].to_numpy()
    real = torch.as_tensor(length - rows["padded_samples"].to_numpy())  # real audio at each segment's start
    low, high = mel_range(Rows(mels, index), mel.floor)
    run = run_folder(checkpoint_root, table_csv, mp, dp, tp, ("padding",), network=NETWORK, mel=mel.to_dict())
    log.info("%d training segments, crops of %d frames (%d samples), log-mel range [%.2f, %.2f]; checkpoints in %s",
             len(rows), frames, frames * hop, low, high, run)  # fmt: skip
    last_start = ((real - frames * hop).clamp(min=0) // hop).long()  # the last frame a crop inside the real audio starts at

    def draw(gen):
        picks = torch.randint(len(index), (tp.batch_size,), generator=gen)
        starts = (torch.rand(tp.batch_size, generator=gen) * (last_start[picks] + 1)).long()
        audio = np.zeros((tp.batch_size, frames * hop), np.float32)
        cond = np.zeros((tp.batch_size, mels.shape[1], frames), np.float32)
        for k, (i, s) in enumerate(zip(index[picks.numpy()].tolist(), starts.tolist())):
            piece = segments[i, s * hop:(s + frames) * hop]
            audio[k, :len(piece)] = piece
            cond[k] = mels[i, :, s:s + frames]
        crop_real = (real[picks] - starts * hop).clamp(min=0, max=frames * hop)
        return torch.from_numpy(audio), to_unit(torch.from_numpy(cond), low, high).clamp(-1, 1), crop_real

    fit(lambda device: MelDiffWave(mp).to(device), draw, mp, dp, tp, out_path, run, loss_csv, device,
        extra={"network": NETWORK, "mel_range": [low, high], "mel_params": mel.to_dict()})
    return Path(out_path)
