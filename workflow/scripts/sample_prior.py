import json

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import atomic, generate, mel_prior  # noqa: E402

p, out = snakemake.params, snakemake.output  # noqa: F821
s = p.sampling
mels, info = mel_prior.generate(snakemake.input.model, **generate.sampling_arguments(s, p.seconds, p.device, snakemake.threads))  # noqa: F821
log.info("%s", {k: v for k, v in info.items() if k not in ("labels", "label_names")})
with atomic.atomic_path(out.mels) as tmp:
    np.save(tmp, mels)
atomic.write_text(out.info, json.dumps(info, indent=2))
