import json

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import SAMPLE_RATE, atomic, generate, generator, vocoder  # noqa: E402
from cry_diffusion.mel import MelParams  # noqa: E402

inp, p, out = snakemake.input, snakemake.params, snakemake.output  # noqa: F821
prior = json.loads(open(inp.info).read())
kind = snakemake.wildcards.vocoder  # noqa: F821
audio, info = vocoder.vocode(np.load(inp.mels), kind, MelParams.from_dict(prior["mel_params"]),
                             round(p.seconds * SAMPLE_RATE), inp.get("vocoder"), p.vocoder.get("steps"), p.seed,
                             device=p.device, threads=snakemake.threads,  # noqa: F821
                             griffin=vocoder.GriffinLimParams.from_dict(p.vocoder))  # fmt: skip
info = generator.joined(prior, info)
log.info("%s", {k: v for k, v in info.items() if k not in ("labels", "label_names")})
generate.write_wavs(audio, out.wav, prefix=f"{kind}_steps{prior['steps']}", names=info["label_names"])
with atomic.atomic_path(out.npy) as tmp:
    np.save(tmp, audio)
atomic.write_text(out.info, json.dumps(info, indent=2))
