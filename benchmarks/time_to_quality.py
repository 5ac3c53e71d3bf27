"""Time to quality: wall time per second of audio against FAD and the acoustic distances, for each sampler and step count.

Reads what the pipeline measured -- each step count's evaluation (FAD with its bootstrap
interval, Wasserstein distances of f0, voicing, HNR, centroid, flatness, loudness) and its
sampling wall time -- and the pipeline's comparison of every step count with the full 200-step
ancestral chain by a paired bootstrap (tradeoff.json, from cry_diffusion.tradeoff). The model must be trained long enough for the step
counts to differ; the default smoke-test config is not. benchmarks/quality.yaml is:

    snakemake --cores 2 --configfile benchmarks/quality.yaml -- results/report.html   # ~35 min on 2 cores
    python benchmarks/time_to_quality.py                        # results/*/evaluation, a few seconds
    python benchmarks/time_to_quality.py --results other/results --dataset chillanto
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import _bench
from cry_diffusion.features import FEATURES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(_bench.ROOT / "results"))
    ap.add_argument("--dataset", help="default: every dataset with evaluations")
    args = ap.parse_args()
    folders = [Path(args.results) / args.dataset / "evaluation"] if args.dataset else sorted(Path(args.results).glob("*/evaluation"))
    if not folders:
        raise SystemExit(f"no {args.results}/*/evaluation: run the pipeline first (see this script's --help)")
    for folder in folders:
        if not (folder / "tradeoff.json").exists():
            raise SystemExit(f"{folder}: no tradeoff.json; run the pipeline's tradeoff rule first")
        result = json.loads((folder / "tradeoff.json").read_text())  # the pipeline's own comparison, not a second one
        base = result["base_steps"]
        model = json.loads((folder.parent / "samples" / f"steps-{base}" / "info.json").read_text())
        print(f"{folder.parent.name}: {result['rows'][0]['n']} clips per set, model trained {model['model_step']} steps, "
              f"sampled on {model['device']}; {int(100 * result['confidence'])}% paired-bootstrap intervals\n")
        rows = []
        for r in result["rows"]:
            d = r["difference"]
            rows.append([r["steps"], r["sampler"], r["wall_seconds_per_audio_second"], r["speedup"],
                         f"{r['fad']['value']:.3g} [{r['fad']['low']:.3g}, {r['fad']['high']:.3g}]",
                         "baseline" if d is None else f"{d['fad']['value']:+.3g} [{d['fad']['low']:+.3g}, {d['fad']['high']:+.3g}]",
                         ", ".join("FAD" if k == "fad" else k for k in r["worse_on"]) or "-",
                         r["verdict"].upper() if r["verdict"] == "worse" else r["verdict"]])
        print(_bench.table(rows, ["steps", "sampler", "wall s/audio s", "speed-up", "FAD lvl [CI]", "FAD lvl - base [CI]",
                                  "worse on", "verdict"]))
        print("\nW1 distances to real held-out audio (lower is better):")
        print(_bench.table([[r["steps"], *[r["w1"][k] if r["w1"][k] is not None else "n/a" for k in FEATURES]]
                            for r in result["rows"]], ["steps", *FEATURES]))
        f = result["fastest_no_worse"]
        if f and f["steps"] != base:
            print(f"\nfewest steps shown no worse than {base}-step ancestral on every measure (within its margin): "
                  f"{f['steps']} ({f['sampler']}), {f['speedup']:.1f}x less sampling time")
        else:
            print(f"\nno shorter chain is shown no worse than {base}-step ancestral at {result['rows'][0]['n']} clips")
        print()


if __name__ == "__main__":
    main()
