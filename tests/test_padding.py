"""Zero padding on segments' ends: masked out of the loss, or padded segments dropped (train.padding)."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn

from cry_diffusion import diffusion
from cry_diffusion.diffusion import DiffusionParams
from cry_diffusion.model import ModelParams
from cry_diffusion.loop import TrainParams, crop_batch, mean_scored
from cry_diffusion.train import train

pytestmark = pytest.mark.usefixtures("one_thread")
P = DiffusionParams()


class RightUpTo(nn.Module):
    """Knows x0, so predicts the exact noise up to sample `k`, and nonsense after it."""

    def __init__(self, x0, k):
        super().__init__()
        self.x0, self.k, self.abar = x0, k, torch.cumprod(1 - diffusion.betas(P), 0).float()

    def forward(self, x, t, label=None):
        a = self.abar[t.long()][:, None]
        eps = (x - a.sqrt() * self.x0) / (1 - a).sqrt()
        eps[:, self.k:] = 5.0
        return eps


def test_the_loss_leaves_padding_out():
    x0 = torch.randn(3, 400) * 0.1
    x0[:, 300:] = 0  # the padding
    model = RightUpTo(x0, 300)
    masked = diffusion.loss(model, x0, params=P, generator=torch.Generator().manual_seed(0), real=torch.full((3,), 300))
    plain = diffusion.loss(model, x0, params=P, generator=torch.Generator().manual_seed(0))
    assert float(masked) < 1e-8 and float(plain) > 1
    # a different amount of real audio per example: each is scored on its own part only
    model.k = 200
    some = diffusion.loss(model, x0, params=P, generator=torch.Generator().manual_seed(0),
                          real=torch.tensor([200, 300, 300]))
    assert float(some) > 1  # two examples are scored on samples 200-300, where the prediction is nonsense


def test_ranks_scored_by_the_mean_count_average_to_the_global_mean():
    """Under torchrun each rank divides by the mean number of real samples over ranks (train.py all-reduces it):
    DDP's average of the ranks' losses (and gradients) is then the mean over every real sample of the global
    batch. Dividing by each rank's own count weighed the samples of the more padded rank more."""

    class OffBy(RightUpTo):  # exact noise plus a known error per example: its squared error is known exactly
        def __init__(self, x0, off):
            super().__init__(x0, x0.shape[1])
            self.off = off

        def forward(self, x, t, label=None):
            return super().forward(x, t) + self.off[:, None]

    x0 = torch.randn(1, 500) * 0.1
    ranks = [(OffBy(x0, torch.tensor([1.0])), torch.tensor([100])),
             (OffBy(x0, torch.tensor([3.0])), torch.tensor([400]))]
    every = (1.0 * 100 + 9.0 * 400) / 500
    gen = torch.Generator().manual_seed(0)
    own = [float(diffusion.loss(m, x0, params=P, generator=gen, real=r)) for m, r in ranks]
    mean_count = sum(float(r.sum()) for _, r in ranks) / len(ranks)
    shared = [float(diffusion.loss(m, x0, params=P, generator=gen, real=r, scored=mean_count)) for m, r in ranks]
    assert np.mean(own) == pytest.approx(5.0, rel=1e-5) and np.mean(own) != pytest.approx(every, rel=0.1)
    assert np.mean(shared) == pytest.approx(every, rel=1e-5)


def _mean_scored_on(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:  # rank 0 padded (150 real samples of 600), rank 1 not (all 600 scored)
        real = torch.tensor([100, 50]) if rank == 0 else None
        torch.save(mean_scored(real, 2 * 300, torch.device("cpu")), out / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_every_rank_divides_by_the_mean_count(tmp_path):
    """train.mean_scored in two real processes (gloo), one of them with nothing padded: both reach the collective
    and get (150 + 600) / 2."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_mean_scored_on, args=(2, port, tmp_path), nprocs=2)
    assert [float(torch.load(tmp_path / f"{r}.pt")) for r in (0, 1)] == [375.0, 375.0]


def test_crops_start_in_real_audio_and_count_it():
    segments = np.arange(4 * 1000, dtype=np.float32).reshape(4, 1000)
    real = torch.tensor([1000, 600, 300, 1000])  # rows 1 and 2 padded; row 2's real part is shorter than a crop
    segments[1, 600:] = segments[2, 300:] = 0
    audio, _, counted = crop_batch(segments, None, real, 400, 256, torch.Generator().manual_seed(0))
    for crop, n in zip(audio.numpy(), counted.tolist()):
        row, start = divmod(int(crop[0]), 1000)
        assert n == min(400, int(real[row]) - start)
        assert np.all(crop[n:] == 0) and (row == 2 or n == 400)  # only a too-short row gives a padded crop
    assert set(audio[:, 0].numpy().astype(int) // 1000) == {0, 1, 2, 3}


def tiny_run(tmp_path, padding, padded, segments):
    tp = TrainParams(steps=4, batch_size=4, crop_samples=400, checkpoint_every=4, log_every=2, threads=1,
                     padding=padding)
    return train(segments, None, ModelParams(residual_layers=2, residual_channels=8, dilation_cycle=2), P, tp,
                 tmp_path / padding / "m.pt", tmp_path / padding / "ckpt", tmp_path / padding / "loss.csv",
                 padded=padded)


def test_drop_trains_on_whole_segments_only(tmp_path):
    segments = (np.random.default_rng(0).standard_normal((6, 800)) * 0.1).astype(np.float32)
    padded = np.array([0, 0, 300, 0, 200, 0])
    segments[[2, 4], 100] = np.nan  # poison the padded segments' real audio: training on them gives a NaN loss
    assert tiny_run(tmp_path, "drop", padded, segments).exists()
    with pytest.raises(FloatingPointError):
        tiny_run(tmp_path, "mask", padded, segments)
    with pytest.raises(ValueError, match="every one of the 6 segments is padded"):
        tiny_run(tmp_path / "all", "drop", np.full(6, 100), segments)


def test_a_crop_longer_than_its_segment_scores_only_the_segment(tmp_path, monkeypatch):
    seen = []
    loss = diffusion.loss

    def spy(*args, **kwargs):
        real = args[5] if len(args) > 5 else kwargs.get("real")
        seen.append(None if real is None else real.tolist())
        return loss(*args, **kwargs)

    monkeypatch.setattr(diffusion, "loss", spy)
    segments = (np.random.default_rng(0).standard_normal((3, 300)) * 0.1).astype(np.float32)
    tiny_run(tmp_path, "mask", None, segments)  # 400-sample crops of 300-sample segments: 100 zeros each
    assert seen == [[300] * 4] * 4
