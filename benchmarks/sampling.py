"""Sampling throughput: seconds of audio per wall second, ours against lmnt-com/diffwave 0.1.7's model.

    pip install --no-deps diffwave==0.1.7
    python benchmarks/sampling.py                       # paper size 30 x 64; 6, 50, 200 steps; batch 1, 4, 16
    python benchmarks/sampling.py --device cuda --precision bf16 --seconds 1 --all

Ours runs the way `cry_diffusion.generate` runs it: cry_diffusion.diffusion.sample with
`--precision` autocast and, on a GPU, every denoising step replayed as a CUDA graph
(`--graph`, cry_diffusion.runtime.Replay). The reference runs as lmnt ships it: float32,
eager, one kernel launch at a time. Both draw their noise on the device, from a seeded
generator there. 200 steps = ancestral, 6 = DiffWave's fast schedule, others DDIM. The two
alternate, each (steps, batch) pair back to back. FLOPs per step (one forward) are counted
once per batch size and divided by the measured time per step for the fraction of the
matmul peak. Work above --max-work audio-second-steps per run is skipped unless --all, to
keep the default run under five minutes on 2 cores. Each (steps, batch) cell is timed
after an untimed warm-up at its batch size and lands in --json as soon as it is measured.
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
    ap.add_argument("--graph", choices=("auto", "on", "off"), default="auto",
                    help="our steps as CUDA graphs (auto: on a GPU), as cry_diffusion.generate does")
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
    graph = args.graph == "on" or (args.graph == "auto" and device.type == "cuda")
    how = {"reference": {"autocast": None, "graph": False},
           "ours": {"autocast": _bench.DTYPES[args.precision], "graph": graph}}

    def run(name, steps, batch):
        return diffusion.sample(models[name], params, batch, length, steps=steps, device=device,
                                generator=torch.Generator(device).manual_seed(0), **how[name])

    print(f"machine: {_bench.machine(device)}")
    print(f"config: {args.layers} layers x {args.channels} channels, clips of {args.seconds} s, "
          f"ours in {args.precision}{' with CUDA graphs' if graph else ', eager'}, reference in fp32, eager, "
          f"malloc {'as glibc sets it' if args.glibc_default else 'keeping freed blocks (cry_diffusion.runtime)'}\n")
    flops = {}
    for batch in args.batches:
        x = torch.zeros(batch, length, device=device)
        t = torch.zeros(batch, device=device)
        for name, m in models.items():
            with torch.inference_mode():
                flops[name, batch] = _bench.count_flops(lambda: m(x, t))
            # warm-up at this shape, untimed: cuDNN autotuning, and our step recorded as the graph every later call
            # at this batch replays (cry_diffusion.diffusion keeps it on the model)
            run(name, 6 if 6 in args.steps else min(args.steps), batch)

    # each model against the peak of the dtype its matmuls run in
    peak = {"reference": _bench.matmul_peak(device)}
    peak["ours"] = _bench.matmul_peak(device, how["ours"]["autocast"]) if how["ours"]["autocast"] else peak["reference"]
    rows, ratios, cells = [], [], []
    figures = _bench.settings(args, device) | {"seconds": args.seconds, "layers": args.layers,
                                               "channels": args.channels, "precision": args.precision,
                                               "graph": graph, "rounds": args.rounds}
    for steps in args.steps:
        for batch in args.batches:
            work = steps * batch * args.seconds
            if work > args.max_work and not args.all:
                rows.append([steps, batch, "skipped", "(--all)", "", "", "", ""])
                continue
            times = _bench.alternate({n: (lambda n=n: run(n, steps, batch)) for n in models}, args.rounds, device,
                                     warmup=0)  # warmed up above, per batch size
            sec = {n: statistics.median(v) for n, v in times.items()}
            r = _bench.ratio(times, "reference", "ours")
            ratios.append(r)
            audio = batch * args.seconds
            frac = {n: flops[n, batch] * steps / sec[n] / peak[n] for n in models}
            rows.append([steps, batch, diffusion.choose_sampler(steps, params), audio / sec["ours"],
                         audio / sec["reference"], r, f"{100 * frac['ours']:.0f}%", f"{100 * frac['reference']:.0f}%"])
            cells.append({"steps": steps, "batch": batch, "ours": audio / sec["ours"],
                          "reference": audio / sec["reference"], "speedup": r})
            _bench.write_json(args.json, figures | {"cells": cells})  # each cell as it comes: a cut run keeps them
    print(_bench.table(rows, ["steps", "batch", "sampler", "ours audio s/s", "ref audio s/s", "speed-up",
                              "ours of peak", "ref of peak"]))
    print(f"\nGFLOP per sampling step (one forward) at batch {args.batches[-1]} x {length} samples: "
          f"ours {flops['ours', args.batches[-1]] / 1e9:.2f}, reference {flops['reference', args.batches[-1]] / 1e9:.2f}")
    print(f"matmul peak (one square product): fp32 {peak['reference'] / 1e9:.0f} GFLOP/s"
          + (f", {args.precision} {peak['ours'] / 1e9:.0f} GFLOP/s" if how["ours"]["autocast"] else ""))
    if ratios:
        print(f"ours is {statistics.median(ratios):.2f}x the reference's speed (median over runs, "
              f"range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
