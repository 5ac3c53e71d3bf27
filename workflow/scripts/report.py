import json

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import ingest, report, segment  # noqa: E402
from cry_diffusion.checkpoint import read_model  # noqa: E402
from cry_diffusion.mel import MelParams  # noqa: E402

inp, params = snakemake.input, snakemake.params  # noqa: F821
mel_params = MelParams.from_dict(params.mel)
sections = []
for name in params.datasets:
    table = segment.read_table(inp[f"{name}/table"])
    segments = np.load(inp[f"{name}/npy"], mmap_mode="r")
    section = report.data_section(
        name,
        ingest.read_manifest(inp[f"{name}/manifest"]),
        table,
        json.loads(open(inp[f"{name}/summary"]).read()),
        segments,
        {key: inp[f"{name}/fig/{key}"] for key in ("durations", "categories", "mels")},
        examples=params.report["examples_per_dataset"],
    )
    samples = {
        steps: (np.load(inp[f"{name}/samples/{steps}/npy"]), json.loads(open(inp[f"{name}/samples/{steps}/info"]).read()))
        for steps in params.steps
    }
    real = report.pick_examples(segment.side(table, "train"), params.report["examples_per_dataset"])
    checkpoint = read_model(inp[f"{name}/model"])
    section["model"] = report.model_section(
        checkpoint,
        inp[f"{name}/fig/loss"],
        samples,
        [(f"{r.category or 'segment'} #{r.index}", segments[r.index]) for r in real.itertuples()],
        mel_params,
    )
    train = segments[segment.side(table, "train")["index"].to_numpy()]
    evals = {steps: json.loads(open(inp[f"{name}/eval/steps-{steps}"]).read()) for steps in params.steps}
    references = {r: json.loads(open(inp[f"{name}/eval/{r}"]).read()) for r in ("real", "noise", "tones")}
    embedding = json.loads(open(inp[f"{name}/embedding"]).read())
    section["devices"] = report.stage_devices(
        checkpoint,
        [info for _, info in samples.values()],
        embedding,
        list(evals.values()) + list(references.values()),
    )
    section["evaluation"] = report.evaluation_section(
        evals,
        references,
        embedding,
        {key: f"{inp.figures}/{name}_{key}.png" for key in ("quality", "features", "time_to_quality")},
        {steps: audio for steps, (audio, _) in samples.items()},
        train,
        tradeoff=json.loads(open(inp[f"{name}/tradeoff"]).read()),
    )
    progress = inp.get(f"{name}/progress")  # only with train.snapshot_every
    section["progress"] = progress and report.progress_section(json.loads(open(progress).read()),
                                                               inp[f"{name}/fig/progress"])  # fmt: skip
    listening = inp.get(f"{name}/listening")  # only with listening.enabled
    section["listening"] = listening and report.listening_section(json.loads(open(listening).read()),
                                                                  inp[f"{name}/fig/listening"])  # fmt: skip
    sections.append(section)
report.render(sections, snakemake.output[0], config=snakemake.config)  # noqa: F821
log.info("report written")
