"""The resumable training loop that every network here shares: Adam, EMA, checkpoints, snapshots, SIGTERM, torchrun.

What a batch is belongs to each network's trainer, which hands `fit` a function drawing one:
audio crops and their categories (cry_diffusion.train, DiffWave), log-mel crops and their
categories (cry_diffusion.prior_train, the mel prior), audio crops with their log-mels
(cry_diffusion.vocoder_train, the mel-conditioned DiffWave). Everything else is here, once:

- a killed run resumes from the newest readable checkpoint and ends with the weights an
  uninterrupted run gets (bit for bit on a CPU with the same thread count), its loss history whole;
- SIGTERM finishes the step in progress, checkpoints it and exits with status 143;
- under torchrun every rank draws its own batches, and rank 0 alone writes.

The model file it writes holds the EMA weights ("model"), the params that rebuild the network
("model_params", "diffusion_params", "train_params"), the step and training time, and whatever the
trainer adds (`extra`: class names, the mel normalisation, the kind of network).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist

from . import checkpoint, console, diffusion
from .atomic import atomic_path
from .diffusion import DiffusionParams
from .params import Params
from .runtime import PRECISIONS, amp_dtype, prepare, resolve_device
from .segment import Rows

log = logging.getLogger("cry_diffusion.train")
CSV_COLUMNS = ["step", "loss", "steps_per_second", "elapsed_seconds"]
PADDING = ("mask", "drop")
LR_SCHEDULES = ("constant", "cosine")
LR_FLOOR = 0.1  # a cosine schedule ends at this share of the peak rate: the last steps still learn


@dataclass
class TrainParams(Params):
    steps: int = 500_000  # total optimizer steps (the paper's); a resumed run stops here too
    batch_size: int = 16  # crops per step per process (global batch = batch_size * WORLD_SIZE)
    learning_rate: float = 2e-4  # Adam's peak rate (DiffWave: constant, 2e-4)
    lr_schedule: str = "constant"  # "constant" (DiffWave) or "cosine": down to LR_FLOOR x the rate at `steps`
    warmup_steps: int = 0  # the rate rises linearly from 0 over this many steps first
    min_snr_gamma: float = 0.0  # > 0: Min-SNR-gamma loss weighting (cry_diffusion.diffusion.min_snr_weight); 0: plain MSE
    crop_samples: int = 16_000  # random crop length of audio (1 s at 16 kHz; a mel trainer crops as many frames as that spans)
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


def learning_rate_at(tp: TrainParams, step: int) -> float:
    """The rate for optimizer step `step` (0-based): warm-up, then constant or cosine decay to LR_FLOOR at tp.steps."""
    if step < tp.warmup_steps:
        return tp.learning_rate * (step + 1) / tp.warmup_steps
    if tp.lr_schedule == "constant":
        return tp.learning_rate
    done = min(1.0, (step - tp.warmup_steps) / max(1, tp.steps - tp.warmup_steps))
    return tp.learning_rate * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * done)))


def check(tp: TrainParams) -> None:
    """The settings a schema can't hold to, as one error naming them."""
    if tp.precision not in PRECISIONS or tp.compile not in ("auto", "on", "off") or tp.padding not in PADDING:
        raise ValueError(f"bad precision {tp.precision!r}, compile {tp.compile!r} or padding {tp.padding!r}")
    if tp.lr_schedule not in LR_SCHEDULES or tp.warmup_steps < 0 or tp.min_snr_gamma < 0:
        raise ValueError(f"bad lr_schedule {tp.lr_schedule!r} (one of {LR_SCHEDULES}), warmup_steps "
                         f"{tp.warmup_steps} or min_snr_gamma {tp.min_snr_gamma} (both >= 0)")


class Terminated(SystemExit):
    """SIGTERM arrived: a checkpoint of the last finished step was written; exit status 143."""


def padding(segments, labels, padded, length: int, crop: int, tp: TrainParams):
    """(segments, labels, real) after train.padding: padded rows dropped ("drop"), or the real length of each kept.

    length: a row's length in the last axis (samples, or frames); crop: the crop in the same unit;
    padded: how much of each row's end is zero padding, in that unit (None: none). real is None when
    nothing is padded and crops fit, so the plain mean-squared error is used.
    """
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
    real = torch.as_tensor(length - padded) if padded.any() or crop > length else None
    return segments, labels, real


