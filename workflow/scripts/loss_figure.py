from _common import start

log = start(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from cry_diffusion import plots  # noqa: E402

plots.loss_curve(pd.read_csv(snakemake.input[0]), snakemake.output[0])  # noqa: F821
