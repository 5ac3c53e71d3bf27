"""The fused residual-layer kernels compiled for an NVIDIA GPU, without one: what each tile costs in resources.

    python benchmarks/kernels.py                  # an H100 (sm_90), C = 64, bf16 and fp32 (as TF32)
    python benchmarks/kernels.py --arch 80 --channels 128

For each kernel of cry_diffusion.fused and each tile in fused.TILES (samples per program x
warps), Triton compiles it here for the named GPU and ptxas reports its registers per
thread and the bytes it spills to local memory; the table adds its shared memory and
whether its matmuls are Hopper's wgmma. A spilling tile is slow on the card, so TILES keeps
those that don't; which of them is fastest only a GPU can say (Triton times them on the
first call there). Run without TRITON_INTERPRET: the interpreter compiles nothing.
"""

from __future__ import annotations

import argparse
import os

import _bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90: H100, 80: A100)")
    ap.add_argument("--channels", type=int, default=64, help="residual channels (the paper: 64)")
    ap.add_argument("--dtypes", nargs="+", default=["bf16", "fp32"])
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
