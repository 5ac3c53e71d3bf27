"""DiffWave's residual layer as Triton kernels: the training step's memory traffic cut by fusion.

A plain PyTorch layer writes and re-reads tensors of B x 2C x L several times (the dilated
convolution's output, the gate's halves, the gated product, the projection's output, the
residual sum, the running skip sum), and the same again backwards. With C = 64 every one
of those passes costs more time than the arithmetic it carries, so a GPU step is bound by
memory, not by its matmuls. Here one layer is three kernels and three library calls:

- forward: read x (and the running skip sum), compute the three taps of the dilated
  convolution, the gate, both projections and the residual update in registers, and write
  only the next x and the next skip sum. Nothing else is kept for the backward pass.
- backward, kernel 1: recompute the gate from x (cheaper than storing it), take the
  projection's and the gate's gradients, and write the convolution's output gradient
  (2C x L), the gated product y and the convolution's input x + step bias (C x L each);
  the four bias gradients are summed from the tiles in registers.
- backward, kernel 2: the input gradient (the transposed dilated convolution of that
  gradient, plus the residual path) and the step bias's gradient, its sum over positions.
- the weight matrices' gradients, reductions over B x L: cuDNN's convolution weight
  gradient and two batched matmuls, which are at their best on exactly that shape.

The running skip sum passes through the layer (skip_out = skip_in + skip), so the sum over
layers costs no pass of its own, and its gradient is the same tensor for every layer.

Inputs to the matmuls are in the dtype the layer is given (bfloat16 under autocast); the
accumulators, the gate and the residual update are float32. Channels must be a power of two
of at least 16 (Triton's dot). The kernels run on a CUDA GPU, or on the CPU under Triton's
interpreter, which is how the tests hold them to the plain layer without a GPU (Triton reads
TRITON_INTERPRET when it is imported, and torch imports it early: set it in the environment):

    TRITON_INTERPRET=1 python -m pytest tests/test_fused.py
    python benchmarks/training.py --device cuda --precision bf16 --batch 16 --layer-kernel triton

DiffWave.use_layer_kernel("triton") makes the model use it (train.layer_kernel in the config).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

SQRT_HALF = tl.constexpr(math.sqrt(0.5))  # the residual update's scale, as model.ResidualLayer
# Samples per program (BL) and warps: Triton times these on the first call on a GPU and keeps the
# fastest (a wider tile loads each tap's weights once for more samples, but needs more registers
# for its two float32 C x BL accumulators). The interpreter takes the first: it has nothing to time.
# Compiled for an H100 at C = 64 (benchmarks/kernels.py) in bf16 with Triton 3.9, the first three
# spill nothing (128-255 registers a thread) and the last 56-300 bytes; 128 samples on 4 warps, or
# 256 on 8, spilled 1-4 KB and are left out. Triton 3.5-3.6 spilled 132-1384 bytes on the first.
TILES = [triton.Config({"BL": bl}, num_warps=w) for bl, w in ((64, 4), (32, 4), (64, 8), (128, 8))]
_TRIED = TILES[:1] if os.environ.get("TRITON_INTERPRET") == "1" else TILES


@triton.jit
def _tile(L, C: tl.constexpr, BL: tl.constexpr):
    """This program's batch row b, channels c, positions pos, which of them lie inside the signal, and their offsets."""
    b = tl.program_id(1)
    c = tl.arange(0, C)
    pos = tl.program_id(0) * BL + tl.arange(0, BL)
    return b, c, pos, (pos < L)[None, :], b * C * L + c[:, None] * L + pos[None, :]


