"""cry-diffusion: infant-cry recordings in, DiffWave-generated cries out.

The library knows nothing about Snakemake: every stage of the workflow is a
plain function here, usable from Python alone.
"""

__version__ = "0.1.0"

SAMPLE_RATE = 16_000  # every model, metric and figure works at 16 kHz, as the paper does
