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

The model file (--out) holds: model (the EMA weights), weights ("ema"), step, model_params,
diffusion_params, train_params, class_names; load it with cry_diffusion.generate.load_model.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from . import SAMPLE_RATE, diffusion
from .atomic import atomic_path
from .diffusion import DiffusionParams
from .model import DiffWave, ModelParams
from .runtime import PRECISIONS, amp_dtype, prepare, resolve_device

log = logging.getLogger("cry_diffusion.train")
KEEP_CHECKPOINTS = 2  # the newest two: one spare in case the newest is somehow unreadable
CSV_COLUMNS = ["step", "loss", "steps_per_second", "elapsed_seconds"]


@dataclass
class TrainParams:
    steps: int = 100_000  # total optimizer steps; a resumed run stops here too
    batch_size: int = 16  # crops per step per process (global batch = batch_size * WORLD_SIZE)
    learning_rate: float = 2e-4  # Adam, constant, as DiffWave
    crop_samples: int = 16_000  # random crop length (1 s at 16 kHz); shorter segments are zero-padded
    grad_clip: float = 1.0  # max global gradient norm
    ema_decay: float = 0.999  # EMA of the weights, which is what the final model file holds
    checkpoint_every: int = 1000  # steps between checkpoints (and one at the end, and on SIGTERM)
    log_every: int = 50  # steps between loss-CSV rows / log lines (each row: the window's mean loss)
    seed: int = 0  # weights, crops and noise all follow from it (crops and noise: seed + rank)
    label_drop: float = 0.1  # conditional models only: share of labels replaced by the null class
    precision: str = "auto"  # "auto" (bf16 on capable GPUs, else fp16; fp32 on CPU), "fp32", "bf16", "fp16"
    compile: str = "auto"  # torch.compile: "auto" (CUDA only), "on", "off"
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


def _crop_batch(segments, labels, crop: int, batch: int, gen: torch.Generator):
    n, length = segments.shape
    rows = torch.randint(n, (batch,), generator=gen).tolist()
    starts = torch.randint(max(length - crop, 0) + 1, (batch,), generator=gen).tolist()
    audio = np.zeros((batch, crop), np.float32)
    for k, (i, s) in enumerate(zip(rows, starts)):
        piece = segments[i, s:s + crop]  # reads only the crop from a memmap
        audio[k, :len(piece)] = piece
    return torch.from_numpy(audio), (torch.as_tensor(labels[rows], dtype=torch.long) if labels is not None else None)


def _rng_state(data_gen, noise_gen) -> dict:
    # tensors and plain Python types only, so torch.load(weights_only=True) accepts it
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(),
            "data": data_gen.get_state(), "noise": noise_gen.get_state(),
            "cuda": torch.cuda.get_rng_state() if noise_gen.device.type == "cuda" else None}


def _set_rng_state(state: dict, data_gen, noise_gen) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    data_gen.set_state(state["data"])
    noise_gen.set_state(state["noise"])
    if state["cuda"] is not None and noise_gen.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"])


def checkpoints(folder) -> list[Path]:
    """Checkpoints in `folder`, oldest first (the zero-padded step makes name order step order)."""
    return sorted(Path(folder).glob("step-*.pt"))


def train(segments: np.ndarray, labels: np.ndarray | None, model_params: ModelParams,
          diffusion_params: DiffusionParams, train_params: TrainParams, out_path, checkpoint_dir, loss_csv,
          class_names: list[str] | None = None, device="auto") -> Path:
    """Train (or resume) and write the EMA model to `out_path`; returns out_path.

    segments: float32 [N, samples] (a np.memmap is fine: only the crops are read);
    labels: int [N] in [0, num_classes) for a class-conditional model, else None.
    """
    n_classes, tp = model_params.num_classes, train_params
    if segments.ndim != 2 or len(segments) == 0:
        raise ValueError(f"segments must be a non-empty [N, samples] array, got shape {segments.shape}")
    if (labels is not None) != (n_classes > 0):
        raise ValueError("labels are needed exactly when model_params.num_classes > 0")
    if labels is not None and (len(labels) != len(segments) or labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"need one label in [0, {n_classes}) per segment")
    if class_names is not None and len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for {n_classes} classes")
    if tp.precision not in PRECISIONS or tp.compile not in ("auto", "on", "off"):
        raise ValueError(f"bad precision {tp.precision!r} or compile {tp.compile!r}")
    rank, world, device, owns_group = _setup(device)
    try:
        _train(segments, labels, model_params, diffusion_params, tp, Path(out_path), Path(checkpoint_dir),
               Path(loss_csv), class_names, rank, world, device)
    finally:
        if owns_group:
            dist.destroy_process_group()
    return Path(out_path)


