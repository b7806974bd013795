"""Metrics shared by the GAN trainer and the evaluation stage."""
