"""The fused residual-layer kernels: what each tile costs in resources (no GPU needed), and one layer timed.

    python benchmarks/kernels.py                  # compiled for an H100 (sm_90), C = 64, bf16 and fp32 (as TF32)
    python benchmarks/kernels.py --arch 80 --channels 128
    python benchmarks/kernels.py --time --device cuda    # on a GPU: one layer, plain against fused, batch 16 x 1 s

Without --time: for each kernel of cry_diffusion.fused and each tile in fused.TILES
(samples per program x warps), Triton compiles it here for the named GPU and ptxas reports
its registers per thread and the bytes it spills to local memory; the table adds its shared
memory and whether its matmuls are Hopper's wgmma. A spilling tile is slow on the card, so
TILES keeps those that don't; which of them is fastest only a GPU can say (Triton times
them on the first call there). Run it without TRITON_INTERPRET: the interpreter compiles nothing.

With --time: one residual layer (dilation 8) in --precision autocast, its activations in
that dtype as inside the model, as PyTorch ops and as the fused kernels, alternating in one
process, --repeat calls per round: milliseconds for the forward pass alone and for forward
+ backward (gradients returned, not accumulated), and the fused forward's memory throughput
(it must read x and the skip sum and write both once: 4 x B x C x L elements; the layer's
weight casts are in its time). On a CPU it runs under TRITON_INTERPRET=1, tiny, as a
rehearsal only.
"""

from __future__ import annotations

import os
import statistics

import torch

import _bench


def resource_table(args) -> None:
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("TRITON_INTERPRET=1 is set: the interpreter compiles nothing, unset it to run this")
    from cry_diffusion import fused

    rows = []
    for kernel in ("_forward", "_backward_gate", "_backward_input"):
        for dtype in args.dtypes:
            for tile in fused.TILES:
                block, warps = tile.kwargs["BL"], tile.num_warps
                r = fused.resources(kernel, dtype, block, warps, args.channels, args.arch)
                rows.append({"kernel": kernel.strip("_"), "dtype": dtype, "block": block, "warps": warps} | r)
    print(f"sm_{args.arch}, {args.channels} channels\n")
    print(_bench.table([list(r.values()) for r in rows], list(rows[0])))
    _bench.write_json(args.json, {"arch": args.arch, "channels": args.channels, "rows": rows})


def time_layer(args) -> None:
    from cry_diffusion.model import ResidualLayer

    device = _bench.setup(args)
    if device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        raise SystemExit("on a CPU the kernels run only under TRITON_INTERPRET=1 (a rehearsal: tiny sizes)")
    dtype = _bench.DTYPES[args.precision]
    torch.manual_seed(0)
    layer = ResidualLayer(args.channels, 8).to(device)
    # the activations in autocast's dtype, as the layers pass them on inside the model
    act = {"device": device, "dtype": dtype or torch.float32, "requires_grad": True}
    x = torch.randn(args.batch, args.channels, args.samples, **act)
    bias = torch.randn(args.batch, args.channels, 1, **act)
    skip = torch.randn(args.batch, args.channels, args.samples, **act)
    inputs = [x, bias, skip, *layer.parameters()]
    grads = [torch.randn_like(x), torch.randn_like(x)]

    def plain():
        x_out, s = layer(x, bias)
        return x_out, s + skip

    def run(fn, backward):
        def go():
            for _ in range(args.repeat):  # back to back, as in a model: launch overhead overlaps the kernels
                with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    outs = fn()
                if backward:  # returned, not accumulated into .grad: no extra passes to time
                    torch.autograd.grad(outs, inputs, grads)
        return go

    contenders = {f"{name} {part}": run(fn, part == "fwd+bwd") for part in ("fwd", "fwd+bwd")
                  for name, fn in (("plain", plain), ("fused", lambda: layer.fused(x, bias, skip)))}
    times = _bench.alternate(contenders, args.rounds, device)
    ms = {name: 1e3 * statistics.median(t) / args.repeat for name, t in times.items()}
    itemsize = torch.finfo(dtype or torch.float32).bits // 8
    moved = 4 * x.numel() * itemsize  # what the fused forward must move at least
    rows = [[name, t, ms[name.replace("fused", "plain")] / t] for name, t in ms.items()]
    print(f"{_bench.machine(device)}; one layer, {args.channels} channels, dilation 8, batch {args.batch} x "
          f"{args.samples} samples, {args.precision}; median of {args.rounds} rounds of {args.repeat} calls\n")
    print(_bench.table(rows, ["layer", "ms", "speed-up over plain"]))
    bandwidth = moved / (ms["fused fwd"] / 1e3) / 1e9
    print(f"\nfused forward: {moved / 1e6:.3g} MB moved at least, {bandwidth:.3g} GB/s (its weight casts included)")
    _bench.write_json(args.json, {"machine": _bench.machine(device), "ms": ms, "fused_forward_gb_per_s": bandwidth,
                                  "batch": args.batch, "samples": args.samples, "precision": args.precision})


def main() -> None:
    ap = _bench.common_args(__doc__)
    ap.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90: H100, 80: A100)")
    ap.add_argument("--dtypes", nargs="+", default=["bf16", "fp32"], help="without --time: the dtypes compiled")
    ap.add_argument("--time", action="store_true", help="time one layer on --device instead")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--samples", type=int, default=16_000)
    ap.add_argument("--repeat", type=int, default=20, help="--time: calls per timed round")
    ap.set_defaults(precision="bf16")
    args = ap.parse_args()
    time_layer(args) if args.time else resource_table(args)


if __name__ == "__main__":
    main()
