rule embedding:
    """A small CNN trained to tell the categories of the training split apart; its penultimate layer embeds audio for FAD."""
    input:
        npy="results/{dataset}/segments.npy",
        table="results/{dataset}/segments.csv",
    output:
        bundle="results/{dataset}/embedding.pt",
        info="results/{dataset}/embedding.json",
    params:
        embedding=config["evaluation"]["embedding"],
        mel=config["mel"],
        device=config["device"],
        code=code_hash("mel", "embedding", "segment", "runtime"),
    threads: 2
    log:
        "results/logs/{dataset}/embedding.log",
    benchmark:
        "results/benchmarks/{dataset}/embedding.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/embedding.py"


rule evaluate:
    """Every metric of one set -- generated at one step count, or a reference (real, noise, tones) -- against held-out real audio."""
    input:
        unpack(evaluate_inputs),
    output:
        "results/{dataset}/evaluation/{subject}.json",
    wildcard_constraints:
        subject=r"steps-\d+|real|noise|tones",
    params:
        evaluation=evaluation_params,
        # References are scored on as many clips as are generated, so FAD's small-sample bias matches.
        n=config["sampling"]["n_samples"],
        device=config["device"],
        code=code_hash("mel", "embedding", "features", "evaluate", "segment", "runtime"),
    threads: 2
    log:
        "results/logs/{dataset}/evaluate-{subject}.log",
    benchmark:
        "results/benchmarks/{dataset}/evaluate-{subject}.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate.py"


rule tradeoff:
    """Time to quality: every step count against the full chain by a paired bootstrap, and the fastest no-worse one."""
    input:
        lambda w: [f"results/{w.dataset}/evaluation/steps-{s}.json" for s in STEPS],
    output:
        "results/{dataset}/evaluation/tradeoff.json",
    params:
        evaluation=evaluation_params,
        steps=STEPS,
        base=config["diffusion"]["steps"],
        code=code_hash("tradeoff", "evaluate", "features"),
    log:
        "results/logs/{dataset}/tradeoff.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/tradeoff.py"


rule figures:
    """The paper's figures (real against generated mels) and ours (feature histograms, quality against steps), PNG and PDF."""
    input:
        unpack(figure_inputs),
    output:
        directory("results/figures"),
    params:
        datasets=DATASETS,
        steps=STEPS,
        mel=config["mel"],
        code=code_hash("mel", "plots", "features", "evalplots", "segment"),
    log:
        "results/logs/figures.log",
    benchmark:
        "results/benchmarks/figures.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/figures.py"
