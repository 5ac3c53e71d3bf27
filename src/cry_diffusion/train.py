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
import csv
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from . import checkpoint, diffusion
from .atomic import atomic_path
from .diffusion import DiffusionParams
from .model import DiffWave, ModelParams
from .params import Params, add_arguments
from .runtime import PRECISIONS, amp_dtype, prepare, resolve_device
from .segment import Rows

log = logging.getLogger("cry_diffusion.train")
CSV_COLUMNS = ["step", "loss", "steps_per_second", "elapsed_seconds"]
PADDING = ("mask", "drop")
LR_SCHEDULES = ("constant", "cosine")
LR_FLOOR = 0.1  # a cosine schedule ends at this share of the peak rate: the last steps still learn


def learning_rate_at(tp: "TrainParams", step: int) -> float:
    """The rate for optimizer step `step` (0-based): warm-up, then constant or cosine decay to LR_FLOOR at tp.steps."""
    if step < tp.warmup_steps:
        return tp.learning_rate * (step + 1) / tp.warmup_steps
    if tp.lr_schedule == "constant":
        return tp.learning_rate
    done = min(1.0, (step - tp.warmup_steps) / max(1, tp.steps - tp.warmup_steps))
    return tp.learning_rate * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * done)))


@dataclass
class TrainParams(Params):
    steps: int = 500_000  # total optimizer steps (the paper's); a resumed run stops here too
    batch_size: int = 16  # crops per step per process (global batch = batch_size * WORLD_SIZE)
    learning_rate: float = 2e-4  # Adam's peak rate (DiffWave: constant, 2e-4)
    lr_schedule: str = "constant"  # "constant" (DiffWave) or "cosine": down to LR_FLOOR x the rate at `steps`
    warmup_steps: int = 0  # the rate rises linearly from 0 over this many steps first
    min_snr_gamma: float = 0.0  # > 0: Min-SNR-gamma loss weighting (cry_diffusion.diffusion.min_snr_weight); 0: plain MSE
    crop_samples: int = 16_000  # random crop length (1 s at 16 kHz); shorter segments are zero-padded
    padding: str = "mask"  # zeros padded onto segments' ends: "mask" them out of the loss, or "drop" padded segments
    grad_clip: float = 1.0  # max global gradient norm
    ema_decay: float = 0.999  # EMA of the weights, which is what the final model file holds
    checkpoint_every: int = 1000  # steps between checkpoints (and one at the end, and on SIGTERM)
    snapshot_every: int = 0  # keep the EMA model every this many steps (snapshots/ in the run's folder): quality over time
    log_every: int = 50  # steps between loss-CSV rows / log lines (each row: the window's mean loss)
    seed: int = 0  # weights, crops and noise all follow from it (crops and noise: seed + rank)
    label_drop: float = 0.1  # conditional models only: share of labels replaced by the null class
    precision: str = "auto"  # "auto" (bf16 on capable GPUs, else fp16; fp32 on CPU), "fp32", "bf16", "fp16"
    compile: str = "auto"  # torch.compile: "auto" (CUDA only), "on", "off"
    layer_kernel: str = "torch"  # residual layers as PyTorch ops, or "triton": fused kernels (cry_diffusion.fused)
    threads: int = 0  # CPU threads for torch; 0 keeps torch's default (OMP_NUM_THREADS / all cores)


class Terminated(SystemExit):
    """SIGTERM arrived: a checkpoint of the last finished step was written; exit status 143."""


def _setup(device) -> tuple[int, int, torch.device, bool]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(device)
    prepare(device)
    owns_group = world > 1 and not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device, owns_group


def _crop_batch(segments, labels, real, crop: int, batch: int, gen: torch.Generator):
    """Random crops -> (audio [batch, crop], labels or None, samples of real audio per crop or None).

    real: samples of real audio at the start of each segment (None: no padding anywhere). Crops
    then start inside the real part where it is long enough, so padding is only met where it must be.
    """
    n, length = segments.shape
    rows = torch.randint(n, (batch,), generator=gen)
    if real is None:
        starts = torch.randint(max(length - crop, 0) + 1, (batch,), generator=gen)
    else:
        starts = (torch.rand(batch, generator=gen) * ((real[rows] - crop).clamp(min=0) + 1)).long()
    audio = np.zeros((batch, crop), np.float32)
    for k, (i, s) in enumerate(zip(rows.tolist(), starts.tolist())):
        piece = segments[i, s:s + crop]  # reads only the crop from a memmap
        audio[k, :len(piece)] = piece
    lab = torch.as_tensor(labels[rows.numpy()], dtype=torch.long) if labels is not None else None
    return torch.from_numpy(audio), lab, None if real is None else (real[rows] - starts).clamp(max=crop)


