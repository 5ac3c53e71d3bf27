import json

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import atomic, evaluate, generate, vocoder  # noqa: E402
from cry_diffusion.mel import MelParams  # noqa: E402

inp, p, out = snakemake.input, snakemake.params, snakemake.output  # noqa: F821
kind = snakemake.wildcards.vocoder  # noqa: F821
real = evaluate.Reference.load(inp.reference).floor_audio  # the real floor's clips: the ceiling is judged on the same ones
audio, info = vocoder.copy_synthesis(real, kind, MelParams.from_dict(p.mel), model_path=inp.get("vocoder"),
                                     steps=p.vocoder.get("steps"), seed=p.seed, device=p.device,
                                     threads=snakemake.threads,  # noqa: F821
                                     griffin=vocoder.GriffinLimParams.from_dict(p.vocoder))  # fmt: skip
log.info("%s", info)
generate.write_wavs(audio, out.wav, prefix=f"copy_{kind}")
with atomic.atomic_path(out.npy) as tmp:
    np.save(tmp, audio)
atomic.write_text(out.info, json.dumps(info, indent=2))
