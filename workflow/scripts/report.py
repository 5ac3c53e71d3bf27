import json

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import ingest, report, segment  # noqa: E402

inp, params = snakemake.input, snakemake.params  # noqa: F821
sections = []
for name in params.datasets:
    sections.append(
        report.data_section(
            name,
            ingest.read_manifest(inp[f"{name}/manifest"]),
            segment.read_table(inp[f"{name}/table"]),
            json.loads(open(inp[f"{name}/summary"]).read()),
            np.load(inp[f"{name}/npy"], mmap_mode="r"),
            {key: inp[f"{name}/fig/{key}"] for key in ("durations", "categories", "mels")},
            examples=params.report["examples_per_dataset"],
        )
    )
report.render(sections, snakemake.output[0], config=snakemake.config)  # noqa: F821
log.info("report written")
