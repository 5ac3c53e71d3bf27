"""The fused Triton residual layer (cry_diffusion.fused) against the plain PyTorch layer.

Without a GPU the kernels run under Triton's interpreter (TRITON_INTERPRET=1, which conftest.py
sets before triton is imported), in float32 on the CPU; with one, the bf16 test runs them compiled.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO

pytest.importorskip("triton")

from cry_diffusion import diffusion, fused  # noqa: E402  (after the skip: fused imports triton)
from cry_diffusion.model import DiffWave, ModelParams, ResidualLayer
from cry_diffusion.train import TrainParams, train

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(autouse=True)
def exact_float32():
    """On a GPU, float32 convolutions default to TF32, and the kernels follow cuDNN's flag: compare exact ones."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def _rel(a, b):
    return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp(min=1e-12)).item()


@pytest.mark.parametrize("dilation,length,first", [(1, 150, False), (4, 64, True), (8, 200, False), (300, 130, False)])
def test_layer_matches_plain_layer(dilation, length, first):
    """Outputs and every gradient, at lengths off the block size and a dilation past the signal's end."""
    torch.manual_seed(dilation)
    B, C = 2, 16
    layer = ResidualLayer(C, dilation).to(DEVICE)
    with torch.no_grad():  # non-zero biases, so that a bias dropped or misplaced shows
        layer.dilated_conv.bias.normal_()
        layer.output_projection.bias.normal_()
    x = torch.randn(B, C, length, device=DEVICE, requires_grad=True)
    bias = torch.randn(B, C, 1, device=DEVICE, requires_grad=True)
    skip = None if first else torch.randn(B, C, length, device=DEVICE, requires_grad=True)
    g_x, g_skip = torch.randn(B, C, length, device=DEVICE), torch.randn(B, C, length, device=DEVICE)
    inputs = [x, bias] + ([] if first else [skip]) + list(layer.parameters())

    x_ref, s_ref = layer(x, bias)
    s_ref = s_ref if first else s_ref + skip
    want = torch.autograd.grad((x_ref * g_x).sum() + (s_ref * g_skip).sum(), inputs)
    x_out, s_out = layer.fused(x, bias, skip)
    got = torch.autograd.grad((x_out * g_x).sum() + (s_out * g_skip).sum(), inputs)

    assert _rel(x_out, x_ref) < 1e-5 and _rel(s_out, s_ref) < 1e-5
    names = ["x", "step bias"] + ([] if first else ["skip"]) + [n for n, _ in layer.named_parameters()]
    for name, a, b in zip(names, got, want):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        assert _rel(a, b) < 1e-5, f"gradient of {name}: relative error {_rel(a, b):.2e}"


@pytest.mark.parametrize("block,warps", [(t.kwargs["BL"], t.num_warps) for t in fused.TILES[1:]])
def test_every_tile_the_gpu_may_pick_is_right(monkeypatch, block, warps):
    """A GPU times fused.TILES and keeps one; the interpreter runs only the first, so the others are forced here."""
    import triton

    for kernel in (fused._forward, fused._backward_gate, fused._backward_input):
        monkeypatch.setattr(kernel, "configs", [triton.Config({"BL": block}, num_warps=warps)])
    test_layer_matches_plain_layer(4, 300, False)


def _loss_and_grads(model, audio):
    loss = diffusion.loss(model, audio, None, diffusion.DiffusionParams(), torch.Generator(DEVICE).manual_seed(3))
    return loss, torch.autograd.grad(loss, list(model.parameters()))


def test_model_loss_and_gradients_match():
    """The whole model with fused layers: the same loss and parameter gradients as the plain one."""
    torch.manual_seed(0)
    model = DiffWave(ModelParams(residual_layers=3, residual_channels=16, dilation_cycle=2)).to(DEVICE)
    with torch.no_grad():  # the zero-initialised output layer would hide every layer's gradient
        model.output_projection.weight.normal_()
    audio = 0.1 * torch.randn(2, 300, device=DEVICE)
    want_loss, want = _loss_and_grads(model, audio)
    model.use_layer_kernel("triton", DEVICE)
    got_loss, got = _loss_and_grads(model, audio)
    assert abs(got_loss.item() - want_loss.item()) < 1e-5 * want_loss.item()
    for (name, _), a, b in zip(model.named_parameters(), got, want):
        assert _rel(a, b) < 1e-4, f"gradient of {name}: relative error {_rel(a, b):.2e}"


# On a GPU, bf16 as training runs it. The interpreter can't do bf16 (its tl.dot multiplies bf16 values
# as raw bits: outputs near 1e9), so the CPU takes fp16, which goes through the same dtype-generic code.
HALF = torch.bfloat16 if torch.cuda.is_available() else torch.float16


