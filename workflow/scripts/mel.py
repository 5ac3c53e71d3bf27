from _common import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from cry_diffusion import atomic, mel, plots, segment  # noqa: E402

params = mel.MelParams.from_dict(snakemake.params.mel)  # noqa: F821
segments = np.load(snakemake.input.npy, mmap_mode="r")  # noqa: F821
with atomic.atomic_path(snakemake.output.mels) as tmp:  # noqa: F821
    # written straight into the file, a batch at a time: memory stays flat however long the corpus
    mels = mel.log_mel(segments, params, out=np.lib.format.open_memmap(tmp, "w+", np.float32, mel.mel_shape(segments.shape, params)))
    mels.flush()
log.info("mels %s from segments %s", mels.shape, segments.shape)

# One segment per category (or the first few): what the data looks like through the model's lens.
table = segment.read_table(snakemake.input.table)  # noqa: F821
picks = table.groupby("category").head(1).head(5)
if len(picks) < 5:
    picks = table.head(5)
plots.mel_grid(
    [mels[i] for i in picks["index"]],
    [f"{r.category or 'segment'} #{r.index}" for r in picks.itertuples()],
    snakemake.output.figure,  # noqa: F821
    params,
    suptitle="real segments",
)