@triton.jit
def _gate(x, bias, w, wbias, b, c, pos, L, dil, C: tl.constexpr, BL: tl.constexpr, PREC: tl.constexpr):
    """sigmoid(a) and tanh(f) of the dilated convolution's halves at this tile, and the centre tap's input x + bias."""
    beta = tl.load(bias + b * C + c).to(tl.float32)
    acc_a = tl.zeros((C, BL), tl.float32)
    acc_f = tl.zeros((C, BL), tl.float32)
    centre = acc_a
    for k in tl.static_range(3):
        tap = pos + (k - 1) * dil
        inside = (tap >= 0) & (tap < L)
        h = tl.load(x + b * C * L + c[:, None] * L + tap[None, :], mask=inside[None, :], other=0.0).to(tl.float32)
        # zero padding is applied to x + bias, so outside the signal the input is 0, not the bias
        h = tl.where(inside[None, :], h + beta[:, None], 0.0)
        if k == 1:
            centre = h
        h = h.to(w.dtype.element_ty)
        wa = tl.load(w + k * 2 * C * C + c[:, None] * C + c[None, :])
        wf = tl.load(w + k * 2 * C * C + (C + c[:, None]) * C + c[None, :])
        acc_a += tl.dot(wa, h, input_precision=PREC)
        acc_f += tl.dot(wf, h, input_precision=PREC)
    s = tl.sigmoid(acc_a + tl.load(wbias + c).to(tl.float32)[:, None])
    t = 2 * tl.sigmoid(2 * (acc_f + tl.load(wbias + C + c).to(tl.float32)[:, None])) - 1  # tanh, in float32
    return s, t, centre


@triton.autotune(_TRIED, key=["C"])
@triton.jit
def _forward(x, bias, skip, w, wbias, p, pbias, x_out, skip_out, L, dil,
             HAS_SKIP: tl.constexpr, C: tl.constexpr, BL: tl.constexpr, PREC: tl.constexpr):
    b, c, pos, here, offs = _tile(L, C, BL)
    s, t, _ = _gate(x, bias, w, wbias, b, c, pos, L, dil, C, BL, PREC)
    y = (s * t).to(p.dtype.element_ty)
    pr = tl.load(p + c[:, None] * C + c[None, :])
    ps = tl.load(p + (C + c[:, None]) * C + c[None, :])
    res = tl.dot(pr, y, input_precision=PREC) + tl.load(pbias + c).to(tl.float32)[:, None]
    sk = tl.dot(ps, y, input_precision=PREC) + tl.load(pbias + C + c).to(tl.float32)[:, None]
    xin = tl.load(x + offs, mask=here, other=0.0).to(tl.float32)
    tl.store(x_out + offs, ((xin + res) * SQRT_HALF).to(x_out.dtype.element_ty), mask=here)
    if HAS_SKIP:
        sk += tl.load(skip + offs, mask=here, other=0.0).to(tl.float32)
    tl.store(skip_out + offs, sk.to(skip_out.dtype.element_ty), mask=here)


@triton.autotune(_TRIED, key=["C"], reset_to_zero=["g_wbias", "g_pbias"])  # timing runs add into them too
@triton.jit
def _backward_gate(x, bias, w, wbias, p, g_x_out, g_skip, h_out, y_out, g_conv, g_wbias, g_pbias, L, dil,
                   C: tl.constexpr, BL: tl.constexpr, PREC: tl.constexpr):
    b, c, pos, here, offs = _tile(L, C, BL)
    s, t, centre = _gate(x, bias, w, wbias, b, c, pos, L, dil, C, BL, PREC)
    dt = p.dtype.element_ty
    # The four biases' gradients are sums over positions: taken here, as each tile goes by (zero
    # outside the signal), each in float32 and as early as possible, so that it holds no registers.
    g_res = tl.load(g_x_out + offs, mask=here, other=0.0).to(tl.float32) * SQRT_HALF
    tl.atomic_add(g_pbias + c, tl.sum(g_res, axis=1), sem="relaxed")
    g_sk = tl.load(g_skip + offs, mask=here, other=0.0).to(tl.float32)
    tl.atomic_add(g_pbias + C + c, tl.sum(g_sk, axis=1), sem="relaxed")
    pr_t = tl.load(p + c[None, :] * C + c[:, None])  # [i, o] = p[o, i]: the projection transposed
    ps_t = tl.load(p + (C + c[None, :]) * C + c[:, None])
    g_y = tl.dot(pr_t, g_res.to(dt), input_precision=PREC) + tl.dot(ps_t, g_sk.to(dt), input_precision=PREC)
    tl.store(h_out + offs, centre.to(h_out.dtype.element_ty), mask=here)
    tl.store(y_out + offs, (s * t).to(y_out.dtype.element_ty), mask=here)
    g_offs = b * 2 * C * L + c[:, None] * L + pos[None, :]
    g_a = g_y * t * s * (1 - s)
    tl.atomic_add(g_wbias + c, tl.sum(g_a, axis=1), sem="relaxed")
    tl.store(g_conv + g_offs, g_a.to(g_conv.dtype.element_ty), mask=here)
    g_f = g_y * s * (1 - t * t)
    tl.atomic_add(g_wbias + C + c, tl.sum(g_f, axis=1), sem="relaxed")
    tl.store(g_conv + g_offs + C * L, g_f.to(g_conv.dtype.element_ty), mask=here)


