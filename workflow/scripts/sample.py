import json

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import atomic, generate  # noqa: E402

p, out = snakemake.params, snakemake.output  # noqa: F821
s = p.sampling
audio, info = generate.generate(snakemake.input.model, **generate.sampling_arguments(s, p.seconds, p.device, snakemake.threads))  # noqa: F821
log.info("%s", {k: v for k, v in info.items() if k not in ("labels", "label_names")})
generate.write_wavs(audio, out.wav, prefix=f"steps{s['steps']}", names=info["label_names"])
with atomic.atomic_path(out.npy) as tmp:
    np.save(tmp, audio)
atomic.write_text(out.info, json.dumps(info, indent=2))
