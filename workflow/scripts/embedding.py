import json

from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cry_diffusion import atomic, segment  # noqa: E402
from cry_diffusion.embedding import EmbeddingParams, classify, train_embedding  # noqa: E402
from cry_diffusion.mel import MelParams  # noqa: E402

inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
table = segment.read_table(inp.table)
mels = np.load(inp.mels, mmap_mode="r")  # the mel stage's log-mels, with the same mel settings: not computed again
train, heldout = segment.side(table, "train"), segment.side(table, "heldout")
bundle, info = train_embedding(None, train["category"].tolist(), EmbeddingParams.from_dict(p.embedding),
                               MelParams.from_dict(p.mel), p.device, mels=mels[train["index"].to_numpy()])  # fmt: skip
info["heldout_segments"] = len(heldout)
heldout = heldout[heldout["category"] != ""]  # the accuracy counts the segments that have a category to get right
predicted = classify(bundle, None, p.device, mels=mels[heldout["index"].to_numpy()]) if len(heldout) else None
info["heldout_accuracy"] = float(np.mean(np.array(predicted) == heldout["category"].to_numpy())) if predicted else None
log.info("%s", info)
with atomic.atomic_path(out.bundle) as tmp:
    torch.save(bundle, tmp)
atomic.write_text(out.info, json.dumps(info, indent=2))
