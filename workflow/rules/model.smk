rule train:
    """DiffWave on the training split of one dataset; resumes from results/NAME/checkpoints/ if killed."""
    input:
        npy="results/{dataset}/segments.npy",
        table="results/{dataset}/segments.csv",
    output:
        model="results/{dataset}/model.pt",
        loss="results/{dataset}/loss.csv",
        # train.snapshot_every: the EMA model along the way, for the progress rule (empty when 0)
        snapshots=directory("results/{dataset}/snapshots"),
    params:
        model=config["model"],
        diffusion=config["diffusion"],
        train=TRAIN,
        cadence=untracked(TRAIN_CADENCE),
        device=DEVICE,
        checkpoints=lambda w: f"results/{w.dataset}/checkpoints",
        code=code_hash("train.py"),
    threads: 8
    resources:
        # train.gpus > 1: the script starts torchrun with one process per GPU
        gpu=config["train"]["gpus"],
    log:
        "results/logs/{dataset}/train.log",
    benchmark:
        "results/benchmarks/{dataset}/train.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"


rule sample:
    """N generated cries from one trained model at one step count (sampler chosen from the count)."""
    input:
        model="results/{dataset}/model.pt",
    output:
        npy="results/{dataset}/samples/steps-{steps}/samples.npy",
        info="results/{dataset}/samples/steps-{steps}/info.json",
        wav=directory("results/{dataset}/samples/steps-{steps}/wav"),
    params:
        # Not the list of step counts: adding one must not resample the others.
        sampling=sampling_params,
        seconds=clip_seconds,
        device=DEVICE,
        code=code_hash("sample.py"),
    threads: 8
    resources:
        gpu=1,
    log:
        "results/logs/{dataset}/sample-{steps}.log",
    benchmark:
        "results/benchmarks/{dataset}/sample-{steps}.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/sample.py"


rule loss_figure:
    """The training curve, drawn apart from training so restyling it never retrains."""
    input:
        "results/{dataset}/loss.csv",
    output:
        "results/{dataset}/figures/loss.png",
    params:
        code=code_hash("loss_figure.py"),
    log:
        "results/logs/{dataset}/loss_figure.log",
    benchmark:
        "results/benchmarks/{dataset}/loss_figure.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/loss_figure.py"
