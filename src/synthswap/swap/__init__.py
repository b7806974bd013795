"""Face-swap engine: DeepFaceLab-style df/liae autoencoders, training and video conversion (see docs/swap.md)."""
