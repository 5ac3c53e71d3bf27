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
# also keeps log_every and checkpoint_every out of the train rule's rerun check: cry_diffusion.workflow_config.CADENCE.)
NOT_IN_RUN_KEY = ("steps", "checkpoint_every", "log_every", "threads", "compile", "layer_kernel", "snapshot_every")
ADDED_LATER = {"clip": 1.0}  # diffusion settings added after runs were made, with the default those runs had


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
    rows = training_rows(table, table_csv)
    class_names, labels = categories(rows, model_config.get("conditional"), table_csv)
    crop = train_config.get("crop_seconds") or segments.shape[1] / SAMPLE_RATE
    tp = TrainParams.from_dict(train_config, crop_samples=int(round(crop * SAMPLE_RATE)), threads=threads)
    mp = ModelParams.from_dict(model_config, num_classes=len(class_names or []))
    dp = DiffusionParams.from_dict(diffusion_config)
    padded = rows["padded_samples"].to_numpy()
    # padding shapes the weights only where something is padded: runs from before the setting keep their key
    ignored = () if padded.any() or tp.crop_samples > segments.shape[1] else ("padding",)
    run = run_folder(checkpoint_root, table_csv, mp, dp, tp, ignored)
    log.info("%d training segments, %s; checkpoints in %s", len(rows),
             f"classes {class_names}" if class_names else "unconditional", run)  # fmt: skip
    train(Rows(segments, rows["index"]), labels, mp, dp, tp, out_path, run, loss_csv, class_names=class_names,
          device=device, padded=padded)  # fmt: skip
    publish(run, snapshots_out, tp)
    return Path(out_path)


def training_rows(table, table_csv):
    """The training side of a segment table, or an error naming the file when it is empty."""
    rows = side(table, "train")
    if not len(rows):
        raise ValueError(f"{table_csv}: no segments in the training split")
    return rows


def categories(rows, conditional: bool, table_csv) -> tuple[list[str] | None, np.ndarray | None]:
    """(class names, a label per row) for a conditional model; (None, None) for an unconditional one.

    Uncategorised segments (category.unlabelled: keep) get the null class, len(class names), which
    they train as label dropout does.
    """
    if not conditional:
        return None, None
    class_names = sorted(set(rows["category"]) - {""})
    if not class_names:
        raise ValueError(f"model.conditional is on but {table_csv} has no categories to condition on: give the "
                         "dataset categories (its category: setting) or set model.conditional: false")
    known = {name: k for k, name in enumerate(class_names)}
    labels = rows["category"].map(lambda c: known.get(c, len(class_names))).to_numpy()
    if uncategorised := int((labels == len(class_names)).sum()):
        log.info("%d of %d training segments are uncategorised: they train the null (unconditional) class",
                 uncategorised, len(labels))  # fmt: skip
    return class_names, labels


def run_folder(checkpoint_root, table_csv, mp, dp, tp: TrainParams, ignored=(), **more) -> Path:
    """checkpoint_root/<run key>: a hash of everything that shapes the weights (the data, the params, `more`).

    Not the step count or anything else in NOT_IN_RUN_KEY (nor `ignored`), so raising train.steps
    continues the same run.
    """
    # a diffusion setting added since runs began, at its default, is left out: those runs keep their key and resume
    diffusion = {k: v for k, v in dp.to_dict().items() if not (k in ADDED_LATER and v == ADDED_LATER[k])}
    identity = {"model": mp.to_dict(), "diffusion": diffusion,
                "train": {k: v for k, v in tp.to_dict().items() if k not in NOT_IN_RUN_KEY + tuple(ignored)},
                "data": hashlib.sha256(Path(table_csv).read_bytes()).hexdigest()} | more  # fmt: skip
    if (world := int(os.environ.get("WORLD_SIZE", "1"))) > 1:  # batch_size is per process, crops and noise per rank:
        identity["world_size"] = world  # N processes learn other weights than one (one process keeps its old key)
    return Path(checkpoint_root) / hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def publish(run: Path, snapshots_out, tp: TrainParams) -> None:
    """The run's snapshots that train.snapshot_every asks for, into `snapshots_out` (None: nowhere); rank 0 only."""
    if snapshots_out is not None and int(os.environ.get("RANK", "0")) == 0:
        _publish(checkpoints(run / "snapshots"), Path(snapshots_out), tp)


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
