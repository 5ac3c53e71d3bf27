from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cry_diffusion import SAMPLE_RATE, distances, evaluate, segment  # noqa: E402

inp, p = snakemake.input, snakemake.params  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
bundle = torch.load(inp.bundle, map_location="cpu", weights_only=True)
table = segment.read_table(inp.table)
segments, mels = np.load(inp.npy, mmap_mode="r"), np.load(inp.mels, mmap_mode="r")  # read a chunk at a time
train, heldout = segment.side(table, "train"), segment.side(table, "heldout")
try:
    ref = evaluate.Reference.build(bundle, segment.Rows(segments, train["index"]), segment.Rows(segments, heldout["index"]),
                                   distances.EvalParams.from_dict(p.evaluation), p.device, n_floor=p.n,
                                   train_mels=segment.Rows(mels, train["index"]),
                                   heldout_mels=segment.Rows(mels, heldout["index"]),
                                   train_labels=train["category"].tolist(), heldout_labels=heldout["category"].tolist(),
                                   clip_samples=round(p.seconds * SAMPLE_RATE),
                                   train_recordings=train["recording"].tolist())  # fmt: skip
except ValueError as exc:
    raise ValueError(f"dataset {snakemake.wildcards.dataset}: {exc}") from None  # noqa: F821
log.info("on %s: %d training and %d held-out segments%s; copy threshold %.4g", ref.device, len(train), len(heldout),
         " (too few held out: halves from the training split)" if ref.halves_from_train else "", ref.copy_threshold)  # fmt: skip
ref.save(snakemake.output[0])  # noqa: F821
