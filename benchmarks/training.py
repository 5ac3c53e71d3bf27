"""Training throughput: our DiffWave against lmnt-com/diffwave 0.1.7, and both against the machine's matmul peak.

    pip install --no-deps diffwave==0.1.7
    python benchmarks/training.py                       # paper size: 30 x 64, batch 4 x 1 s
    python benchmarks/training.py --device cuda --precision bf16 --compile --batch 16 --layer-kernel both

One training step = noise + forward + MSE + backward + gradient clipping + Adam (fused on
CUDA) + the weights' EMA: the training loop's step, the same for every model. They alternate
in one process (warm-up excluded), --repeat steps per timed round. FLOPs are counted by
torch.utils.flop_counter, not estimated, once, on eager copies of the models before anything
is compiled or timed (the counter's module hooks are gone by then, which the script checks);
ours-triton (--layer-kernel: the residual layers as cry_diffusion.fused's kernels, which the
counter can't see) is credited with the plain model's count: the same arithmetic, with the
gate its backward recomputes left out. Peak memory is that of one step, each model in a
fresh process (CPU: resident set; CUDA: allocator peak); --json is written before those
probes, and again after each. With --layer-kernel both, one float32 forward of the same
weights through plain and fused layers says whether the kernels agree on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

import _bench
from cry_diffusion import diffusion, loop

CONTENDERS = ("reference", "ours", "ours-triton")


def make_step(model, batch: int, samples: int, device, precision: str, repeat: int = 1):
    params = diffusion.DiffusionParams()
    weights = list(model.parameters())
    opt = loop.optimizer(weights, 2e-4, device)
    ema = [w.detach().clone() for w in weights]
    audio = (0.1 * torch.randn(batch, samples)).to(device)
    gen = torch.Generator(device).manual_seed(0)
    dtype = _bench.DTYPES[precision]

    def step():
        for _ in range(repeat):
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = diffusion.loss(model, audio, None, params, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(weights, 1.0)
            opt.step()
            loop.update_ema(ema, weights, 0.999)

    return step


def build(which: str, args, device, compile: bool | None = None):
    torch.manual_seed(0)
    if which == "reference":
        return _bench.reference_model(args.layers, args.channels).to(device), "fp32"
    model = _bench.our_model(args.layers, args.channels).to(device)
    if which == "ours-triton":
        model.use_layer_kernel("triton", device)
    if args.compile if compile is None else compile:
        model = torch.compile(model, backend=args.compile_backend)
    return model, args.precision


def probe(args, device) -> None:
    """In a fresh process: the memory one training step adds to the model and its inputs, printed as the last line.

    The first step, on purpose: after it, glibc keeps much of the freed memory resident (its
    mmap threshold rises), and a later step's peak would hide behind that.
    """
    model, precision = build(args.probe, args, device)
    step = make_step(model, args.batch, args.samples, device, precision)  # one step, whatever --repeat says
    _bench.sync(device)
    if device.type == "cuda":
        step()  # CUDA's caching allocator gives memory back to itself, not the system: a later step is exact
        _bench.sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        _bench.sync(device)
        print((torch.cuda.max_memory_allocated(device) - base) / 2**20)
    else:
        base = _bench.rss_mb()
        _bench.reset_peak_rss()
        step()
        print(_bench.peak_rss_mb() - base)


def main() -> None:
    ap = _bench.common_args(__doc__)
    ap.add_argument("--compile", action="store_true", help="torch.compile our model")
    ap.add_argument("--compile-backend", choices=("inductor", "aot_eager"), default="inductor",
                    help="torch.compile's backend: inductor, what a GPU run uses; or aot_eager, the same graph capture and "
                         "autograd without generating code (a CPU rehearsal: there inductor builds C++, nothing a GPU runs)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--samples", type=int, default=16_000, help="crop length in samples (16,000 = 1 s)")
    ap.add_argument("--layer-kernel", choices=("torch", "triton", "both"), default="torch",
                    help="our residual layers as PyTorch ops (ours), fused Triton kernels (ours-triton), or both")
    ap.add_argument("--repeat", type=int, default=1, help="training steps per timed round (a GPU step is milliseconds)")
    ap.add_argument("--probe-timeout", type=float, default=None, help="seconds for each memory probe (a fresh process); 0: no probes")
    ap.add_argument("--probe", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    device = _bench.setup(args)
    if args.probe:
        return probe(args, device)
    ours = {"torch": ["ours"], "triton": ["ours-triton"], "both": ["ours", "ours-triton"]}[args.layer_kernel]
    names = ["reference"] + ours

    print(f"machine: {_bench.machine(device)}")
    print(f"config: {args.layers} layers x {args.channels} channels, batch {args.batch} x {args.samples} samples, "
          f"ours in {args.precision}{f' + torch.compile ({args.compile_backend})' if args.compile else ''}, reference in fp32, "
          f"malloc {'as glibc sets it' if args.glibc_default else 'keeping freed blocks (cry_diffusion.runtime)'}")
    print("reference: lmnt-com/diffwave 0.1.7, spectrogram_upsampler -> Identity, n_mels=1, "
          "a [B, 1, 1] zero spectrogram broadcast over time\n")
    flops = {}
    for name in ("reference", "ours"):  # eager copies, before anything is compiled or timed
        model, prec = build(name, args, device, compile=False)
        flops[name] = _bench.count_flops(make_step(model, args.batch, args.samples, device, prec))
        del model
    flops["ours-triton"] = flops["ours"]
    agreement = fused_agreement(args, device) if "ours-triton" in names else None
    models = {name: build(name, args, device) for name in names}
    steps = {name: make_step(m, args.batch, args.samples, device, prec, args.repeat)
             for name, (m, prec) in models.items()}
    _bench.require_no_hooks()
    times = {n: [t / args.repeat for t in ts] for n, ts in _bench.alternate(steps, args.rounds, device).items()}
    peak = {"fp32": _bench.matmul_peak(device)}
    if args.precision != "fp32":
        peak[args.precision] = _bench.matmul_peak(device, _bench.DTYPES[args.precision])
    peak["fp32"] = max(peak["fp32"], _bench.matmul_peak(device))  # again, after the models: the better of two
    sec = {n: statistics.median(times[n]) for n in names}
    figures = _bench.settings(args, device) | {
        "batch": args.batch, "samples": args.samples, "layers": args.layers, "channels": args.channels,
        "precision": args.precision, "compile": args.compile,
        "compile_backend": args.compile_backend if args.compile else None, "rounds": args.rounds, "repeat": args.repeat,
        "speedup": {n: _bench.ratio(times, "reference", n) for n in ours},
        "steps_per_second": {n: 1 / sec[n] for n in names},
        "audio_seconds_per_second": {n: args.batch * args.samples / 16_000 / sec[n] for n in names},
        "gflop_per_step": {n: flops[n] / 1e9 for n in names},
        "fraction_of_peak": {n: flops[n] / sec[n] / peak.get(models[n][1], peak["fp32"]) for n in names},
        "matmul_peak_gflops": {k: v / 1e9 for k, v in peak.items()}, "fused_vs_plain": agreement, "peak_mb": None}
    _bench.write_json(args.json, figures)  # now: the memory probes below compile again, and may run out of time
    print(f"{'; '.join(f'{n} {1 / sec[n]:.3g} steps/s' for n in names)}", flush=True)
    mem = {name: "not measured (--probe-timeout 0)" for name in steps}
    for name in steps if args.probe_timeout != 0 else ():
        # glibc's default malloc in the probe: freed blocks go back at once, so the resident peak is what the step needs
        mem[name] = _bench.child_peak(__file__, sys.argv[1:] + ["--probe", name, "--glibc-default"], args.probe_timeout)
        _bench.write_json(args.json, figures | {"peak_mb": mem})

    rows = []
    for name in names:
        prec = models[name][1]
        ceiling = peak.get(prec, peak["fp32"])
        rows.append([name, prec, sec[name], args.batch * args.samples / 16_000 / sec[name], flops[name] / 1e9,
                     flops[name] / sec[name] / 1e9, f"{100 * flops[name] / sec[name] / ceiling:.0f}%", mem[name]])
    print(_bench.table(rows, ["model", "dtype", "s/step", "audio s/s", "GFLOP/step", "GFLOP/s", "of peak", "peak MB"]))
    print("\nmatmul peak (one square product): " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peak.items()))
    for name in ours:
        print(f"{name} is {_bench.ratio(times, 'reference', name):.2f}x the reference's speed "
              f"(median of {args.rounds} back-to-back rounds)")
    print("per-round seconds per step: " + "; ".join(
        f"{n} {', '.join(f'{t:.3g}' for t in times[n])}" for n in names))
    if agreement:
        print(f"fused against plain layers, one float32 forward: max abs difference {agreement['max_abs_diff']:.3g} "
              f"(output scale {agreement['output_scale']:.3g})")
    print("peak memory of one step: " + ", ".join(f"{n} {f'{mem[n]:.0f} MB' if isinstance(mem[n], float) else mem[n]}"
                                                 for n in names)
          + f" ({'CUDA allocator' if device.type == 'cuda' else 'resident set, fresh process each'})")


def fused_agreement(args, device) -> dict:
    """One float32 forward of the same weights with plain and fused layers: are the kernels right on this machine?"""
    plain, _ = build("ours", args, device, compile=False)
    fused, _ = build("ours-triton", args, device, compile=False)
    with torch.no_grad():  # random weights throughout: DiffWave starts with a zero output projection
        for p in plain.parameters():
            p.normal_(0, 0.2, generator=torch.Generator(device).manual_seed(p.numel()))
    fused.load_state_dict(plain.state_dict())
    gen = torch.Generator(device).manual_seed(1)
    audio = 0.1 * torch.randn(args.batch, args.samples, device=device, generator=gen)
    steps = torch.randint(0, 200, (args.batch,), device=device, generator=gen).float()
    with torch.no_grad():
        a, b = plain(audio, steps), fused(audio, steps)
    return {"max_abs_diff": (a - b).abs().max().item(), "output_scale": a.abs().max().item()}


if __name__ == "__main__":
    main()
