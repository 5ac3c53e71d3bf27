rule embedding:
    """A small CNN trained to tell the categories of the training split apart; its penultimate layer embeds audio for FAD."""
    input:
        mels="results/{dataset}/mels.npy",
        table="results/{dataset}/segments.csv",
    output:
        bundle="results/{dataset}/embedding.pt",
        info="results/{dataset}/embedding.json",
    params:
        embedding=config["evaluation"]["embedding"],
        mel=config["mel"],
        device=DEVICE,
        code=code_hash("embedding.py"),
    threads: 2
    log:
        "results/logs/{dataset}/embedding.log",
    benchmark:
        "results/benchmarks/{dataset}/embedding.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/embedding.py"


rule reference:
    """The real side of every comparison, once per dataset: embeddings, features, k-means bins, copy thresholds, the real floor."""
    input:
        bundle="results/{dataset}/embedding.pt",
        npy="results/{dataset}/segments.npy",
        mels="results/{dataset}/mels.npy",
        table="results/{dataset}/segments.csv",
    output:
        "results/{dataset}/evaluation/reference.npz",
    params:
        evaluation=evaluation_params,
        # the real floor is scored on as many clips as are generated, so FAD's small-sample bias matches
        n=config["sampling"]["n_samples"],
        # and the log-mel copy threshold is worked out for clips as long as the generated ones
        seconds=clip_seconds,
        device=DEVICE,
        code=code_hash("reference.py"),
    threads: 2
    log:
        "results/logs/{dataset}/reference.log",
    benchmark:
        "results/benchmarks/{dataset}/reference.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/reference.py"


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
        # the baselines are scored on as many clips as are generated, so FAD's small-sample bias matches
        n=config["sampling"]["n_samples"],
        device=DEVICE,
        code=code_hash("evaluate.py"),
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
        evaluations=lambda w: [f"results/{w.dataset}/evaluation/steps-{s}.json" for s in STEPS],
        reference="results/{dataset}/evaluation/reference.npz",
    output:
        "results/{dataset}/evaluation/tradeoff.json",
    params:
        evaluation=evaluation_params,
        steps=STEPS,
        base=config["diffusion"]["steps"],
        code=code_hash("tradeoff.py"),
    log:
        "results/logs/{dataset}/tradeoff.log",
    benchmark:
        "results/benchmarks/{dataset}/tradeoff.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/tradeoff.py"


rule progress:
    """Quality against training time: each snapshot (train.snapshot_every) sampled and scored as the final model is."""
    input:
        snapshots="results/{dataset}/snapshots",
        bundle="results/{dataset}/embedding.pt",
        reference="results/{dataset}/evaluation/reference.npz",
        references=lambda w: [f"results/{w.dataset}/evaluation/{r}.json" for r in REFERENCES],
    output:
        json="results/{dataset}/evaluation/progress.json",
        png="results/{dataset}/figures/progress.png",
        pdf="results/{dataset}/figures/progress.pdf",
    params:
        # the full chain's settings (the tradeoff's baseline): a snapshot's clips compare with the final model's
        sampling=lambda w: sampling_params(w, steps=max(STEPS)),
        seconds=clip_seconds,
        device=DEVICE,
        code=code_hash("progress.py"),
    threads: 8
    resources:
        gpu=1,
    log:
        "results/logs/{dataset}/progress.log",
    benchmark:
        "results/benchmarks/{dataset}/progress.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/progress.py"


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
        code=code_hash("figures.py"),
    log:
        "results/logs/figures.log",
    benchmark:
        "results/benchmarks/figures.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/figures.py"
