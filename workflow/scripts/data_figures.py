from _common import start

log = start(snakemake)  # noqa: F821

from cry_diffusion import ingest, plots, segment  # noqa: E402

plots.durations(ingest.read_manifest(snakemake.input.manifest), snakemake.output.durations)  # noqa: F821
plots.categories(segment.read_table(snakemake.input.table), snakemake.output.categories)  # noqa: F821
