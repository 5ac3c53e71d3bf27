import json

from _common import start, vocoder_settings

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import SAMPLE_RATE, atomic, generate, generator, segment, utility  # noqa: E402
from cry_diffusion.checkpoint import read_model  # noqa: E402

inp, p, out = snakemake.input, snakemake.params, snakemake.output  # noqa: F821
train = segment.side(segment.read_table(inp.table), "train")
train = train[train["category"] != ""]
classes = read_model(inp.model).get("class_names") or []
counts = {c: int((train["category"] == c).sum()) for c in sorted(set(train["category"]))}
needed = utility.pool_size(counts, utility.UtilityParams.from_dict(p.utility))
skipped = utility.skipped(len(counts), bool(classes), p.route)
labels = [] if skipped else [c for c, k in needed.items() for _ in range(k)]
audio, info = np.zeros((0, round(p.seconds * SAMPLE_RATE)), np.float32), {}
if labels:
    vocoder = vocoder_settings(snakemake)  # noqa: F821
    kwargs = generate.sampling_arguments(p.sampling, p.seconds, p.device, snakemake.threads) | {"labels": labels, "n": len(labels)}  # noqa: F821
    audio, info = generator.generate(p.route, inp.model, vocoder=vocoder, **kwargs)
log.info("%s", skipped or f"{len(labels)} generated clips: {needed}")
with atomic.atomic_path(out.npy) as tmp:
    np.save(tmp, audio)
atomic.write_text(out.info, json.dumps({"route": p.route, "labels": labels, "needed": needed, "skipped": skipped,
                                        "sampling": {k: v for k, v in info.items() if k not in ("labels", "label_names")}},
                                       indent=1))  # fmt: skip
