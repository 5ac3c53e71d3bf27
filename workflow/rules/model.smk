# The waveform route (generators: [waveform]): DiffWave on audio, as the paper trains it.


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
        cadence=cadence(config["train"]),
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
        npy="results/{dataset}/samples/waveform-steps-{steps}/samples.npy",
        info="results/{dataset}/samples/waveform-steps-{steps}/info.json",
        wav=directory("results/{dataset}/samples/waveform-steps-{steps}/wav"),
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
    """A training curve (the waveform model's, the mel prior's, the vocoder's), drawn apart from training so restyling it never retrains."""
    input:
        lambda w: f"results/{w.dataset}/{LOSS_CURVES[w.network]}",
    output:
        "results/{dataset}/figures/loss-{network}.png",
    wildcard_constraints:
        network="|".join(LOSS_CURVES) or "none",
    params:
        code=code_hash("loss_figure.py"),
    log:
        "results/logs/{dataset}/loss_figure-{network}.log",
    benchmark:
        "results/benchmarks/{dataset}/loss_figure-{network}.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/loss_figure.py"
