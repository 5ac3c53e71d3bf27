import json
from pathlib import Path

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import evalplots, evaluate, generator  # noqa: E402
from cry_diffusion.mel import MelParams, log_mel  # noqa: E402

inp, p = snakemake.input, snakemake.params  # noqa: F821
out = Path(snakemake.output[0])  # noqa: F821
out.mkdir(parents=True, exist_ok=True)
mel_params = MelParams.from_dict(p.mel)
top = max(p.steps)
for name in p.datasets:
    refs = {r: json.loads(open(inp[f"{name}/eval/{r}"]).read()) for r in evalplots.REFERENCE_STYLE}
    reference = evaluate.Reference.load(inp[f"{name}/reference"])
    real = reference.floor_audio[:4]  # held-out real clips (from the training split when too few were held out)
    for route in p.routes:  # each generator's figures: the paper's mels, features, quality against steps and time
        what, stem = f"{name}, {generator.route_label(route)}", out / f"{name}_{route}"
        evals = {s: json.loads(open(inp[f"{name}/eval/{generator.system(route, s)}"]).read()) for s in p.steps}
        generated = np.load(inp[f"{name}/samples/{generator.system(route, top)}/npy"])[:4]
        evalplots.mels_real_vs_generated(list(log_mel(real, mel_params)), list(log_mel(generated, mel_params)),
                                         f"{stem}_mels", mel_params, f"{what}: real (top) and generated at {top} steps")
        evalplots.feature_histograms(evals[top], reference.ref_features, f"{stem}_features",
                                     f"{what}: real held-out against generated at {top} steps")
        evalplots.quality_vs_steps(evals, refs, f"{stem}_quality", f"{what}: quality against sampling steps")
        result = json.loads(open(inp[f"{name}/tradeoff/{route}"]).read())
        evalplots.quality_vs_time(result, refs, f"{stem}_time_to_quality", f"{what}: quality against sampling time")
log.info("figures in %s: %s", out, sorted(f.name for f in out.iterdir()))
