"""synthswap: face-swap videos from a few photos, with GAN-synthesised training data."""

__version__ = "0.1.0"