def _train(segments, labels, model_params, diffusion_params, tp, out_path, checkpoint_dir, loss_csv, class_names,
           rank, world, device):
    amp = amp_dtype(tp.precision, device)
    if tp.threads:
        torch.set_num_threads(tp.threads)
    log.info("training on %s, autocast %s", device, amp)
    torch.manual_seed(tp.seed)  # the same initial weights on every rank
    model = DiffWave(model_params).to(device)
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=tp.learning_rate, fused=True if device.type == "cuda" else None)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    data_gen = torch.Generator().manual_seed(tp.seed + rank)
    noise_gen = torch.Generator(device).manual_seed(tp.seed + rank + 1_000_003)

    # The loss history travels inside each checkpoint: loss_csv is a pipeline output, and Snakemake deletes it when
    # a run is killed, so a history kept only there lost every row before the resume point (rows 10-120 of 400).
    step, elapsed0, history, resumes = 0, 0.0, [], 0
    if found := checkpoints(checkpoint_dir):
        ck = torch.load(found[-1], map_location="cpu", weights_only=True)
        if ck["model_params"] != model_params.to_dict() or ck["diffusion_params"] != diffusion_params.to_dict():
            raise ValueError(f"{found[-1]} was trained with other model/diffusion params; remove it to start over")
        if ck["step"] > tp.steps:
            raise ValueError(f"{found[-1]} is already past the requested {tp.steps} steps")
        model.load_state_dict(ck["model"])
        for e, name in zip(ema, names):
            e.copy_(ck["ema"][name])
        opt.load_state_dict(ck["optimizer"])
        for group in opt.param_groups:  # the learning rate asked for now wins over the saved one
            group["lr"] = tp.learning_rate
        scaler.load_state_dict(ck["scaler"])
        if rank < len(ck["rng"]):  # same world size: every rank continues its own random streams
            _set_rng_state(ck["rng"][rank], data_gen, noise_gen)
        step, elapsed0 = ck["step"], ck["elapsed_seconds"]
        history, resumes = ck.get("loss_history", []), ck.get("resumes", 0) + 1
        if rank == 0:
            log.info("resuming from %s (resume %d)", found[-1], resumes)
    if rank == 0:  # the rows up to the checkpoint; later ones are redone, so they can't repeat
        with atomic_path(loss_csv) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([CSV_COLUMNS] + history)

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if tp.compile == "on" or (tp.compile == "auto" and device.type == "cuda"):
        net = torch.compile(net)

    def save_checkpoint():
        states = [_rng_state(data_gen, noise_gen)] * world
        if world > 1:
            dist.all_gather_object(states, states[0])
        if rank == 0:
            ck = {"step": step, "elapsed_seconds": elapsed0 + time.perf_counter() - t0,
                  "model": model.state_dict(), "ema": dict(zip(names, ema)), "optimizer": opt.state_dict(),
                  "scaler": scaler.state_dict(), "rng": states, "model_params": model_params.to_dict(),
                  "diffusion_params": diffusion_params.to_dict(), "train_params": asdict(tp),
                  "loss_history": history, "resumes": resumes}
            with atomic_path(checkpoint_dir / f"step-{step:07d}.pt") as tmp:
                torch.save(ck, tmp)
            for old in checkpoints(checkpoint_dir)[:-KEEP_CHECKPOINTS]:
                old.unlink()

    # SIGTERM only sets a flag: the loop finishes its step, checkpoints and exits cleanly
    terminated = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    old_handler = signal.signal(signal.SIGTERM, lambda *_: terminated.set()) if in_main else None
    window, t0 = [], time.perf_counter()
    t_window, step_window = t0, step
    try:
        while step < tp.steps:
            audio, lab = _crop_batch(segments, labels, tp.crop_samples, tp.batch_size, data_gen)
            if lab is not None:
                lab[torch.rand(len(lab), generator=data_gen) < tp.label_drop] = model.null_label
                lab = lab.to(device, non_blocking=True)
            if device.type == "cuda":
                audio = audio.pin_memory()
            audio = audio.to(device, non_blocking=True)

            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                loss = diffusion.loss(net, audio, lab, diffusion_params, noise_gen)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, tp.grad_clip)
            scaler.step(opt)
            scaler.update()
            with torch.no_grad():
                # short runs would otherwise end with mostly the random initial weights in the EMA
                decay = min(tp.ema_decay, (1 + step) / (10 + step))
                torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - decay)
            step += 1
            window.append(loss.detach())  # no .item() per step: keeps a GPU from waiting on the host

            at_checkpoint = step % tp.checkpoint_every == 0 or step == tp.steps
            at_row = at_checkpoint or step % tp.log_every == 0
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
                raise FloatingPointError(f"training loss became {losses[bad[0]].item()} at step {first}")
            now = time.perf_counter()
            rate, mean = (step - step_window) / (now - t_window), float(losses.mean())
            if rank == 0:
                history.append([str(step), f"{mean:.6g}", f"{rate:.4g}", f"{elapsed0 + now - t0:.2f}"])
                with open(loss_csv, "a", newline="") as f:
                    csv.writer(f).writerow(history[-1])
                log.info("step %d  loss %.4f  %.2f steps/s", step, mean, rate)
            window, t_window, step_window = [], now, step
            if at_checkpoint or stop:
                save_checkpoint()
            if stop:
                raise Terminated(128 + signal.SIGTERM)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_handler)

    if rank == 0:
        final = {"model": dict(zip(names, ema)), "weights": "ema", "step": step,
                 "model_params": model_params.to_dict(), "diffusion_params": diffusion_params.to_dict(),
                 "train_params": asdict(tp), "class_names": list(class_names) if class_names else None,
                 "device": str(device), "autocast": str(amp).replace("torch.", "") if amp else None,
                 "resumes": resumes}
        with atomic_path(out_path) as tmp:
            torch.save(final, tmp)
    if world > 1:
        dist.barrier()  # nobody leaves (and tears the group down) before rank 0 has written the model


