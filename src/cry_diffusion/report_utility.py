"""What the report says of the utility stage: does synthetic data help a cry classifier? (cry_diffusion.utility)

    from cry_diffusion import report_utility
    section["utility"] = report_utility.utility_section(json.load(open("utility.json")), "utility.png")
"""

from __future__ import annotations

from pathlib import Path

from .report import png_uri
from .report_format import fmt, with_interval


def utility_section(result: dict, figure: str | Path) -> dict:
    """Does synthetic data help? (cry_diffusion.utility, as utility.json holds it)."""
    if result.get("skipped"):
        return {"skipped": result["skipped"], "route": result["route"], "figure": png_uri(figure)}

    def uar(r):
        return with_interval(r["uar"], ".2f")

    rows = [{"name": {"trtr": "real only (TRTR)", "tstr": "generated only (TSTR)"}.get(r["name"], f"real + generated, {r['name']}"),
             "fraction": f"{r['fraction']:g}", "real": r["sizes"][0]["real"], "generated": r["sizes"][0]["generated"],
             "uar": uar(r), "accuracy": fmt(r["accuracy"], ".2f"),
             "difference": "baseline" if r["difference"] is None else with_interval(r["difference"], "+.2f"),
             "effect": r["effect"]} for r in result["rows"]]  # fmt: skip
    unseen = [{"category": u["category"], "n_ref": u["n_ref"], "nearest": u["nearest_other"],
               "sets": [{"name": name, "n": s["n"], "recall": with_interval(s["recall"], ".2f"),
                         "coverage": with_interval(s["coverage"], ".2f"),
                         "assigned": ", ".join(f"{c} {100 * v:.0f}%" for c, v in s["assigned"].items() if v)}
                        for name, s in u["sets"].items()]} for u in result.get("unseen", [])]  # fmt: skip
    return {"skipped": None, "route": result["route"], "figure": png_uri(figure), "rows": rows, "unseen": unseen,
            "verdict": result["verdict"], "chance": f"{result['chance']:.2f}", "classes": result["classes"],
            "test": f"{result['test_clips']} clips of {result['test_recordings']} recordings",
            "train": f"{result['train_clips']} clips of {result['train_recordings']} recordings",
            "seeds": result["params"]["seeds"], "confidence": result["params"]["confidence"]}
