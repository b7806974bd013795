"""What a tiny `synthswap run` produced, as hashes: the check that a refactor changed no result.

    python tests/run_fingerprint.py WORK_FOLDER OUT.json     # run it and write the fingerprint

`tests/data/run_fingerprint.json` was written this way by the code before the options/stages
refactor (issue 22), on an Intel Xeon; `tests/data/run_fingerprint_amd.json` on an AMD EPYC by the
code of 2026-12-07 (the same fp32 job rounds differently there). tests/test_options_once.py runs the
same job and compares with the recording of its torch, CPU kernel level and CPU maker. Everything that
a stage computes is hashed (face crops as decoded pixels, each swap-model tensor, every decoded
output frame, the evaluation's numbers, the stages' cache parameters); what legitimately differs
between two runs is left out: file times, the temporary folder's name, container metadata (the
C2PA manifest and creation time) and the watermark's random run id (the job runs --no-watermark).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

# A job of a few seconds of training: the warp engine (no GAN), 3 subject photos, a GRID clip.
SUBJECT = "videos/people/d6.mp4"
VIDEO = "videos/grid/bbaf2n.mpg"
DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


def run_args(data: Path, folder: Path) -> list[str]:
    return ["run", "--subject", str(data / SUBJECT), "--subject-every-n", "100", "--subject-max-frames", "3",
            "--video", str(data / VIDEO), "--out", str(folder / "out.mp4"), "--every-n", "5", "--engine", "warp",
            "--synthetic", "4", "--swap-steps", "6", "--batch-size", "2", "--device", "cpu", "--precision", "fp32",
            "--no-watermark", "--no-keep-mouth", "--quiet"]  # --no-keep-mouth: as recorded, before it was a default


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def _pixels(path: Path) -> str:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return _sha(image.tobytes() + str(image.shape).encode())


def fingerprint(folder: Path) -> dict:
    """Hashes of every result of the job whose output is folder/out.mp4 (work dir folder/out_work)."""
    import av
    from safetensors.numpy import load_file

    import synthswap

    work = folder / "out_work"
    result: dict = {}
    for faceset in ("subject", "dest", "synthetic_warp"):
        crops = sorted((work / faceset / "faces").glob("*.png"))
        result[f"{faceset}_faces"] = [_pixels(p) for p in crops]
    model = load_file(work / "swap" / "model.safetensors")
    result["swap_model"] = {name: _sha(t.tobytes()) for name, t in sorted(model.items())}
    frames = hashlib.sha256()
    count, means = 0, []
    with av.open(str(folder / "out.mp4")) as container:
        for frame in container.decode(video=0):
            pixels = frame.to_ndarray(format="bgr24")
            frames.update(pixels.tobytes())
            means.append(round(float(pixels.mean()), 3))
            count += 1
    result["output_frames"] = {"count": count, "sha": frames.hexdigest()[:20]}
    result["output_frame_means"] = means  # what the test compares when the bits differ (see there)
    summary = json.loads((work / "evaluation.json").read_text())["summary"]
    result["evaluation"] = {k: v for k, v in summary.items() if not isinstance(v, str)}
    params = {}
    # Paths that differ between machines and checkouts: the job's folder, the data, the package.
    places = {str(folder.resolve()): "<tmp>", str(folder): "<tmp>", str(DATA): "<data>",
              str(Path(synthswap.__file__).resolve().parent): "<package>"}
    for marker in sorted(list(work.glob(".*.stage.json")) + list(folder.glob(".*.stage.json"))):
        text = marker.read_text()
        for place, name in places.items():
            text = text.replace(place, name)
        params[marker.name] = json.loads(text)["params"]
    result["stage_params"] = params
    return result


def cpu_vendor() -> str:
    """The CPU's maker as /proc/cpuinfo names it (GenuineIntel, AuthenticAMD): oneDNN picks its fp32
    kernels' blocking by the chip, not only by the instruction set, so the same AVX-512 job rounds
    differently on an Intel Xeon and an AMD EPYC."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict:
    import torch

    return {"torch": torch.__version__, "machine": platform.machine(), "python": platform.python_version(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_vendor": cpu_vendor()}


def recorded_for(environment_now: dict, goldens: list[dict]) -> dict | None:
    """The recorded fingerprint made where this one runs: the same torch, CPU kernel level and CPU
    maker (a recording without a maker was made on an Intel Xeon)."""
    keys = ("torch", "cpu_capability", "cpu_vendor")
    for golden in goldens:
        recorded = {"cpu_vendor": "GenuineIntel", **golden["environment"]}
        if all(recorded[k] == environment_now[k] for k in keys):
            return golden
    return None


def main(argv: list[str]) -> int:
    import torch

    from synthswap.cli import main as cli

    torch.set_num_threads(1)  # as the test runs it: more threads sum in another order
    folder, out = Path(argv[0]), Path(argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    code = cli(run_args(DATA, folder))
    if code != 0:
        return code
    out.write_text(json.dumps({"environment": environment(), "fingerprint": fingerprint(folder)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
