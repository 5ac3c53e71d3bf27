import json

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import (generator, ingest, report, report_data, report_devices, report_evaluation,  # noqa: E402
                           report_listening, report_routes, report_utility, segment)  # fmt: skip
from cry_diffusion.checkpoint import read_model  # noqa: E402
from cry_diffusion.mel import MelParams  # noqa: E402

inp, params = snakemake.input, snakemake.params  # noqa: F821
mel_params = MelParams.from_dict(params.mel)


def load(name, subject):
    return np.load(inp[f"{name}/samples/{subject}/npy"]), json.loads(open(inp[f"{name}/samples/{subject}/info"]).read())


sections = []
for name in params.datasets:
    table = segment.read_table(inp[f"{name}/table"])
    segments = np.load(inp[f"{name}/npy"], mmap_mode="r")
    section = report_data.data_section(
        name,
        ingest.read_manifest(inp[f"{name}/manifest"]),
        table,
        json.loads(open(inp[f"{name}/summary"]).read()),
        segments,
        {key: inp[f"{name}/fig/{key}"] for key in ("durations", "categories", "mels")},
        examples=params.report["examples_per_dataset"],
    )
    real = report_data.pick_examples(segment.side(table, "train"), params.report["examples_per_dataset"])
    real = [(f"{r.category or 'segment'} #{r.index}", segments[r.index]) for r in real.itertuples()]
    train = segments[segment.side(table, "train")["index"].to_numpy()]
    references = {r: json.loads(open(inp[f"{name}/eval/{r}"]).read()) for r in ("real", "noise", "tones")}
    embedding = json.loads(open(inp[f"{name}/embedding"]).read())
    evals = {}
    routes, checkpoints, sample_infos, trained = [], [], [], {}  # trained: each network once, by its file
    for route in params.routes:
        systems = {s: generator.system(route, s) for s in params.steps}
        samples = {s: load(name, system) for s, system in systems.items()}
        evals |= {system: json.loads(open(inp[f"{name}/eval/{system}"]).read()) for system in systems.values()}
        checkpoint = read_model(inp[f"{name}/model/{route}"])
        kind = generator.vocoder_of(route)
        vocoder = read_model(inp[f"{name}/vocoder/{kind}"]) if f"{name}/vocoder/{kind}" in inp.keys() else None
        losses = {"waveform": "waveform"} if route == "waveform" else {"mel_prior": "mel_prior"} | (
            {"vocoder": f"vocoder-{kind}"} if vocoder else {})
        progress = inp.get(f"{name}/progress/{route}")  # only with the route's train.snapshot_every
        routes.append(report_routes.route_section(
            route, checkpoint, {k: inp[f"{name}/loss/{v}"] for k, v in losses.items()}, samples, real, mel_params,
            tradeoff=json.loads(open(inp[f"{name}/tradeoff/{route}"]).read()),
            figures={key: f"{inp.figures}/{name}_{route}_{key}.png" for key in ("quality", "features", "time_to_quality")},
            evals={s: evals[system] for s, system in systems.items()}, train_segments=train, vocoder=vocoder,
            progress=progress and (json.loads(open(progress).read()), inp[f"{name}/fig/progress/{route}"])))  # fmt: skip
        checkpoints.append(checkpoint)
        trained |= {inp[f"{name}/model/{route}"]: checkpoint} | ({inp[f"{name}/vocoder/{kind}"]: vocoder} if vocoder else {})
        sample_infos += [info for _, info in samples.values()]
    copies = {c: json.loads(open(inp[f"{name}/eval/{c}"]).read()) for c in params.copy_synthesis}
    section["routes"] = routes
    section["real"] = report_data.real_cards(real, mel_params)
    section["devices"] = report_devices.stage_devices(
        list(trained.values()), sample_infos, embedding, list(evals.values()) + list(copies.values()) + list(references.values()))
    section["evaluation"] = report_evaluation.evaluation_section(evals, references, embedding, copies)
    section["side_by_side"] = report_routes.side_by_side(params.routes, params.steps, evals, references, checkpoints)
    listening = inp.get(f"{name}/listening")  # only with listening.enabled
    section["listening"] = listening and report_listening.listening_section(json.loads(open(listening).read()),
                                                                            inp[f"{name}/fig/listening"])  # fmt: skip
    utility = inp.get(f"{name}/utility")  # only where the utility stage runs
    section["utility"] = utility and report_utility.utility_section(json.loads(open(utility).read()),
                                                                    inp[f"{name}/fig/utility"])  # fmt: skip
    sections.append(section)
report.render(sections, snakemake.output[0], config=snakemake.config)  # noqa: F821
log.info("report written")
