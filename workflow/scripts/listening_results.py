import json
from pathlib import Path

from _common import start

log = start(snakemake)  # noqa: F821

from cry_diffusion import listening_analysis, listening_store  # noqa: E402

inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
folder = Path(inp.plan).parent
metrics = {system: listening_analysis.metric_values(json.loads(open(path).read()))
           for system, path in zip(p.systems, inp.evaluations)}  # fmt: skip
result = listening_analysis.analyse(listening_store.study_plan(folder), listening_store.read_answers(folder), metrics,
                                    listening_analysis.AnalysisParams.from_dict(p.analysis), str(folder))  # fmt: skip
listening_analysis.write(result, out.json)
listening_analysis.figure(result, out.png)
log.info("%d answers from %d raters (%d excluded)", result["answers"], len(result["raters"]), len(result["excluded"]))
