import json
from pathlib import Path

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import evalplots, evaluate  # noqa: E402
from cry_diffusion.mel import MelParams, log_mel  # noqa: E402

inp, p = snakemake.input, snakemake.params  # noqa: F821
out = Path(snakemake.output[0])  # noqa: F821
out.mkdir(parents=True, exist_ok=True)
mel_params = MelParams.from_dict(p.mel)
top = max(p.steps)
for name in p.datasets:
    evals = {s: json.loads(open(inp[f"{name}/eval/steps-{s}"]).read()) for s in p.steps}
    refs = {r: json.loads(open(inp[f"{name}/eval/{r}"]).read()) for r in evalplots.REFERENCE_STYLE}
    reference = evaluate.Reference.load(inp[f"{name}/reference"])
    real = reference.floor_audio[:4]  # held-out real clips (from the training split when too few were held out)
    generated = np.load(inp[f"{name}/samples/{top}/npy"])[:4]
    evalplots.mels_real_vs_generated(list(log_mel(real, mel_params)), list(log_mel(generated, mel_params)),
                                     out / f"{name}_mels", mel_params, f"{name}: real (top) and generated at {top} steps")  # fmt: skip
    evalplots.feature_histograms(evals[top], reference.ref_features, out / f"{name}_features",
                                 f"{name}: real held-out against generated at {top} steps")
    evalplots.quality_vs_steps(evals, refs, out / f"{name}_quality", f"{name}: quality against sampling steps")
    result = json.loads(open(inp[f"{name}/tradeoff"]).read())
    evalplots.quality_vs_time(result, refs, out / f"{name}_time_to_quality", f"{name}: quality against sampling time")
log.info("figures in %s: %s", out, sorted(f.name for f in out.iterdir()))
