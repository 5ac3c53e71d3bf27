import json

from _common import start

log = start(snakemake)  # noqa: F821

from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from cry_diffusion import atomic, checkpoint, evalplots, evaluate, progress  # noqa: E402

inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
s = p.sampling
bundle = torch.load(inp.bundle, map_location="cpu", weights_only=True)
ref = evaluate.Reference.load(inp.reference, p.device)
result = progress.measure(checkpoint.checkpoints(inp.snapshots), ref, bundle, n=s["n_samples"], seconds=p.seconds, steps=s["steps"], seed=s["seed"],
                          guidance_scale=s["guidance_scale"], batch_size=s["batch_size"], device=p.device,
                          threads=snakemake.threads, precision=s["precision"], graph=s["graph"],
                          ddim_spacing=s["ddim_spacing"], solver=s["solver"])  # noqa: F821  # fmt: skip
references = {Path(path).stem: json.loads(Path(path).read_text()) for path in inp.references}
evalplots.quality_vs_training(result, references, out.png)
atomic.write_text(out.json, json.dumps(result, indent=1))
