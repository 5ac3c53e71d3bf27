import json

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cry_diffusion import atomic, collapse, evaluate, progress  # noqa: E402

inp, p, subject = snakemake.input, snakemake.params, snakemake.wildcards.subject  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
bundle = torch.load(inp.bundle, map_location="cpu", weights_only=True)
ref = evaluate.Reference.load(inp.reference, p.device)  # built once per dataset by the reference rule
labels, info = None, None
if "samples" in inp.keys():  # a generated set, or a vocoder's copy synthesis
    audio, info = np.load(inp.samples), json.loads(open(inp.info).read())
    labels = info["label_names"]
elif subject == "real":
    audio = ref.floor_audio
else:  # baselines as long and as loud as the real floor's clips
    audio = {"noise": evaluate.noise_like, "tones": evaluate.tone_sweeps}[subject](ref.floor_audio, p.n, ref.params.seed)
scores = evaluate.score(ref, bundle, audio, labels)
scores |= {"subject": subject, "embedding": bundle["kind"]}
# each acoustic feature held to where real sets of this n fall: where a set sits, not only how far it is
scores["band_checks"] = progress.band_checks(scores["features"], progress.real_ranges(ref), len(audio), ref.params,
                                             real=ref.ref_features)
if subject == "real":  # which measures can't tell this floor from a collapse of its own clips, at this n
    scores["collapse"] = collapse.collapse_blind_spots(ref, bundle, audio)
if info is not None:
    scores |= {"wall_seconds_per_audio_second": info["wall_seconds_per_audio_second"], "sampler": info["sampler"]}
log.info("on %s: FAD %s, KID %s, NDB %s", scores["device"], scores["fad"], scores["kid"], scores["ndb"])
atomic.write_text(snakemake.output[0], json.dumps(scores, indent=1))  # noqa: F821
