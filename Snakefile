# cry-diffusion: raw infant-cry recordings -> DiffWave-generated cries, with the evidence in one report.
#
#   snakemake --cores 2 results/report.html                           # CPU, the embedded corpus
#   snakemake --cores 8 results/report.html                           # one GPU (profiles/default: gpu=1)
#   snakemake results/report.html --workflow-profile profiles/slurm   # SLURM cluster
#   snakemake --cores 2 results/embedded/segments.csv                 # only one dataset's data stages
# Targets go before options that take several values (--resources, --configfile, --forcerun):
# Snakemake reads every word after those as one more of their values.

configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/locks.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/mel_route.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/listening.smk"
include: "workflow/rules/utility.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/report.html",
    default_target: True
