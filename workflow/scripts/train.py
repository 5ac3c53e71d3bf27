from _common import start

log = start(snakemake)  # noqa: F821

from cry_diffusion import torchrun  # noqa: E402
from cry_diffusion.train_dataset import train_dataset  # noqa: E402

p, inp, out = snakemake.params, snakemake.input, snakemake.output  # noqa: F821
gpus = p.train["gpus"]  # train.gpus > 1: torchrun, one process per GPU, each with its share of the threads
torchrun.call(
    gpus,
    train_dataset,
    segments_npy=inp.npy,
    table_csv=inp.table,
    out_path=out.model,
    loss_csv=out.loss,
    checkpoint_root=p.checkpoints,
    model_config=p.model,
    diffusion_config=p.diffusion,
    train_config=p.train | p.cadence,
    device=p.device,
    threads=max(1, snakemake.threads // gpus),  # noqa: F821
    snapshots_out=out.snapshots,
)
