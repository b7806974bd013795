"""The experiment grid: the same subject and destination data, several training sets for the swap.

Splits are by time. The subject video's first `subject_train_fraction` is where its real
training photos come from (all of them for `all-real`, k evenly spaced ones for `real-k`);
its last part is held out as the reference for identity and FID. The destination video's
first `dest_train_fraction` trains the swap model's destination side (and the personal GAN
prior); its last part is converted and evaluated, so no evaluated frame was trained on.

Conditions, each trained with the same step budget and seed:
    all-real           every extracted frame of the subject's training split
    real-k             k photos
    real-k+gan         k photos + GAN-synthetic images (personal prior, aimed at the destination)
    real-k+warp        k photos + warp-synthetic images (the classical-augmentation control)
    real-k+generic     k photos + GAN-synthetic images from a generic prior (when --generic-gan is given)

Every artefact is a cached stage under the study folder, so an interrupted study resumes
and a finished condition is never retrained.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from synthswap import atomic
from synthswap.faceset import Faceset, write_subset
from synthswap.stages import fresh, run_stage


@dataclass
class StudyOptions:
    subject_video: str
    dest_video: str
    out: str
    ks: list[int] = field(default_factory=lambda: [1, 5, 20])
    engines: list[str] = field(default_factory=lambda: ["gan", "warp"])
    generic_gan: str | None = None  # a GAN trained on a face corpus (e.g. UTKFace)
    gan: str | None = None  # an already trained personal prior to use instead of training one
    size: int = 128
    subject_every_n: int = 2
    dest_every_n: int = 2
    subject_train_fraction: float = 0.8
    dest_train_fraction: float = 0.7
    eval_max_frames: int = 150
    gan_resolution: int = 64
    gan_minutes: float = 30.0
    directions_n: int = 2000
    invert_steps: int = 200
    pti_steps: int = 150
    landmark_steps: int = 400
    synthetic: int = 200
    swap_resolution: int = 64
    swap_steps: int = 1500
    batch_size: int = 8
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def validate(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ValueError("--k needs positive numbers of real photos")
        unknown = set(self.engines) - {"gan", "warp"}
        if unknown:
            raise ValueError(f"unknown engines {sorted(unknown)} (gan, warp)")
        for name in ("subject_train_fraction", "dest_train_fraction"):
            if not 0.1 <= getattr(self, name) <= 0.95:
                raise ValueError(f"--{name.replace('_', '-')} must be between 0.1 and 0.95")


@dataclass
class Condition:
    name: str
    k: int | None  # None for all-real
    synthetic: str | None  # None, "gan", "warp" or "generic"
    sources: list[str]


def split_by_time(faceset: Faceset, fraction: float) -> tuple[list, list]:
    """Faces before and after `fraction` of the covered time span (by frame index)."""
    last = max(f.frame_index for f in faceset)
    cut = last * fraction
    return [f for f in faceset if f.frame_index < cut], [f for f in faceset if f.frame_index >= cut]


def evenly_spaced(faces: list, k: int) -> list:
    if k >= len(faces):
        return list(faces)
    picks = np.linspace(0, len(faces) - 1, k).round().astype(int)
    return [faces[i] for i in picks]


def cut_video(src: str | Path, out: Path, first_frame: int, max_frames: int) -> None:
    """Re-encode frames [first_frame, first_frame + max_frames) of `src` as the evaluation clip."""
    from synthswap.media import VideoWriter, iter_video_frames, probe_video

    info = probe_video(src)
    with VideoWriter(out, info.width, info.height, info.fps) as writer:
        for frame in iter_video_frames(src, max_frames=first_frame + max_frames):
            if frame.index >= first_frame:
                writer.write(frame.bgr)


class Study:
    def __init__(self, opts: StudyOptions, log: Callable[[str], None] = print):
        opts.validate()
        self.opts = opts
        self.root = Path(opts.out)
        self.log = log
        self.data = self.root / "data"
        self.models = self.root / "models"
        self.outputs = self.root / "outputs"

    # -- data -----------------------------------------------------------------------------

    def prepare_data(self) -> None:
        from synthswap.extract import extract

        o = self.opts
        for name, video, every_n in (("subject_all", o.subject_video, o.subject_every_n),
                                     ("dest_all", o.dest_video, o.dest_every_n)):
            run_stage(f"extract {name}", self.data / name, {"size": o.size, "every_n": every_n}, [video],
                      lambda out, r, v=video, n=every_n: extract([v], out, size=o.size, every_n=n,
                                                                 progress=o.progress), self.log)

        def split(src: str, fraction: float, names: tuple[str, str]):
            faces = Faceset.open(self.data / src)
            parts = split_by_time(faces, fraction)
            for part_name, part in zip(names, parts):
                run_stage(f"split {part_name}", self.data / part_name, {"fraction": fraction}, [self.data / src],
                          lambda out, r, p=part: (fresh(out), write_subset(faces, p, out)), self.log)
            return parts

        self.subject_train, _ = split("subject_all", o.subject_train_fraction, ("subject_train", "subject_holdout"))
        dest_train, dest_eval = split("dest_all", o.dest_train_fraction, ("dest_train", "dest_eval_faces"))
        first_eval_frame = min(f.frame_index for f in dest_eval)
        run_stage("cut evaluation clip", self.data / "dest_eval.mp4",
                  {"first": first_eval_frame, "max": o.eval_max_frames}, [o.dest_video],
                  lambda out, r: cut_video(o.dest_video, out, first_eval_frame, o.eval_max_frames), self.log)
        for k in o.ks:
            picks = evenly_spaced(self.subject_train, k)
            subject_train = Faceset.open(self.data / "subject_train")
            run_stage(f"real-{k}", self.data / f"real_{k}", {"k": k}, [self.data / "subject_train"],
                      lambda out, r, p=picks, s=subject_train: (fresh(out), write_subset(s, p, out)), self.log)

    # -- synthetic data ---------------------------------------------------------------------

    def prepare_gan(self) -> Path:
        from synthswap.run import train_gan_into

        o = self.opts
        if o.gan:
            return Path(o.gan)
        gan = self.models / "gan_personal"

        # Destination frames only: a prior that had seen the subject's other frames would leak them.
        run_stage("gan prior (destination frames)", gan, {"resolution": o.gan_resolution, "minutes": o.gan_minutes,
                                                         "seed": o.seed}, [self.data / "dest_train"],
                  lambda out, resume: train_gan_into(out, resume, data=[str(self.data / "dest_train")],
                                                     resolution=o.gan_resolution, minutes=o.gan_minutes,
                                                     seed=o.seed, device=o.device, verbose=o.progress), self.log)
        return gan

    def synthesize_gan(self, k: int, gan: Path, name: str) -> Path:
        from synthswap.run import invert_gan, local_directions, synthesize_stage
        from synthswap.synth.pipeline import SynthOptions, synthesize

        o = self.opts
        real = self.data / f"real_{k}"
        inversion = self.models / f"inversion_{name}_{k}"
        directions = self.models / f"directions_{name}_{k}.safetensors"
        synthetic = self.data / f"synthetic_{name}_{k}"
        invert_gan(gan, real, inversion, o.invert_steps, o.pti_steps, o.landmark_steps, o.seed, o.device,
                   o.progress, self.log)
        if local_directions(gan, inversion, directions, o.directions_n, o.seed, o.device, o.progress, self.log):
            synthesize_stage(f"synthesize real-{k} ({name})", synthetic, {"n": o.synthetic, "seed": o.seed},
                             [inversion, directions, self.data / "dest_train"],
                             lambda out, r: (fresh(out), synthesize(SynthOptions(
                                 out=str(out), n=o.synthetic, engine="gan", inversion=str(inversion),
                                 faces=str(real), match=str(self.data / "dest_train"), directions=str(directions),
                                 seed=o.seed, device=o.device, progress=o.progress), log=self.log)), self.log)
        return synthetic

    def synthesize_warp(self, k: int) -> Path:
        from synthswap.run import synthesize_stage
        from synthswap.synth.pipeline import SynthOptions, synthesize

        o = self.opts
        real = self.data / f"real_{k}"
        synthetic = self.data / f"synthetic_warp_{k}"
        synthesize_stage(f"synthesize real-{k} (warp)", synthetic, {"n": o.synthetic, "seed": o.seed},
                         [real, self.data / "dest_train"],
                         lambda out, r: (fresh(out), synthesize(SynthOptions(
                             out=str(out), n=o.synthetic, engine="warp", faces=str(real),
                             match=str(self.data / "dest_train"), seed=o.seed, device=o.device,
                             progress=o.progress), log=self.log)), self.log)
        return synthetic

    # -- conditions --------------------------------------------------------------------------

    def conditions(self) -> list[Condition]:
        o = self.opts
        conds = [Condition("all-real", None, None, [str(self.data / "subject_train")])]
        gan = self.prepare_gan() if "gan" in o.engines else None
        for k in o.ks:
            real = str(self.data / f"real_{k}")
            conds.append(Condition(f"real-{k}", k, None, [real]))
            synthetic_sets = []
            if "gan" in o.engines:
                synthetic_sets.append(("gan", self.synthesize_gan(k, gan, "personal")))
            if "warp" in o.engines:
                synthetic_sets.append(("warp", self.synthesize_warp(k)))
            if o.generic_gan:
                synthetic_sets.append(("generic", self.synthesize_gan(k, Path(o.generic_gan), "generic")))
            for kind, path in synthetic_sets:
                sources = [real] + ([str(path)] if (path / "faceset.json").exists() and len(Faceset.open(path))
                                    else [])
                if len(sources) == 1:
                    self.log(f"[study] real-{k}+{kind}: no synthetic image passed the identity filter")
                conds.append(Condition(f"real-{k}+{kind}", k, kind, sources))
        return conds

    def train_and_evaluate(self, cond: Condition) -> dict[str, Any]:
        from synthswap.metrics.evaluate import evaluate
        from synthswap.swap.convert import ConvertOptions, convert_video
        from synthswap.run import train_swap_into
        from synthswap.swap.networks import SwapConfig

        o = self.opts
        slug = cond.name.replace("+", "_")
        model = self.models / f"swap_{slug}"
        dest_train = str(self.data / "dest_train")

        run_stage(f"swap train {cond.name}", model, {"res": o.swap_resolution, "steps": o.swap_steps,
                                                     "batch": o.batch_size, "seed": o.seed},
                  [*cond.sources, dest_train],
                  lambda out, resume: train_swap_into(out, resume, src=cond.sources, dst=[dest_train],
                                                      config=SwapConfig(resolution=o.swap_resolution),
                                                      batch_size=o.batch_size, steps=o.swap_steps, seed=o.seed,
                                                      device=o.device, progress=o.progress), self.log)
        eval_clip = self.data / "dest_eval.mp4"
        video = self.outputs / f"{slug}.mp4"
        run_stage(f"convert {cond.name}", video, {}, [model, eval_clip],
                  lambda out, r: convert_video(model, eval_clip, out, ConvertOptions(device=o.device,
                                                                                    progress=o.progress)), self.log)
        metrics_path = self.outputs / f"{slug}_eval.json"
        holdout = self.data / "subject_holdout"
        run_stage(f"evaluate {cond.name}", metrics_path, {}, [video, holdout],
                  lambda out, r: evaluate(video, eval_clip, holdout, progress=o.progress).write(out.with_suffix("")),
                  self.log)
        return json.loads(metrics_path.read_text())["summary"]

    def run(self) -> dict[str, Any]:
        from synthswap.study.report import write_study_report

        self.root.mkdir(parents=True, exist_ok=True)
        self.prepare_data()
        results = []
        for cond in self.conditions():
            metrics = self.train_and_evaluate(cond)
            results.append({**asdict(cond), "metrics": metrics, "synthetic_report": self._synthetic_report(cond)})
        summary = {"options": asdict(self.opts), "conditions": results}
        atomic.write_json(self.root / "results.json", summary, indent=1)
        write_study_report(self.root, summary)
        return summary

    def _synthetic_report(self, cond: Condition) -> dict[str, Any] | None:
        if cond.synthetic is None:
            return None
        name = "personal" if cond.synthetic == "gan" else cond.synthetic
        folder = self.data / (f"synthetic_warp_{cond.k}" if cond.synthetic == "warp" else f"synthetic_{name}_{cond.k}")
        path = folder / "synthesis.json"
        return json.loads(path.read_text()) if path.exists() else None
