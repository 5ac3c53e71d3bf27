from _common import start, train

log = start(snakemake)  # noqa: F821

from cry_diffusion import torchrun  # noqa: E402
from cry_diffusion.vocoder_train import train_vocoder  # noqa: E402

inp = snakemake.input  # noqa: F821
train(snakemake, torchrun.call, train_vocoder, segments_npy=inp.npy, mels_npy=inp.mels, table_csv=inp.table,  # noqa: F821
      mel_config=snakemake.params.mel)  # noqa: F821
