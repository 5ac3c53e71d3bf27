"""Train DiffWave on fixed-length audio segments: resumable, on a CPU, one GPU, or several.

    python -m cry_diffusion.train --segments segments.npy --out model.pt \
        --checkpoint-dir checkpoints --loss-csv loss.csv --steps 1000
    torchrun --nproc_per_node 2 -m cry_diffusion.train ...   (same arguments)

Run the same command again after a crash, SIGKILL or SIGTERM: it resumes from the newest
checkpoint in --checkpoint-dir and stops at the same total --steps, with the same weights an
uninterrupted run gets (bit for bit on a CPU with the same thread count). SIGTERM finishes the
step in progress, checkpoints it and exits with status 143 (under torchrun: at the next loss row,
the ranks must agree on the step). Under torchrun, --batch-size is per process: the global batch
is batch_size * WORLD_SIZE, and only rank 0 writes checkpoints, the loss CSV and the model.

The model file (--out) holds: model (the EMA weights), weights ("ema"), step, elapsed_seconds,
model_params, diffusion_params, train_params, class_names, world_size; load it with
cry_diffusion.generate.load_model. With --snapshot-every N, the same file is kept every N
steps as <checkpoint-dir>/snapshots/step-NNNNNNN.pt, to measure quality against training time.
"""

from __future__ import annotations

import argparse
import logging
import os

import numpy as np

from .diffusion import DiffusionParams
from .loop import TrainParams, crop_batch, drop_labels, fit, padding
from .model import DiffWave, ModelParams
from .params import add_arguments

log = logging.getLogger("cry_diffusion.train")


def train(segments: np.ndarray, labels: np.ndarray | None, model_params: ModelParams,
          diffusion_params: DiffusionParams, train_params: TrainParams, out_path, checkpoint_dir, loss_csv,
          class_names: list[str] | None = None, device="auto", padded=None):
    """Train (or resume) DiffWave and write the EMA model to `out_path`; returns out_path.

    segments: float32 [N, samples] (a np.memmap is fine: only the crops are read);
    labels: int [N] in [0, num_classes] for a class-conditional model (num_classes: the null class), else None;
    padded: int [N] zero samples padded onto each segment's end (None: none), which
    train_params.padding masks out of the loss or drops. The loop itself is cry_diffusion.loop.fit.
    """
    n_classes, tp = model_params.num_classes, train_params
    if segments.ndim != 2 or len(segments) == 0:
        raise ValueError(f"segments must be a non-empty [N, samples] array, got shape {segments.shape}")
    check_labels(labels, len(segments), n_classes, class_names)
    segments, labels, real = padding(segments, labels, padded, segments.shape[1], tp.crop_samples, tp)

    def build(device):
        return DiffWave(model_params).use_layer_kernel(tp.layer_kernel, device).to(device)

    def draw(gen):
        audio, lab, crop_real = crop_batch(segments, labels, real, tp.crop_samples, tp.batch_size, gen)
        return audio, drop_labels(lab, n_classes, tp.label_drop, gen), crop_real

    return fit(build, draw, model_params, diffusion_params, tp, out_path, checkpoint_dir, loss_csv, device,
               extra={"class_names": list(class_names) if class_names else None})


def check_labels(labels, n: int, n_classes: int, class_names) -> None:
    """Labels exactly when the model has classes, one per segment, in [0, n_classes] (n_classes: the null class)."""
    if (labels is not None) != (n_classes > 0):
        raise ValueError("labels are needed exactly when model_params.num_classes > 0")
    # label n_classes is the null class: an uncategorised segment trains it, as label dropout does
    if labels is not None and (len(labels) != n or labels.min() < 0 or labels.max() > n_classes):
        raise ValueError(f"need one label in [0, {n_classes}] per segment ({n_classes}: the null class)")
    if class_names is not None and len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for {n_classes} classes")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segments", required=True, help=".npy float32 [N, samples] at 16 kHz")
    ap.add_argument("--labels", help=".npy int [N] class per segment (makes the model class-conditional)")
    ap.add_argument("--class-names", nargs="+", help="one name per class, in label order")
    ap.add_argument("--padded", help=".npy int [N] zero samples padded onto each segment's end (see --padding)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoint-dir", required=True)
    ap.add_argument("--loss-csv", required=True)
    ap.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:1 ...")
    add_arguments(ap, TrainParams)
    add_arguments(ap, ModelParams)
    add_arguments(ap, DiffusionParams, prefix="diffusion-")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    segments = np.load(a.segments, mmap_mode="r")
    labels = np.load(a.labels) if a.labels else None
    if labels is not None and a.num_classes == 0:
        a.num_classes = len(a.class_names) if a.class_names else int(labels.max()) + 1
    args = vars(a)
    train_params = TrainParams.from_dict(args)
    diffusion_params = DiffusionParams.from_dict({k[10:]: v for k, v in args.items() if k.startswith("diffusion_")})
    train(segments, labels, ModelParams.from_dict(args), diffusion_params, train_params, a.out, a.checkpoint_dir,
          a.loss_csv, class_names=a.class_names, device=a.device, padded=np.load(a.padded) if a.padded else None)


if __name__ == "__main__":
    main()
