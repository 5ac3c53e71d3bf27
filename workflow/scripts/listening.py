import json
from pathlib import Path

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import listening_build, listening_plan, segment  # noqa: E402

inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
table = segment.read_table(inp.table)
segments = np.load(inp.npy, mmap_mode="r")  # only the clips the study picks are read
real, source = segment.side(table, "heldout"), "held-out"
if real.empty:  # as the evaluation does with too little held out: said in the plan and the report
    real, source = segment.side(table, "train"), "training (nothing was held out)"
generated = {}
for system, npy, info in zip(p.systems, inp.samples, inp.infos):
    generated[system] = (np.load(npy), json.loads(open(info).read()).get("label_names"))
plan = listening_build.build(Path(out.plan).parent, segment.Rows(segments, real["index"]), real["category"].tolist(), generated,
                             listening_plan.StudyParams.from_dict(p.study), snakemake.wildcards.dataset,  # noqa: F821
                             (segments.shape[1] - real["padded_samples"]).tolist(), source)  # fmt: skip
log.info("plan %s: %d stimuli, %d raters x %d trials (%s)", plan["plan_id"], len(plan["stimuli"]), len(plan["raters"]),
         len(next(iter(plan["raters"].values()))), ", ".join(plan["kinds"]))  # fmt: skip