# Settings that don't change what is learned: a run with other values resumes the same checkpoints.
_NOT_IN_RUN_KEY = ("steps", "checkpoint_every", "log_every", "threads", "compile")


def train_dataset(segments_npy, table_csv, out_path, loss_csv, checkpoint_root, model_config: dict,
                  diffusion_config: dict, train_config: dict, device: str = "auto", threads: int = 0) -> Path:  # fmt: skip
    """Train on the training split of a segmented dataset (the pipeline's `train` stage).

    The *_config arguments are the config file's `model`, `diffusion` and `train` sections. Checkpoints go to
    checkpoint_root/<run key>, a hash of everything that shapes the weights except
    the step count, so raising train.steps continues the same run.
    """
    import hashlib
    import json

    from .segment import Rows, read_table

    table = read_table(table_csv)
    segments = np.load(segments_npy, mmap_mode="r")
    train_rows = table.index[table["split"] == "train"].to_numpy()
    if not len(train_rows):
        raise ValueError(f"{table_csv}: no segments in the training split")
    class_names, labels = None, None
    if model_config.get("conditional"):
        class_names = sorted(set(table.loc[train_rows, "category"]) - {""})
        if not class_names:
            raise ValueError(f"model.conditional is on but {table_csv} has no categories to condition on")
        known = {name: k for k, name in enumerate(class_names)}
        # unlabelled segments train the null class, as label dropout does
        labels = table.loc[train_rows, "category"].map(lambda c: known.get(c, len(class_names))).to_numpy()
    crop = train_config.get("crop_seconds") or segments.shape[1] / SAMPLE_RATE
    tp = TrainParams(**{k: v for k, v in train_config.items() if k in TrainParams.__dataclass_fields__},
                     crop_samples=int(round(crop * SAMPLE_RATE)), threads=threads)  # fmt: skip
    mp = ModelParams.from_dict(model_config | {"num_classes": len(class_names or [])})
    dp = DiffusionParams.from_dict(diffusion_config)
    identity = {"model": mp.to_dict(), "diffusion": dp.to_dict(),
                "train": {k: v for k, v in asdict(tp).items() if k not in _NOT_IN_RUN_KEY},
                "data": hashlib.sha256(Path(table_csv).read_bytes()).hexdigest()}  # fmt: skip
    run_key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    log.info("%d training segments, %s; checkpoints in %s/%s", len(train_rows),
             f"classes {class_names}" if class_names else "unconditional", checkpoint_root, run_key)  # fmt: skip
    return train(Rows(segments, train_rows), labels, mp, dp, tp, out_path, Path(checkpoint_root) / run_key, loss_csv,
                 class_names=class_names, device=device)  # fmt: skip


def _add_dataclass_args(parser, cls, prefix=""):
    for f in fields(cls):
        default = f.default
        kind = type(default) if not isinstance(default, tuple) else float
        parser.add_argument(f"--{prefix}{f.name.replace('_', '-')}", type=kind, default=default,
                            nargs="+" if isinstance(default, tuple) else None, dest=prefix.replace("-", "_") + f.name)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segments", required=True, help=".npy float32 [N, samples] at 16 kHz")
    ap.add_argument("--labels", help=".npy int [N] class per segment (makes the model class-conditional)")
    ap.add_argument("--class-names", nargs="+", help="one name per class, in label order")
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoint-dir", required=True)
    ap.add_argument("--loss-csv", required=True)
    ap.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:1 ...")
    _add_dataclass_args(ap, TrainParams)
    _add_dataclass_args(ap, ModelParams)
    _add_dataclass_args(ap, DiffusionParams, prefix="diffusion-")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    segments = np.load(a.segments, mmap_mode="r")
    labels = np.load(a.labels) if a.labels else None
    if labels is not None and a.num_classes == 0:
        a.num_classes = len(a.class_names) if a.class_names else int(labels.max()) + 1
    args = vars(a)
    train_params = TrainParams(**{f.name: args[f.name] for f in fields(TrainParams)})
    diffusion_params = DiffusionParams.from_dict({k[10:]: v for k, v in args.items() if k.startswith("diffusion_")})
    train(segments, labels, ModelParams.from_dict(args), diffusion_params, train_params, a.out, a.checkpoint_dir,
          a.loss_csv, class_names=a.class_names, device=a.device)


if __name__ == "__main__":
    main()
