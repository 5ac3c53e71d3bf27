"""What the report says of a dataset's listening test (cry_diffusion.listening_analysis.analyse), formatted.

    from cry_diffusion import report_listening
    section["listening"] = report_listening.listening_section(json.load(open("results.json")), "results.png")
"""

from __future__ import annotations

from pathlib import Path

from .report import png_uri
from .report_format import fmt


def listening_section(result: dict, figure: str | Path) -> dict:
    """What listeners said (cry_diffusion.listening_analysis.analyse), formatted; `answers` 0: how to collect them."""
    from .listening_analysis import label

    def pct(x):
        return fmt(None if x is None else 100 * x, ".0f") + "%"

    def rho(a):
        return "n/a (no variation)" if a["rho"] is None else f"{a['rho']:+.2f} [{fmt(a['low'], '+.2f')}, {fmt(a['high'], '+.2f')}]"

    category = result.get("category")
    return {
        "answers": result["answers"], "how_to_collect": result["how_to_collect"], "figure": png_uri(figure),
        "raters": len(result["raters"]), "included": result.get("included_raters", 0), "planned": result["raters_planned"],
        "excluded": result["excluded"], "exclusion": result["exclusion"], "kinds": result["kinds"],
        "confidence": result["confidence"], "clip_seconds": result["clip_seconds"], "loudness_matched": result["loudness_matched"],
        "afc": [{"label": r["label"], "n": r["n"], "k": r["picked_as_real"], "rate": f"{pct(r['rate'])} [{pct(r['low'])}, {pct(r['high'])}]",
                 "p": fmt(r["p_value"], ".2g"), "attention": r["attention"], "raters_n": r["raters"], "clips": r["clips"]}
                for r in result["afc"] or []],
        "mos": [{"label": r["label"], "mean": f"{r['mean']:.2f} [{fmt(r['low'], '.2f')}, {fmt(r['high'], '.2f')}]",
                 "n": r["n"], "raters": r["raters"], "clips": r["clips"], "system": r["system"]} for r in result["mos"] or []],
        "alpha": [{"kind": kind, "system": label(system), "alpha": fmt(v, ".2f")}
                  for kind, by_system in result["alpha"].items() for system, v in by_system.items()],
        "drawn": result.get("raters_drawn", 0),
        "category": category and {"categories": category["categories"],
                                  "sides": [{"side": side, **category[side]} for side in ("real", "generated") if side in category]},
        "agreement": [{**a, "rho": rho(a)} for a in result["agreement"]],
    }  # fmt: skip
