import json

from _common import start

log = start(snakemake)  # noqa: F821

from cry_diffusion import atomic, distances, evaluate, tradeoff  # noqa: E402

p = snakemake.params  # noqa: F821
evals = {s: json.loads(open(path).read()) for s, path in zip(p.steps, snakemake.input.evaluations)}  # noqa: F821
ref = evaluate.Reference.load(snakemake.input.reference)  # noqa: F821
base = p.base if p.base in evals else max(evals)  # the full ancestral chain when it was sampled
# every step count is sampled from the same seeds, starting noise and labels: clip i of each set is paired
result = tradeoff.compare(evals, ref.ref_level, ref.ref_features, distances.EvalParams.from_dict(p.evaluation), base,
                          paired=True)
log.info("fastest no worse than %s steps: %s", base, result["fastest_no_worse"])
atomic.write_text(snakemake.output[0], json.dumps(result, indent=1))  # noqa: F821
