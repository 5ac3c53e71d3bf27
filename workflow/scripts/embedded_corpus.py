from _common import start

log = start(snakemake)  # noqa: F821

from cry_diffusion import synth  # noqa: E402

corpus = snakemake.params.corpus  # noqa: F821
paths = synth.write_corpus(
    snakemake.output[0],  # noqa: F821
    clips_per_category=corpus["clips_per_category"],
    seconds=tuple(corpus["seconds"]),
    seed=corpus["seed"],
)
log.info("wrote %d files", len(paths))