def optimizer(params: list, learning_rate: float, device: torch.device) -> torch.optim.Adam:
    """DiffWave's Adam; on CUDA fused into one kernel for all parameters (benchmarks/training.py times the same)."""
    return torch.optim.Adam(params, lr=learning_rate, fused=True if device.type == "cuda" else None)


@torch.no_grad()
def update_ema(ema: list, params: list, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * params, all tensors in one foreach call."""
    torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - decay)


def mean_scored(real: torch.Tensor | None, numel: int, device) -> torch.Tensor:
    """The mean over ranks of the samples each scores (real: per crop, or None: all numel of them).

    Each rank divides its squared errors by this, not by its own count, so that DDP's average of
    the ranks' gradients is the mean over every real sample of the global batch however unevenly
    the ranks' crops were padded. Every rank calls it at every step, padded or not: a collective
    that only some ranks reached would hang the others.
    """
    count = (real.sum() if real is not None else torch.tensor(numel, device=device)).double()
    dist.all_reduce(count)
    return (count / dist.get_world_size()).float()


def train(segments: np.ndarray, labels: np.ndarray | None, model_params: ModelParams,
          diffusion_params: DiffusionParams, train_params: TrainParams, out_path, checkpoint_dir, loss_csv,
          class_names: list[str] | None = None, device="auto", padded=None) -> Path:
    """Train (or resume) and write the EMA model to `out_path`; returns out_path.

    segments: float32 [N, samples] (a np.memmap is fine: only the crops are read);
    labels: int [N] in [0, num_classes] for a class-conditional model (num_classes: the null class), else None;
    padded: int [N] zero samples padded onto each segment's end (None: none), which
    train_params.padding masks out of the loss or drops.
    """
    n_classes, tp = model_params.num_classes, train_params
    if segments.ndim != 2 or len(segments) == 0:
        raise ValueError(f"segments must be a non-empty [N, samples] array, got shape {segments.shape}")
    if (labels is not None) != (n_classes > 0):
        raise ValueError("labels are needed exactly when model_params.num_classes > 0")
    # label n_classes is the null class: an uncategorised segment trains it, as label dropout does
    if labels is not None and (len(labels) != len(segments) or labels.min() < 0 or labels.max() > n_classes):
        raise ValueError(f"need one label in [0, {n_classes}] per segment ({n_classes}: the null class)")
    if class_names is not None and len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for {n_classes} classes")
    if tp.precision not in PRECISIONS or tp.compile not in ("auto", "on", "off") or tp.padding not in PADDING:
        raise ValueError(f"bad precision {tp.precision!r}, compile {tp.compile!r} or padding {tp.padding!r}")
    if tp.lr_schedule not in LR_SCHEDULES or tp.warmup_steps < 0 or tp.min_snr_gamma < 0:
        raise ValueError(f"bad lr_schedule {tp.lr_schedule!r} (one of {LR_SCHEDULES}), warmup_steps "
                         f"{tp.warmup_steps} or min_snr_gamma {tp.min_snr_gamma} (both >= 0)")
    length = segments.shape[1]
    padded = np.zeros(len(segments), np.int64) if padded is None else np.asarray(padded, np.int64)
    if len(padded) != len(segments) or padded.min() < 0 or padded.max() >= length:
        raise ValueError(f"need one padded-sample count in [0, {length}) per segment")
    if tp.padding == "drop" and padded.any():
        whole = np.flatnonzero(padded == 0)
        if not len(whole):
            raise ValueError(f"every one of the {len(segments)} segments is padded: padding 'drop' leaves "
                             "nothing to train on (use 'mask', or segments of another length)")
        segments, labels, padded = Rows(segments, whole), None if labels is None else labels[whole], padded[whole]
    # crops longer than a segment end in zeros too: the same padding, left out of the loss either way
    real = torch.as_tensor(length - padded) if padded.any() or tp.crop_samples > length else None
    rank, world, device, owns_group = _setup(device)
    try:
        _train(segments, labels, real, model_params, diffusion_params, tp, Path(out_path), Path(checkpoint_dir),
               Path(loss_csv), class_names, rank, world, device)
    finally:
        if owns_group:
            dist.destroy_process_group()
    return Path(out_path)


def _train(segments, labels, real, model_params, diffusion_params, tp, out_path, checkpoint_dir, loss_csv, class_names,
           rank, world, device):
    amp = amp_dtype(tp.precision, device)
    if tp.threads:
        torch.set_num_threads(tp.threads)
    log.info("training on %s, autocast %s", device, amp)
    torch.manual_seed(tp.seed)  # the same initial weights on every rank
    model = DiffWave(model_params).use_layer_kernel(tp.layer_kernel, device).to(device)
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    ema = [p.detach().clone() for p in params]
    opt = optimizer(params, tp.learning_rate, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    data_gen = torch.Generator().manual_seed(tp.seed + rank)
    noise_gen = torch.Generator(device).manual_seed(tp.seed + rank + 1_000_003)

    # The loss history travels inside each checkpoint: loss_csv is a pipeline output, and Snakemake deletes it when
    # a run is killed, so a history kept only there lost every row before the resume point (rows 10-120 of 400).
    step, elapsed0, history, resumes, unreadable = 0, 0.0, [], 0, []
    skipped, ck = checkpoint.newest_readable(checkpoint_dir)
    if ck is not None:
        unreadable = ck.get("unreadable_checkpoints", []) + [f"{p.name}: {why}" for p, why in skipped]
        path = checkpoint_dir / f"step-{ck['step']:07d}.pt"
        # read through the dataclasses: a field added since the checkpoint was written takes its default
        if (ModelParams.from_dict(ck["model_params"]) != model_params
                or DiffusionParams.from_dict(ck["diffusion_params"]) != diffusion_params):
            raise ValueError(f"{path} was trained with other model/diffusion params; remove it to start over")
        if ck["step"] > tp.steps:
            raise ValueError(f"{path} is already past the requested {tp.steps} steps: raise train.steps to at least "
                             f"{ck['step']}, or remove {checkpoint_dir} to train from the start")
        model.load_state_dict(ck["model"])
        for e, name in zip(ema, names):
            e.copy_(ck["ema"][name])
        opt.load_state_dict(ck["optimizer"])  # the rate is set again at every step, from the params asked for now
        scaler.load_state_dict(ck["scaler"])
        if rank < len(ck["rng"]):  # same world size: every rank continues its own random streams
            checkpoint.set_rng_state(ck["rng"][rank], data_gen, noise_gen)
        step, elapsed0 = ck["step"], ck["elapsed_seconds"]
        history, resumes = ck.get("loss_history", []), ck.get("resumes", 0) + 1
        if rank == 0:
            for bad, why in skipped:
                log.warning("checkpoint %s is unreadable (%s): resuming from the one before it", bad, why)
            log.info("resuming from %s (resume %d)", path, resumes)
    elif skipped:  # every checkpoint there is unreadable: starting over would silently throw the run away
        raise ValueError(f"no readable checkpoint in {checkpoint_dir} ({'; '.join(f'{p.name}: {w}' for p, w in skipped)}): "
                         "remove that folder to train from the start")
    if rank == 0:  # the rows up to the checkpoint; later ones are redone, so they can't repeat
        with atomic_path(loss_csv) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([CSV_COLUMNS] + history)

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if tp.compile == "on" or (tp.compile == "auto" and device.type == "cuda"):
        net = torch.compile(net)

    def save_checkpoint():
        states = [checkpoint.rng_state(data_gen, noise_gen)] * world
        if world > 1:
            dist.all_gather_object(states, states[0])
        if rank == 0:
            ck = {"step": step, "elapsed_seconds": elapsed0 + time.perf_counter() - t0,
                  "model": model.state_dict(), "ema": dict(zip(names, ema)), "optimizer": opt.state_dict(),
                  "scaler": scaler.state_dict(), "rng": states, "model_params": model_params.to_dict(),
                  "diffusion_params": diffusion_params.to_dict(), "train_params": tp.to_dict(),
                  "loss_history": history, "resumes": resumes, "unreadable_checkpoints": unreadable}
            checkpoint.write(checkpoint_dir, ck)

    def model_file():  # what --out holds, and every snapshot: load either with generate.load_model
        return {"model": {n: e.detach().cpu().clone() for n, e in zip(names, ema)}, "weights": "ema", "step": step,
                "elapsed_seconds": elapsed0 + time.perf_counter() - t0, "model_params": model_params.to_dict(),
                "diffusion_params": diffusion_params.to_dict(), "train_params": tp.to_dict(),
                "class_names": list(class_names) if class_names else None, "device": str(device),
                "autocast": str(amp).replace("torch.", "") if amp else None, "resumes": resumes,
                "unreadable_checkpoints": unreadable, "world_size": world}

    # SIGTERM only sets a flag: the loop finishes its step, checkpoints and exits cleanly
    terminated = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    old_handler = signal.signal(signal.SIGTERM, lambda *_: terminated.set()) if in_main else None
    window, t0 = [], time.perf_counter()
    t_window, step_window = t0, step
    try:
        while step < tp.steps:
            audio, lab, crop_real = _crop_batch(segments, labels, real, tp.crop_samples, tp.batch_size, data_gen)
            if lab is not None:
                lab[torch.rand(len(lab), generator=data_gen) < tp.label_drop] = model.null_label
            # pinned first on CUDA: a non_blocking copy from pageable memory is a blocking one after all
            audio, lab, crop_real = (None if t is None else (t.pin_memory() if device.type == "cuda" else t)
                                     .to(device, non_blocking=True) for t in (audio, lab, crop_real))
            scored = mean_scored(crop_real, audio.numel(), device) if world > 1 else None

            for group in opt.param_groups:
                group["lr"] = learning_rate_at(tp, step)
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                loss = diffusion.loss(net, audio, lab, diffusion_params, noise_gen, crop_real, scored, tp.min_snr_gamma)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, tp.grad_clip)
            scaler.step(opt)
            scaler.update()
            # short runs would otherwise end with mostly the random initial weights in the EMA
            update_ema(ema, params, min(tp.ema_decay, (1 + step) / (10 + step)))
            step += 1
            window.append(loss.detach())  # no .item() per step: keeps a GPU from waiting on the host

            at_checkpoint = step % tp.checkpoint_every == 0 or step == tp.steps
            at_snapshot = tp.snapshot_every and step % tp.snapshot_every == 0
            at_row = at_checkpoint or at_snapshot or step % tp.log_every == 0
            stop = terminated.is_set()
            if world > 1:  # all ranks must stop at the same step, so they decide together, at rows only
                flag = torch.tensor([float(stop)], device=device)
                if at_row:
                    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop = at_row and flag.item() > 0
            if not (at_row or stop):
                continue

            losses = torch.stack(window).float()
            if world > 1:  # the mean over ranks; a NaN on any rank shows on all, so all of them raise
                dist.all_reduce(losses)
                losses /= world
            losses = losses.cpu()
            bad = (~torch.isfinite(losses)).nonzero()
            if len(bad):  # raised before any checkpoint of this state: the last good one stays newest
                first = step - len(window) + 1 + int(bad[0])
                raise FloatingPointError(f"training loss became {losses[bad[0]].item()} at step {first}: lower "
                                         "train.learning_rate or train.grad_clip and run again (a new run; "
                                         f"{checkpoint_dir} keeps this one's last good state)")
            now = time.perf_counter()
            rate, mean = (step - step_window) / (now - t_window), float(losses.mean())
            if rank == 0:
                history.append([str(step), f"{mean:.6g}", f"{rate:.4g}", f"{elapsed0 + now - t0:.2f}"])
                with open(loss_csv, "a", newline="") as f:
                    csv.writer(f).writerow(history[-1])
                log.info("step %d  loss %.4f  %.2f steps/s", step, mean, rate)
            window, t_window, step_window = [], now, step
            if at_snapshot and rank == 0:  # before the checkpoint: a crash between the two redoes it
                checkpoint.write(checkpoint_dir / "snapshots", model_file(), keep=None)
            if at_checkpoint or stop:
                save_checkpoint()
            if stop:
                raise Terminated(128 + signal.SIGTERM)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_handler)

    if rank == 0:
        with atomic_path(out_path) as tmp:
            torch.save(model_file(), tmp)
    if world > 1:
        dist.barrier()  # nobody leaves (and tears the group down) before rank 0 has written the model


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
