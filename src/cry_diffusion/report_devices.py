"""Where each stage of a dataset's run ran, as the report's devices table shows it.

    from cry_diffusion import report_devices
    section["devices"] = report_devices.stage_devices(checkpoints, sample_infos, embedding, evaluations)
"""

from __future__ import annotations


def stage_devices(checkpoints: list[dict], sample_infos: list[dict], embedding: dict, evaluations: list[dict]) -> list[dict]:
    """Where train, sample, embedding and evaluate ran, as each recorded it: one row per stage.

    checkpoints: each route's trained generator. A stage whose jobs ran on different devices
    lists them all, so a GPU run that fell back to the CPU anywhere shows it.
    """
    def row(stage, records, jobs):
        devices = sorted({r.get("device") or "not recorded" for r in records})
        autocast = sorted({r.get("autocast") or "float32" for r in records if "autocast" in r})
        return {"stage": stage, "jobs": jobs, "device": ", ".join(devices), "autocast": ", ".join(autocast) or "float32"}

    return [row("train", checkpoints, len(checkpoints)), row("sample", sample_infos, len(sample_infos)),
            row("embedding", [embedding], 1), row("evaluate", evaluations, len(evaluations))]