def test_half_precision_autocast_is_as_close_to_float32_as_the_plain_layer():
    torch.manual_seed(0)
    model = DiffWave(ModelParams(residual_layers=4, residual_channels=64, dilation_cycle=4)).to(DEVICE)
    with torch.no_grad():
        model.output_projection.weight.normal_(std=0.1)
    audio = 0.1 * torch.randn(4 if DEVICE.type == "cuda" else 2, 4000 if DEVICE.type == "cuda" else 600, device=DEVICE)
    _, exact = _loss_and_grads(model, audio)
    errors = {}
    for kernel in ("torch", "triton"):
        model.use_layer_kernel(kernel, DEVICE)
        with torch.autocast(DEVICE.type, dtype=HALF):
            _, grads = _loss_and_grads(model, audio)
        assert all(g.dtype == torch.float32 for g in grads)  # the parameters' own dtype, as autocast leaves them
        errors[kernel] = max(_rel(a, b) for a, b in zip(grads, exact))
    assert errors["triton"] < 2 * errors["torch"] + 1e-3, errors


def test_compiling_a_fused_model_leaves_the_plain_one_whole():
    """torch.compile steps around the kernels once, outside the layer loop: a break inside it made dynamo skip
    DiffWave.forward for every model in the process, and a plain model compiled after a fused one ran in pieces."""
    import torch._dynamo

    graphs = {}

    def counting(name):
        def backend(gm, example_inputs):
            graphs[name] = graphs.get(name, 0) + 1
            return gm.forward
        return backend

    torch._dynamo.reset()
    torch.manual_seed(0)
    p = ModelParams(residual_layers=4, residual_channels=16, dilation_cycle=2)
    fused_model, plain = DiffWave(p).use_layer_kernel("triton", DEVICE).to(DEVICE), DiffWave(p).to(DEVICE)
    audio, step = 0.1 * torch.randn(2, 200, device=DEVICE), torch.tensor([3, 150], device=DEVICE)
    want = fused_model(audio, step)
    got = torch.compile(fused_model, backend=counting("fused"))(audio, step)
    torch.compile(plain, backend=counting("plain"))(audio, step)
    assert torch.allclose(got, want, atol=1e-6)
    assert graphs == {"fused": 2, "plain": 1}, graphs  # fused: before and after the layers
    torch._dynamo.reset()


def test_kernels_compile_for_an_h100(tmp_path):
    """The interpreter checks the arithmetic, not what a GPU compiler accepts: compile every kernel and tile
    for sm_90 here (no GPU needed), and find Hopper's tensor-core matmuls (wgmma) in each."""
    pytest.importorskip("triton.backends.nvidia.compiler", reason="Triton without its NVIDIA backend")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = tmp_path / "kernels.json"
    proc = subprocess.run([sys.executable, "kernels.py", "--dtypes", "bf16", "--json", str(out)], env=env,
                          cwd=REPO / "benchmarks", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 3 * len(fused.TILES)
    assert all(r["wgmma"] and 0 < r["registers"] <= 255 for r in rows), rows


def test_layer_timing_rehearses_on_the_cpu(tmp_path):
    """benchmarks/kernels.py --time, which benchmarks/gpu_check.py runs on a GPU, tiny under the interpreter."""
    out = tmp_path / "layer.json"
    proc = subprocess.run([sys.executable, "kernels.py", "--time", "--device", str(DEVICE), "--precision", "fp32",
                           "--batch", "1", "--samples", "200", "--channels", "16", "--rounds", "1", "--repeat", "1",
                           "--json", str(out)],
                          cwd=REPO / "benchmarks", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ms = json.loads(out.read_text())["ms"]
    assert set(ms) == {"plain fwd", "fused fwd", "plain fwd+bwd", "fused fwd+bwd"} and min(ms.values()) > 0


def test_refuses_what_it_cannot_run(monkeypatch):
    model = DiffWave(ModelParams(residual_layers=2, residual_channels=8))
    with pytest.raises(ValueError, match="power of two >= 16, not 8"):
        model.use_layer_kernel("triton", "cpu")
    with pytest.raises(ValueError, match="must be one of"):
        model.use_layer_kernel("cuda-graphs", "cpu")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="runs on a CUDA GPU .* not on cpu"):
        fused.check(16, torch.device("cpu"))
    assert model.layer_kernel == "torch"


def test_training_with_fused_layers_follows_the_plain_run(tmp_path):
    """train.layer_kernel: the same seed gives the same loss curve within float32 rounding."""
    rng = np.random.default_rng(0)
    segments = (0.1 * rng.standard_normal((6, 800))).astype(np.float32)
    mp = ModelParams(residual_layers=2, residual_channels=16, dilation_cycle=2)
    curves = {}
    for kernel in ("torch", "triton"):
        tp = TrainParams(steps=4, batch_size=2, crop_samples=400, log_every=1, checkpoint_every=4,
                         layer_kernel=kernel, compile="off")
        out = tmp_path / kernel
        train(segments, None, mp, diffusion.DiffusionParams(), tp, out / "model.pt", out / "ck", out / "loss.csv",
              device=DEVICE)
        rows = (out / "loss.csv").read_text().splitlines()[1:]
        curves[kernel] = np.array([float(r.split(",")[1]) for r in rows])
    assert len(curves["torch"]) == 4
    np.testing.assert_allclose(curves["triton"], curves["torch"], rtol=1e-4)
