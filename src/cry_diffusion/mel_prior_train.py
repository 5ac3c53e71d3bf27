"""The pipeline's `train_prior` stage as one library call: the mel stage's log-mels in, a mel prior out.

    from cry_diffusion.mel_prior_train import train_prior
    train_prior("mels.npy", "segments.csv", "prior.pt", "loss.csv", "checkpoints",
                model_config={}, diffusion_config={"prediction": "v"}, train_config={"steps": 1000}, mel_config={})

The training side of the split, as the waveform route's stage takes it (cry_diffusion.train_dataset):
the same categories, run key, snapshots and resumable loop (cry_diffusion.loop). A batch is a random
crop of frames from each of batch_size log-mels, scaled to [-1, 1] by the training log-mels' range.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from . import SAMPLE_RATE
from .diffusion import DiffusionParams
from .loop import TrainParams, crop_batch, drop_labels, fit, padding
from .mel import MelParams, mel_range, to_unit
from .mel_prior import NETWORK, MelPrior, PriorParams
from .segment import Rows, read_table
from .train import check_labels
from .train_dataset import categories, publish, run_folder, training_rows

log = logging.getLogger("cry_diffusion.train")


def train_prior(mels_npy, table_csv, out_path, loss_csv, checkpoint_root, model_config: dict, diffusion_config: dict,
                train_config: dict, mel_config: dict, device: str = "auto", threads: int = 0,
                snapshots_out=None) -> Path:  # fmt: skip
    """Train a mel prior on the training side of a dataset's log-mels (the mel stage's mels.npy); returns out_path.

    The *_config arguments are the config's `mel_prior` sections and `mel`. train.crop_seconds crops
    that many seconds of frames (null: whole segments).
    """
    table = read_table(table_csv)
    mels = np.load(mels_npy, mmap_mode="r")
    rows = training_rows(table, table_csv)
    class_names, labels = categories(rows, model_config.get("conditional"), table_csv)
    mel = MelParams.from_dict(mel_config)
    length = mels.shape[2]
    samples = (length - 1) * mel.hop_length  # the segments' length (the mel stage's frames are centred: one per hop, plus one)
    crop_seconds = train_config.get("crop_seconds") or samples / SAMPLE_RATE
    tp = TrainParams.from_dict(train_config, crop_samples=int(round(crop_seconds * SAMPLE_RATE)), threads=threads)
    crop = min(length, tp.crop_samples // mel.hop_length + 1)
    mp = PriorParams.from_dict(model_config, num_classes=len(class_names or []), n_mels=mels.shape[1])
    dp = DiffusionParams.from_dict(diffusion_config)
    check_labels(labels, len(rows), mp.num_classes, class_names)
    # a frame is real when its centre lies in the segment's real audio; the rest is padding, left out of the loss
    real_frames = np.minimum((samples - rows["padded_samples"].to_numpy()) // mel.hop_length + 1, length)
    train_mels = Rows(mels, rows["index"])
    low, high = mel_range(train_mels, mel.floor)
    data, labels, real = padding(train_mels, labels, length - real_frames, length, crop, tp)
    ignored = () if (length - real_frames).any() or crop > length else ("padding",)
    run = run_folder(checkpoint_root, table_csv, mp, dp, tp, ignored, network=NETWORK, mel=mel.to_dict())
    log.info("%d training log-mels %s, range [%.2f, %.2f], crops of %d frames, %s; checkpoints in %s", len(rows),
             mels.shape[1:], low, high, crop, f"classes {class_names}" if class_names else "unconditional", run)

    def draw(gen):
        x, lab, crop_real = crop_batch(data, labels, real, crop, tp.batch_size, gen)
        x = to_unit(x, low, high).clamp(-1, 1) * dp.clip  # the log-mels in the diffusion's range, [-clip, clip]
        return x, drop_labels(lab, mp.num_classes, tp.label_drop, gen), crop_real

    fit(lambda device: MelPrior(mp).to(device), draw, mp, dp, tp, out_path, run, loss_csv, device,
        extra={"network": NETWORK, "class_names": class_names, "mel_range": [low, high], "mel_params": mel.to_dict()})
    publish(run, snapshots_out, tp)
    return Path(out_path)
