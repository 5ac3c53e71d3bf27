from pathlib import Path

from _common import start, vocoder_settings

log = start(snakemake)  # noqa: F821

from cry_diffusion import generate, segment, withheld  # noqa: E402

inp, p = snakemake.input, snakemake.params  # noqa: F821
out = Path(snakemake.output[0])  # noqa: F821
categories = sorted(set(segment.side(segment.read_table(inp.table), "train")["category"]) - {""})
vocoder = vocoder_settings(snakemake)  # noqa: F821
sampling = generate.sampling_arguments(p.sampling, p.seconds, p.device, snakemake.threads)  # noqa: F821
for category in withheld.categories(p.withhold, categories):
    withheld.train_without(inp.table, inp.data, category, out / category, p.route, f"{p.checkpoints}/{category}", p.model,
                         p.diffusion, p.train | p.cadence, p.mel, sampling, vocoder, p.device, snakemake.threads)  # noqa: F821
    log.info("withheld %s: a generator trained without it, and clips from it", category)
out.mkdir(parents=True, exist_ok=True)  # an empty folder where nothing is withheld
