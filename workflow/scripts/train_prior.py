from _common import start, train

log = start(snakemake)  # noqa: F821

from cry_diffusion import torchrun  # noqa: E402
from cry_diffusion.mel_prior_train import train_prior  # noqa: E402

inp = snakemake.input  # noqa: F821
train(snakemake, torchrun.call, train_prior, mels_npy=inp.mels, table_csv=inp.table, mel_config=snakemake.params.mel,  # noqa: F821
      snapshots_out=snakemake.output.snapshots)  # noqa: F821
