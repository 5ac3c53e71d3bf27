import json
from pathlib import Path

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cry_diffusion import atomic, distances, evalplots, evaluate, segment, unseen, utility  # noqa: E402
from cry_diffusion.mel import MelParams, log_mel  # noqa: E402

inp, p, out = snakemake.input, snakemake.params, snakemake.output  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
table, mels, segments = segment.read_table(inp.table), np.load(inp.mels, mmap_mode="r"), np.load(inp.npy, mmap_mode="r")
pool_info, pool_audio = json.loads(open(inp.pool_info).read()), np.load(inp.pool)


def clips(side):
    rows = segment.side(table, side)
    rows = rows[rows["category"] != ""]
    return utility.Clips(mels[rows["index"].to_numpy()], rows["category"].to_numpy(), rows["recording"].to_numpy())


train, test = clips("train"), clips("heldout")
params = utility.UtilityParams.from_dict(p.utility)
result = {"route": pool_info["route"], "skipped": pool_info["skipped"] or (None if len(test.labels) else "nothing held out")}
if not result["skipped"]:
    pool = utility.Clips(log_mel(pool_audio, MelParams.from_dict(p.mel)), pool_info["labels"],
                         [f"generated {i}" for i in range(len(pool_audio))])  # fmt: skip
    result |= utility.compare(train, test, pool, params)
    result |= utility.sections(result) | {"verdict": utility.verdict(result)}
    bundle = torch.load(inp.bundle, map_location="cpu", weights_only=True)
    ref = evaluate.Reference.load(inp.reference, p.device)
    predict = utility.classifier(train, params, MelParams.from_dict(p.mel))
    heldout = segment.side(table, "heldout")
    held = {c: segments[heldout.loc[heldout["category"] == c, "index"].to_numpy()] for c in result["classes"]}
    result["unseen"] = [unseen.measure(folder.name, held, pool_audio[pool.labels == folder.name],
                                       np.load(folder / "samples.npy"), bundle, ref.target_db, predict,
                                       distances.EvalParams.from_dict(p.evaluation), p.device)
                        for folder in sorted(Path(inp.withheld).iterdir()) if (folder / "samples.npy").exists()]  # fmt: skip
log.info("%s", result.get("verdict") or result["skipped"])
evalplots.utility_vs_fraction(result, out.png)
atomic.write_text(out.json, json.dumps(result, indent=1))
