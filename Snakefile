# cry-diffusion: raw infant-cry recordings -> DiffWave-generated cries, with the evidence in one report.
#
#   snakemake --cores 2 results/report.html                          # CPU, the embedded corpus
#   snakemake --cores 8 --resources gpu=1 results/report.html        # one GPU
#   snakemake --profile profiles/slurm results/report.html           # SLURM cluster
#   snakemake --cores 2 results/NAME/segments.csv                    # only one dataset's data stages

configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/report.html",
    default_target: True
