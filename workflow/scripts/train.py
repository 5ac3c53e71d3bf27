from _common import start, train

log = start(snakemake)  # noqa: F821

from cry_diffusion import torchrun  # noqa: E402
from cry_diffusion.train_dataset import train_dataset  # noqa: E402

inp = snakemake.input  # noqa: F821
train(snakemake, torchrun.call, train_dataset, segments_npy=inp.npy, table_csv=inp.table,  # noqa: F821
      snapshots_out=snakemake.output.snapshots)  # noqa: F821