def crop_batch(segments, labels, real, crop: int, batch: int, gen: torch.Generator):
    """Random crops in the last axis -> (crops [batch, ..., crop], labels or None, real length per crop or None).

    real: the length of real data at the start of each segment (None: no padding anywhere). Crops
    then start inside the real part where it is long enough, so padding is only met where it must be.
    """
    n, length = segments.shape[0], segments.shape[-1]
    rows = torch.randint(n, (batch,), generator=gen)
    if real is None:
        starts = torch.randint(max(length - crop, 0) + 1, (batch,), generator=gen)
    else:
        starts = (torch.rand(batch, generator=gen) * ((real[rows] - crop).clamp(min=0) + 1)).long()
    out = np.zeros((batch, *segments.shape[1:-1], crop), np.float32)
    for k, (i, s) in enumerate(zip(rows.tolist(), starts.tolist())):
        piece = segments[i, ..., s:s + crop]  # reads only the crop from a memmap
        out[k, ..., :piece.shape[-1]] = piece
    lab = torch.as_tensor(labels[rows.numpy()], dtype=torch.long) if labels is not None else None
    return torch.from_numpy(out), lab, None if real is None else (real[rows] - starts).clamp(max=crop)


def drop_labels(labels: torch.Tensor | None, null: int, share: float, gen: torch.Generator):
    """Classifier-free guidance's label dropout: `share` of the labels become the null class (in place)."""
    if labels is not None:
        labels[torch.rand(len(labels), generator=gen) < share] = null
    return labels


def optimizer(params: list, learning_rate: float, device: torch.device) -> torch.optim.Adam:
    """DiffWave's Adam; on CUDA fused into one kernel for all parameters (benchmarks/training.py times the same)."""
    return torch.optim.Adam(params, lr=learning_rate, fused=True if device.type == "cuda" else None)


