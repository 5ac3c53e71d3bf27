"""The pipeline's `train` stage as one library call: a segmented dataset in, a trained model out.

    from cry_diffusion.train_dataset import train_dataset
    train_dataset("segments.npy", "segments.csv", "model.pt", "loss.csv", "checkpoints",
                  model_config={}, diffusion_config={}, train_config={"steps": 1000})

It picks the training side of the split, turns categories into labels for a conditional
model, and keys the checkpoint folder by everything that shapes the weights; the loop
itself is cry_diffusion.train.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from . import SAMPLE_RATE
from .atomic import atomic_path
from .checkpoint import checkpoints, step_of
from .diffusion import DiffusionParams
from .model import ModelParams
from .segment import Rows, read_table, side
from .train import TrainParams, train

log = logging.getLogger("cry_diffusion.train")

# Settings that don't change what is learned: a run with other values resumes the same checkpoints. (The workflow
# also keeps log_every and checkpoint_every out of the train rule's rerun check: workflow/rules/common.smk, CADENCE.)
NOT_IN_RUN_KEY = ("steps", "checkpoint_every", "log_every", "threads", "compile", "layer_kernel", "snapshot_every")


def train_dataset(segments_npy, table_csv, out_path, loss_csv, checkpoint_root, model_config: dict,
                  diffusion_config: dict, train_config: dict, device: str = "auto", threads: int = 0,
                  snapshots_out=None) -> Path:  # fmt: skip
    """Train on the training side of a segmented dataset; returns out_path.

    The *_config arguments are the config file's `model`, `diffusion` and `train` sections. Checkpoints go to
    checkpoint_root/<run key>, a hash of everything that shapes the weights except
    the step count, so raising train.steps continues the same run. snapshots_out: a folder that
    receives the run's snapshots (train.snapshot_every) up to train.steps, and nothing else.
    """
    table = read_table(table_csv)
    segments = np.load(segments_npy, mmap_mode="r")
    rows = side(table, "train")
    if not len(rows):
        raise ValueError(f"{table_csv}: no segments in the training split")
    class_names, labels = None, None
    if model_config.get("conditional"):
        class_names = sorted(set(rows["category"]) - {""})
        if not class_names:
            raise ValueError(f"model.conditional is on but {table_csv} has no categories to condition on: give the "
                             "dataset categories (its category: setting) or set model.conditional: false")
        known = {name: k for k, name in enumerate(class_names)}
        # uncategorised segments (category.unlabelled: keep) train the null class, as label dropout does
        labels = rows["category"].map(lambda c: known.get(c, len(class_names))).to_numpy()
        if uncategorised := int((labels == len(class_names)).sum()):
            log.info("%d of %d training segments are uncategorised: they train the null (unconditional) class",
                     uncategorised, len(labels))  # fmt: skip
    crop = train_config.get("crop_seconds") or segments.shape[1] / SAMPLE_RATE
    tp = TrainParams.from_dict(train_config, crop_samples=int(round(crop * SAMPLE_RATE)), threads=threads)
    mp = ModelParams.from_dict(model_config, num_classes=len(class_names or []))
    dp = DiffusionParams.from_dict(diffusion_config)
    padded = rows["padded_samples"].to_numpy()
    # padding shapes the weights only where something is padded: runs from before the setting keep their key
    ignored = NOT_IN_RUN_KEY + (() if padded.any() or tp.crop_samples > segments.shape[1] else ("padding",))
    identity = {"model": mp.to_dict(), "diffusion": dp.to_dict(),
                "train": {k: v for k, v in tp.to_dict().items() if k not in ignored},
                "data": hashlib.sha256(Path(table_csv).read_bytes()).hexdigest()}  # fmt: skip
    if (world := int(os.environ.get("WORLD_SIZE", "1"))) > 1:  # batch_size is per process, crops and noise per rank:
        identity["world_size"] = world  # N processes learn other weights than one (one process keeps its old key)
    run_key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    log.info("%d training segments, %s; checkpoints in %s/%s", len(rows),
             f"classes {class_names}" if class_names else "unconditional", checkpoint_root, run_key)  # fmt: skip
    run = Path(checkpoint_root) / run_key
    train(Rows(segments, rows["index"]), labels, mp, dp, tp, out_path, run, loss_csv, class_names=class_names,
          device=device, padded=padded)  # fmt: skip
    if snapshots_out is not None and int(os.environ.get("RANK", "0")) == 0:
        _publish(checkpoints(run / "snapshots"), Path(snapshots_out), tp)
    return Path(out_path)


def _publish(snapshots: list[Path], folder: Path, tp: TrainParams) -> None:
    """The snapshots this run's settings ask for, linked (or copied) into `folder`, which holds nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in checkpoints(folder):
        old.unlink()
    wanted = set(range(tp.snapshot_every, tp.steps + 1, tp.snapshot_every)) if tp.snapshot_every else set()
    if missing := sorted(wanted - {step_of(p) for p in snapshots}):
        # a run that passed these steps with snapshots off (or another snapshot_every) can't make them now
        log.warning("no snapshot of steps %s: training passed them with other settings; the progress curve "
                    "leaves them out (remove the run's checkpoint folder to retrain with snapshots)", missing)
    for path in snapshots:
        if step_of(path) in wanted:
            try:
                os.link(path, folder / path.name)
            except OSError:  # another file system
                with atomic_path(folder / path.name) as tmp:
                    shutil.copyfile(path, tmp)
