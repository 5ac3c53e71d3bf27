import json

from _common import start, vocoder_settings

log = start(snakemake)  # noqa: F821

from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from cry_diffusion import atomic, checkpoint, evalplots, evaluate, generate, progress  # noqa: E402

inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
s = p.sampling
bundle = torch.load(inp.bundle, map_location="cpu", weights_only=True)
ref = evaluate.Reference.load(inp.reference, p.device)
route = snakemake.wildcards.route  # noqa: F821
vocoder = vocoder_settings(snakemake)  # noqa: F821
result = progress.measure(checkpoint.checkpoints(inp.snapshots), ref, bundle, route=route, vocoder=vocoder,
                          **generate.sampling_arguments(s, p.seconds, p.device, snakemake.threads))  # noqa: F821
references = {Path(path).stem: json.loads(Path(path).read_text()) for path in inp.references}
evalplots.quality_vs_training(result, references, out.png)
atomic.write_text(out.json, json.dumps(result, indent=1))
