"""The StyleGAN2 face prior: networks, augmentation, training, sampling (and, built on them, inversion and directions)."""