@torch.no_grad()
def update_ema(ema: list, params: list, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * params, all tensors in one foreach call."""
    torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - decay)


def mean_scored(real: torch.Tensor | None, numel: int, device, per_position: int = 1) -> torch.Tensor:
    """The mean over ranks of the values each scores (real: positions per crop, or None: all numel of them).

    per_position: values at each position of the last axis (a log-mel's bands; 1 for audio).

    Each rank divides its squared errors by this, not by its own count, so that DDP's average of
    the ranks' gradients is the mean over every real sample of the global batch however unevenly
    the ranks' crops were padded. Every rank calls it at every step, padded or not: a collective
    that only some ranks reached would hang the others.
    """
    count = (real.sum() * per_position if real is not None else torch.tensor(numel, device=device)).double()
    dist.all_reduce(count)
    return (count / dist.get_world_size()).float()


def _setup(device) -> tuple[int, int, torch.device, bool]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(device)
    prepare(device)
    owns_group = world > 1 and not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device, owns_group


Batch = tuple  # (clean data [B, ...], condition or None, real length per crop [B] or None), on the CPU


def fit(build: Callable[[torch.device], torch.nn.Module], draw: Callable[[torch.Generator], Batch], model_params: Params,
        diffusion_params: DiffusionParams, tp: TrainParams, out_path, checkpoint_dir, loss_csv, device="auto",
        extra: dict | None = None) -> Path:  # fmt: skip
    """Train (or resume) the network `build(device)` makes on batches from `draw`; the EMA model goes to out_path.

    build: the network, on `device`, from the seed just set (every rank gets the same initial weights).
    draw(generator): one batch, every random choice taken from `generator` (this rank's data stream,
    saved in each checkpoint). model_params: the settings `build` used, kept in the checkpoints so a
    resumed run with other ones stops with an error. extra: more entries for the model file.
    """
    check(tp)
    rank, world, device, owns_group = _setup(device)
    try:
        _fit(build, draw, model_params, diffusion_params, tp, Path(out_path), Path(checkpoint_dir), Path(loss_csv),
             extra or {}, rank, world, device)
    finally:
        if owns_group:
            dist.destroy_process_group()
    return Path(out_path)


def _fit(build, draw, model_params, diffusion_params, tp, out_path, checkpoint_dir, loss_csv, extra, rank, world, device):
    run = _Run(build, model_params, diffusion_params, tp, checkpoint_dir, loss_csv, extra, rank, world, device)
    run.resume()
    net = run.model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
    if tp.compile == "on" or (tp.compile == "auto" and device.type == "cuda"):
        net = torch.compile(net)
    with _sigterm_sets_flag() as terminated:
        run.start_clock()
        while run.step < tp.steps:
            run.train_step(net, draw(run.data_gen))
            at_checkpoint = run.step % tp.checkpoint_every == 0 or run.step == tp.steps
            at_snapshot = tp.snapshot_every and run.step % tp.snapshot_every == 0
            at_row = at_checkpoint or at_snapshot or run.step % tp.log_every == 0
            stop = run.stops(terminated.is_set(), at_row)
            if not (at_row or stop):
                continue
            run.write_row()
            if at_snapshot and rank == 0:  # before the checkpoint: a crash between the two redoes it
                checkpoint.write(checkpoint_dir / "snapshots", run.model_file(), keep=None)
            if at_checkpoint or stop:
                run.save_checkpoint()
            if stop:
                raise Terminated(128 + signal.SIGTERM)
    if rank == 0:
        with atomic_path(out_path) as tmp:
            torch.save(run.model_file(), tmp)
    if world > 1:
        dist.barrier()  # nobody leaves (and tears the group down) before rank 0 has written the model


@contextlib.contextmanager
def _sigterm_sets_flag():
    """SIGTERM, while training, only sets the flag this yields: the loop finishes its step, checkpoints, exits."""
    terminated = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()  # signal handlers can only be set from there
    old_handler = signal.signal(signal.SIGTERM, lambda *_: terminated.set()) if in_main else None
    try:
        yield terminated
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_handler)


class _Run:
    """One rank's training: all that a checkpoint holds, and the losses since the last row with their clock."""

    def __init__(self, build, model_params, diffusion_params, tp, checkpoint_dir, loss_csv, extra, rank, world, device):
        self.model_params, self.diffusion_params, self.tp, self.extra = model_params, diffusion_params, tp, extra
        self.checkpoint_dir, self.loss_csv = checkpoint_dir, loss_csv
        self.rank, self.world, self.device = rank, world, device
        self.amp = amp_dtype(tp.precision, device)
        if tp.threads:
            torch.set_num_threads(tp.threads)
        log.info("training on %s, autocast %s", device, self.amp)
        torch.manual_seed(tp.seed)  # the same initial weights on every rank
        self.model = build(device)
        self.names = [n for n, _ in self.model.named_parameters()]
        self.params = [p for _, p in self.model.named_parameters()]
        self.ema = [p.detach().clone() for p in self.params]
        self.opt = optimizer(self.params, tp.learning_rate, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == torch.float16)
        self.data_gen = torch.Generator().manual_seed(tp.seed + rank)
        self.noise_gen = torch.Generator(device).manual_seed(tp.seed + rank + 1_000_003)
        self.step, self.elapsed0, self.history, self.resumes, self.unreadable = 0, 0.0, [], 0, []

    def resume(self) -> None:
        """Continue from the newest readable checkpoint, if there is one; loss_csv then holds its history.

        The loss history travels inside each checkpoint: loss_csv is a pipeline output, and Snakemake deletes it when
        a run is killed, so a history kept only there lost every row before the resume point (rows 10-120 of 400).
        """
        skipped, ck = checkpoint.newest_readable(self.checkpoint_dir)
        if ck is not None:
            self._restore(ck, skipped)
        elif skipped:  # every checkpoint there is unreadable: starting over would silently throw the run away
            why = "; ".join(f"{p.name}: {w}" for p, w in skipped)
            raise ValueError(f"no readable checkpoint in {self.checkpoint_dir} ({why}): "
                             "remove that folder to train from the start")
        if self.rank == 0:  # the rows up to the checkpoint; later ones are redone, so they can't repeat
            with atomic_path(self.loss_csv) as tmp, open(tmp, "w", newline="") as f:
                csv.writer(f).writerows([CSV_COLUMNS] + self.history)

    def _restore(self, ck: dict, skipped: list) -> None:
        path = self.checkpoint_dir / f"step-{ck['step']:07d}.pt"
        self.unreadable = ck.get("unreadable_checkpoints", []) + [f"{p.name}: {why}" for p, why in skipped]
        # read through the dataclasses: a field added since the checkpoint was written takes its default
        if (type(self.model_params).from_dict(ck["model_params"]) != self.model_params
                or type(self.diffusion_params).from_dict(ck["diffusion_params"]) != self.diffusion_params):
            raise ValueError(f"{path} was trained with other model/diffusion params; remove it to start over")
        if ck["step"] > self.tp.steps:
            raise ValueError(f"{path} is already past the requested {self.tp.steps} steps: raise train.steps to at "
                             f"least {ck['step']}, or remove {self.checkpoint_dir} to train from the start")
        self.model.load_state_dict(ck["model"])
        for e, name in zip(self.ema, self.names):
            e.copy_(ck["ema"][name])
        self.opt.load_state_dict(ck["optimizer"])  # the rate is set again at every step, from the params asked for now
        self.scaler.load_state_dict(ck["scaler"])
        if self.rank < len(ck["rng"]):  # same world size: every rank continues its own random streams
            checkpoint.set_rng_state(ck["rng"][self.rank], self.data_gen, self.noise_gen)
        self.step, self.elapsed0 = ck["step"], ck["elapsed_seconds"]
        self.history, self.resumes = ck.get("loss_history", []), ck.get("resumes", 0) + 1
        if self.rank == 0:
            for bad, why in skipped:
                log.warning("checkpoint %s is unreadable (%s): resuming from the one before it", bad, why)
            log.info("resuming from %s (resume %d)", path, self.resumes)

    def start_clock(self) -> None:
        """The training time and the console's progress count from here; a resumed run's add to its checkpoint's."""
        self.window, self.t0 = [], time.perf_counter()
        self.t_window, self.step_window = self.t0, self.step
        self.ticker = console.Ticker("training", self.tp.steps, done=self.step, quiet=self.rank > 0)

    def train_step(self, net, batch: Batch) -> None:
        """One optimizer step on `batch`, through `net` (the model, maybe wrapped by DDP and compiled), then the EMA."""
        tp, device = self.tp, self.device
        # pinned first on CUDA: a non_blocking copy from pageable memory is a blocking one after all
        x0, cond, crop_real = (None if t is None else (t.pin_memory() if device.type == "cuda" else t)
                               .to(device, non_blocking=True) for t in batch)
        scored = mean_scored(crop_real, x0.numel(), device, x0[0, ..., 0].numel()) if self.world > 1 else None
        for group in self.opt.param_groups:
            group["lr"] = learning_rate_at(tp, self.step)
        with torch.autocast(device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            loss = diffusion.loss(net, x0, cond, self.diffusion_params, self.noise_gen, crop_real, scored,
                                  tp.min_snr_gamma)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(self.params, tp.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        # short runs would otherwise end with mostly the random initial weights in the EMA
        update_ema(self.ema, self.params, min(tp.ema_decay, (1 + self.step) / (10 + self.step)))
        self.step += 1
        self.window.append(loss.detach())  # no .item() per step: keeps a GPU from waiting on the host

    def stops(self, asked: bool, at_row: bool) -> bool:
        """Whether the run stops after this step, SIGTERM having `asked` it to here (or on another rank)."""
        if self.world == 1:
            return asked
        if not at_row:  # all ranks must stop at the same step, so they decide together, at rows only
            return False
        flag = torch.tensor([float(asked)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return flag.item() > 0

    def write_row(self) -> None:
        """The window's mean loss over the ranks as a loss-CSV row, a log line and the console's progress."""
        losses = torch.stack(self.window).float()
        if self.world > 1:  # the mean over ranks; a NaN on any rank shows on all, so all of them raise
            dist.all_reduce(losses)
            losses /= self.world
        losses = losses.cpu()
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):  # raised before any checkpoint of this state: the last good one stays newest
            first = self.step - len(self.window) + 1 + int(bad[0])
            raise FloatingPointError(f"training loss became {losses[bad[0]].item()} at step {first}: lower "
                                     "train.learning_rate or train.grad_clip and run again (a new run; "
                                     f"{self.checkpoint_dir} keeps this one's last good state)")
        now = time.perf_counter()
        rate, mean = (self.step - self.step_window) / (now - self.t_window), float(losses.mean())
        if self.rank == 0:
            self.history.append([str(self.step), f"{mean:.6g}", f"{rate:.4g}", f"{self.elapsed0 + now - self.t0:.2f}"])
            with open(self.loss_csv, "a", newline="") as f:
                csv.writer(f).writerow(self.history[-1])
            log.info("step %d  loss %.4f  %.2f steps/s", self.step, mean, rate)
            self.ticker(self.step, loss=mean)
        self.window, self.t_window, self.step_window = [], now, self.step

    def save_checkpoint(self) -> None:
        """A checkpoint of this step: every rank's random streams, gathered, and the rest, written by rank 0."""
        states = [checkpoint.rng_state(self.data_gen, self.noise_gen)] * self.world
        if self.world > 1:
            dist.all_gather_object(states, states[0])
        if self.rank == 0:
            checkpoint.write(self.checkpoint_dir, {
                "step": self.step, "elapsed_seconds": self.elapsed0 + time.perf_counter() - self.t0,
                "model": self.model.state_dict(), "ema": dict(zip(self.names, self.ema)),
                "optimizer": self.opt.state_dict(), "scaler": self.scaler.state_dict(), "rng": states,
                "model_params": self.model_params.to_dict(), "diffusion_params": self.diffusion_params.to_dict(),
                "train_params": self.tp.to_dict(), "loss_history": self.history, "resumes": self.resumes,
                "unreadable_checkpoints": self.unreadable})

    def model_file(self) -> dict:
        """What out_path holds, and every snapshot: the EMA weights and how they were made."""
        amp = str(self.amp).replace("torch.", "") if self.amp else None
        return {"model": {n: e.detach().cpu().clone() for n, e in zip(self.names, self.ema)}, "weights": "ema",
                "step": self.step, "elapsed_seconds": self.elapsed0 + time.perf_counter() - self.t0,
                "model_params": self.model_params.to_dict(), "diffusion_params": self.diffusion_params.to_dict(),
                "train_params": self.tp.to_dict(), "device": str(self.device), "autocast": amp, "resumes": self.resumes,
                "unreadable_checkpoints": self.unreadable, "world_size": self.world} | self.extra