@triton.autotune(_TRIED, key=["C"], reset_to_zero=["g_bias"])  # timing runs add into g_bias too
@triton.jit
def _backward_input(g_conv, w, g_x_out, g_x, g_bias, L, dil,
                    C: tl.constexpr, BL: tl.constexpr, PREC: tl.constexpr):
    b, c, pos, here, offs = _tile(L, C, BL)
    g_h = tl.zeros((C, BL), tl.float32)
    row = g_conv + b * 2 * C * L
    for k in tl.static_range(3):
        # output j saw input j + (k-1) dil through tap k, so input l gets tap k's gradient from j = l - (k-1) dil
        src = pos - (k - 1) * dil
        inside = ((src >= 0) & (src < L))[None, :]
        ga = tl.load(row + c[:, None] * L + src[None, :], mask=inside, other=0.0)
        gf = tl.load(row + (C + c[:, None]) * L + src[None, :], mask=inside, other=0.0)
        wa_t = tl.load(w + k * 2 * C * C + c[None, :] * C + c[:, None])
        wf_t = tl.load(w + k * 2 * C * C + (C + c[None, :]) * C + c[:, None])
        g_h += tl.dot(wa_t, ga, input_precision=PREC) + tl.dot(wf_t, gf, input_precision=PREC)
    g_h = tl.where(here, g_h, 0.0)
    g_direct = tl.load(g_x_out + offs, mask=here, other=0.0).to(tl.float32) * SQRT_HALF
    tl.store(g_x + offs, (g_direct + g_h).to(g_x.dtype.element_ty), mask=here)
    # float32, relaxed: a sum needs no ordering; on a GPU the order of the adds varies from run to run
    tl.atomic_add(g_bias + b * C + c, tl.sum(g_h, axis=1), sem="relaxed")


def _precision(x: torch.Tensor) -> str:
    """tl.dot's input precision: float32 on a GPU rounds to TF32 where cuDNN's convolutions would (PyTorch's
    default), else stays exact; 16-bit inputs ignore it."""
    return "tf32" if x.is_cuda and torch.backends.cudnn.allow_tf32 else "ieee"


def _launch(kernel, x: torch.Tensor, *args, **consts):
    B, C, L = x.shape
    # Triton launches on the current CUDA device, not the tensors': make them the same
    with torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext():
        kernel[lambda meta: (triton.cdiv(L, meta["BL"]), B)](*args, C=C, PREC=_precision(x), **consts)


class _ResidualLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bias, skip, conv_w, conv_b, proj_w, proj_b, dilation):
        w = conv_w.permute(2, 0, 1).contiguous()  # [tap, out, in]: each tap's matrix contiguous
        p = proj_w.squeeze(-1).contiguous()
        ctx.bias_shape = bias.shape
        bias = bias.reshape(x.shape[0], x.shape[1]).contiguous()
        x_out, skip_out = torch.empty_like(x), torch.empty_like(x)
        _launch(_forward, x, x, bias, x if skip is None else skip, w, conv_b, p, proj_b, x_out, skip_out,
                x.shape[2], dilation, HAS_SKIP=skip is not None)
        ctx.save_for_backward(x, bias, w, conv_b, p)
        ctx.dilation, ctx.has_skip, ctx.conv_w_shape = dilation, skip is not None, conv_w.shape
        return x_out, skip_out

    @staticmethod
    @once_differentiable  # the backward's kernels have no backward of their own
    def backward(ctx, g_x_out, g_skip):
        x, bias, w, conv_b, p = ctx.saved_tensors
        B, C, L = x.shape
        d = ctx.dilation
        g_x_out, g_skip = g_x_out.contiguous(), g_skip.contiguous()
        h, y = torch.empty_like(x), torch.empty_like(x)
        g_conv = x.new_empty(B, 2 * C, L)
        g_conv_b, g_proj_b = (torch.zeros(2 * C, device=x.device, dtype=torch.float32) for _ in range(2))
        _launch(_backward_gate, x, x, bias, w, conv_b, p, g_x_out, g_skip, h, y, g_conv, g_conv_b, g_proj_b, L, d)
        g_x = torch.empty_like(x)
        g_bias = torch.zeros(B, C, device=x.device, dtype=torch.float32)
        _launch(_backward_input, x, g_conv, w, g_x_out, g_x, g_bias, L, d)
        g_conv_w = torch.ops.aten.convolution_backward(
            g_conv, h, w.permute(1, 2, 0), None, [1], [d], [d], False, [0], 1, [False, True, False])[1]
        g_proj_w = torch.cat([torch.bmm(g_x_out, y.transpose(1, 2)).sum(0, dtype=torch.float32) * SQRT_HALF.value,
                              torch.bmm(g_skip, y.transpose(1, 2)).sum(0, dtype=torch.float32)])
        dt = w.dtype  # the weights came in x's dtype (the caller casts them), so their gradients leave in it
        return (g_x, g_bias.to(bias.dtype).view(ctx.bias_shape), g_skip if ctx.has_skip else None,
                g_conv_w.reshape(ctx.conv_w_shape).to(dt), g_conv_b.to(dt),
                g_proj_w.unsqueeze(-1).to(dt), g_proj_b.to(dt), None)


