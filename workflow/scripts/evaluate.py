import json

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cry_diffusion import atomic, evaluate, segment  # noqa: E402

inp, p, subject = snakemake.input, snakemake.params, snakemake.wildcards.subject  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
bundle = torch.load(inp.bundle, map_location="cpu", weights_only=True)
table = segment.read_table(inp.table)
segments = np.load(inp.npy)
train, heldout = (segments[table.loc[table["split"] == s, "index"].to_numpy()] for s in ("train", "heldout"))
params = evaluate.EvalParams.from_dict(p.evaluation)
ref = evaluate.Reference.build(bundle, train, heldout, params, p.device)
labels = None
if subject.startswith("steps-"):
    audio, info = np.load(inp.samples), json.loads(open(inp.info).read())
    labels = info["label_names"]
elif subject == "real":
    audio = ref.floor_audio[: p.n]
else:
    audio = {"noise": evaluate.noise_like, "tones": evaluate.tone_sweeps}[subject](train, p.n, params.seed)
scores = evaluate.score(ref, bundle, audio, labels)
scores |= {"subject": subject, "embedding": bundle["kind"], "heldout_segments": len(heldout),
           "halves_from_train": len(heldout) < 2}  # fmt: skip
if subject.startswith("steps-"):
    scores |= {"wall_seconds_per_audio_second": info["wall_seconds_per_audio_second"], "sampler": info["sampler"]}
log.info("on %s: FAD %s, NDB %s", scores["device"], scores["fad"], scores["ndb"])
atomic.write_text(snakemake.output[0], json.dumps(scores, indent=1))  # noqa: F821
