"""synthswap: face-swap videos from a few photos, with GAN-synthesised training data."""

import os

__version__ = "0.1.0"


def quiet_native_logs() -> None:
    """MediaPipe/TFLite print C++ INFO lines to stderr; users need our messages, not theirs.
    (Here, not in the CLI: the web app's job processes call it too.)"""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