def check(channels: int, device: torch.device) -> None:
    """Raise a ValueError saying why the kernels can't run at this width on this device; return if they can."""
    if channels < 16 or channels & (channels - 1):
        raise ValueError(f"layer_kernel 'triton' needs residual_channels a power of two >= 16, not {channels}")
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(f"layer_kernel 'triton' runs on a CUDA GPU (or, for tests, on the CPU under "
                         f"TRITON_INTERPRET=1), not on {device}")


def residual_layer(x, step_bias, skip, conv_w, conv_b, proj_w, proj_b, dilation: int):
    """(x_next, skip_in + skip) of one DiffWave layer; every tensor in x's dtype, the weights as the nn.Conv1d's.

    x [B, C, L]; step_bias [B, C] or [B, C, 1]; skip [B, C, L] or None (the first layer).
    """
    if 2 * x.numel() >= 2**31:  # the kernels' offsets are int32, and the convolution's gradient is 2C x L
        raise ValueError(f"layer_kernel 'triton' handles batches of under 2**30 activations, not {list(x.shape)}")
    x = x.contiguous()
    return _ResidualLayer.apply(x, step_bias, None if skip is None else skip.contiguous(),
                                conv_w, conv_b, proj_w, proj_b, dilation)


def resources(kernel: str, dtype: str = "bf16", block: int = 64, warps: int = 4, channels: int = 64,
              arch: int = 90) -> dict:
    """Compile one kernel for an NVIDIA GPU of compute capability `arch` (90: H100) without one: registers
    a thread, bytes spilled, shared memory, and whether its matmuls use Hopper's wgmma. For choosing TILES.

    kernel: "_forward", "_backward_gate" or "_backward_input"; dtype: "bf16", "fp16" or "fp32" (as TF32).
    """
    import re
    import subprocess

    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import get_ptxas
    from triton.compiler import ASTSource

    try:
        ptxas = get_ptxas(arch).path
    except TypeError:  # Triton before 3.6 has one ptxas for every arch
        ptxas = get_ptxas().path

    fn = globals()[kernel].fn
    consts = {"C": channels, "BL": block, "PREC": "tf32"} | ({"HAS_SKIP": True} if "HAS_SKIP" in fn.arg_names else {})
    float32 = {"g_bias", "g_wbias", "g_pbias"}  # the bias gradients' accumulators
    signature = {a: "constexpr" if a in consts else "i32" if a in ("L", "dil") else "*fp32" if a in float32
                 else f"*{dtype}" for a in fn.arg_names}
    compiled = triton.compile(ASTSource(fn, signature, constexprs=consts), target=GPUTarget("cuda", arch, 32),
                              options={"num_warps": warps})
    ptx = compiled.asm["ptx"]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "k.ptx").write_text(ptx)
        out = subprocess.run([ptxas, f"-arch=sm_{arch}a", "-v", "k.ptx", "-o", "k.cubin"], cwd=tmp,
                             capture_output=True, text=True, check=True).stderr
    return {"registers": int(re.search(r"Used (\d+) registers", out)[1]),
            "spill_bytes": int(re.search(r"(\d+) bytes spill stores", out)[1]),
            "shared_bytes": compiled.metadata.shared, "wgmma": "wgmma" in ptx}
