from _common import start

log = start(snakemake)  # noqa: F821

from cry_diffusion.train_dataset import train_dataset  # noqa: E402

p, inp, out = snakemake.params, snakemake.input, snakemake.output  # noqa: F821
train_dataset(
    inp.npy,
    inp.table,
    out.model,
    out.loss,
    checkpoint_root=p.checkpoints,
    model_config=p.model,
    diffusion_config=p.diffusion,
    train_config=p.train | p.cadence,
    device=p.device,
    threads=snakemake.threads,  # noqa: F821
    snapshots_out=out.snapshots,
)
