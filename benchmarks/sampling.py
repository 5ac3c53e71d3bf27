"""Sampling throughput: seconds of audio per wall second, ours against lmnt-com/diffwave 0.1.7's model in our loop.

    pip install --no-deps diffwave==0.1.7
    python benchmarks/sampling.py                       # paper size 30 x 64; 6, 50, 200 steps; batch 1, 4, 16
    python benchmarks/sampling.py --device cuda --precision bf16 --compile --seconds 1 --all

Both models run in the same sampling loop (cry_diffusion.diffusion.sample: 200 =
ancestral, 6 = DiffWave's fast schedule, others DDIM) under torch.inference_mode, each
(steps, batch) pair back to back. Every sampling step is one forward pass of the network,
so FLOPs per step are counted once per batch size and divided by the measured time per
step to give the fraction of the matmul peak. Work above --max-work audio-second-steps
per run is skipped unless --all, to keep the default run under five minutes on 2 cores.
"""

from __future__ import annotations

import statistics

import torch

import _bench
from cry_diffusion import diffusion

SAMPLE_RATE = 16_000


def main() -> None:
    ap = _bench.common_args(__doc__)
    ap.add_argument("--seconds", type=float, default=0.1, help="length of each generated clip")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--steps", type=int, nargs="+", default=[6, 50, 200])
    ap.add_argument("--max-work", type=float, default=100, help="skip runs of more steps x batch x seconds")
    ap.add_argument("--all", action="store_true", help="run every (steps, batch), however long")
    ap.set_defaults(rounds=1)
    args = ap.parse_args()
    device = _bench.setup(args)
    length = round(args.seconds * SAMPLE_RATE)
    params = diffusion.DiffusionParams()
    torch.manual_seed(0)
    models = {"reference": _bench.reference_model(args.layers, args.channels).to(device).eval(),
              "ours": _bench.our_model(args.layers, args.channels).to(device).eval()}
    autocast = {"reference": None, "ours": _bench.DTYPES[args.precision]}
    if args.compile:  # "reduce-overhead": CUDA graphs replay the fixed-shape forward of every step
        models["ours"] = torch.compile(models["ours"], mode="reduce-overhead" if device.type == "cuda" else "default")

    def run(name, steps, batch):
        dtype = autocast[name]
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            return diffusion.sample(models[name], params, batch, length, steps=steps,
                                    generator=torch.Generator().manual_seed(0), device=device)

    print(f"machine: {_bench.machine(device)}")
    print(f"config: {args.layers} layers x {args.channels} channels, clips of {args.seconds} s, "
          f"ours in {args.precision}{' + torch.compile' if args.compile else ''}, reference in fp32, "
          f"malloc {'as glibc sets it' if args.glibc_default else 'keeping freed blocks (cry_diffusion.runtime)'}\n")
    flops = {}
    for batch in args.batches:
        x = torch.zeros(batch, length, device=device)
        t = torch.zeros(batch, dtype=torch.long, device=device)
        for name, m in models.items():
            with torch.inference_mode():
                flops[name, batch] = _bench.count_flops(lambda: m(x, t))
                m(x, t)  # warm-up at this shape (cudnn autotuning, compilation)

    # each model against the peak of the dtype its matmuls run in
    peak = {"reference": _bench.matmul_peak(device)}
    peak["ours"] = _bench.matmul_peak(device, _bench.DTYPES[args.precision]) if autocast["ours"] else peak["reference"]
    rows, ratios = [], []
    for steps in args.steps:
        for batch in args.batches:
            work = steps * batch * args.seconds
            if work > args.max_work and not args.all:
                rows.append([steps, batch, "skipped", "(--all)", "", "", "", ""])
                continue
            times = _bench.alternate({n: (lambda n=n: run(n, steps, batch)) for n in models}, args.rounds, device,
                                     warmup=0)
            sec = {n: statistics.median(v) for n, v in times.items()}
            r = _bench.ratio(times, "reference", "ours")
            ratios.append(r)
            audio = batch * args.seconds
            frac = {n: flops[n, batch] * steps / sec[n] / peak[n] for n in models}
            rows.append([steps, batch, diffusion.choose_sampler(steps, params), audio / sec["ours"],
                         audio / sec["reference"], r, f"{100 * frac['ours']:.0f}%", f"{100 * frac['reference']:.0f}%"])
    print(_bench.table(rows, ["steps", "batch", "sampler", "ours audio s/s", "ref audio s/s", "speed-up",
                              "ours of peak", "ref of peak"]))
    print(f"\nGFLOP per sampling step (one forward) at batch {args.batches[-1]} x {length} samples: "
          f"ours {flops['ours', args.batches[-1]] / 1e9:.2f}, reference {flops['reference', args.batches[-1]] / 1e9:.2f}")
    print(f"matmul peak (4096^2): fp32 {peak['reference'] / 1e9:.0f} GFLOP/s"
          + (f", {args.precision} {peak['ours'] / 1e9:.0f} GFLOP/s" if autocast["ours"] else ""))
    if ratios:
        print(f"ours is {statistics.median(ratios):.2f}x the reference's speed (median over runs, "
              f"range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
