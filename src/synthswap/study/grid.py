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
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from synthswap import atomic
from synthswap.faceset import Faceset, write_subset
from synthswap.gan.train import GanTrainOptions
from synthswap.locking import locked_output
from synthswap.media import VideoWriter, iter_video_frames, probe_video
from synthswap.metrics.evaluate import evaluate
from synthswap.options import OptionError, option, redefault
from synthswap.pretrained import SHIPPED_NAME, resolve_model
from synthswap.run import PipelineOptions
from synthswap.cache import fresh, run_stage
from synthswap.stages import (
    FaceExtraction,
    SyntheticFaces,
    convert_stage,
    extract_stage,
    gan_train_stage,
    swap_train_stage,
    synthetic_stage,
)
from synthswap.study.report import write_study_report
from synthswap.swap.convert import ConvertOptions
from synthswap.synth.engines import ENGINES
from synthswap.synth.pipeline import REPORT_FILE


def _fraction(value: float) -> str | None:
    return None if 0.1 <= value <= 0.95 else f"must be between 0.1 and 0.95, not {value}"


@dataclass(kw_only=True)
class StudyOptions(PipelineOptions):
    """The grid's options: `run`'s shared ones (PipelineOptions), some with a default of their own
    (each says why), and the grid's: which k, which engines, the time splits."""

    subject_video: str
    dest_video: str
    out: str
    ks: list[int] = option([1, 5, 20], "numbers of real photos, comma separated", minimum=1, flag="k")
    engines: list[str] = option(list(ENGINES), "synthetic engines, comma separated", choices=tuple(ENGINES))
    generic_gan: str | None = option(None, "also synthesise from this generic prior (e.g. trained on UTKFace); "
                                           "'shipped' is the one inside the package", metavar="GAN_DIR")
    gan: str | None = option(None, "use this trained personal prior instead of training one on the destination",
                             metavar="GAN_DIR")
    subject_every_n: int = redefault(PipelineOptions, "subject_every_n", 2,
                                     "the subject is a whole video whose frames every condition draws from; every "
                                     "2nd frame halves its extraction and keeps every expression")
    dest_every_n: int = option(2, "destination frames extracted (every n-th)", minimum=1)
    subject_train_fraction: float = option(0.8, "share of the subject video's time used for training photos",
                                           check=_fraction)
    dest_train_fraction: float = option(0.7, "share of the destination video's time used for training",
                                        check=_fraction)
    eval_max_frames: int = option(150, "frames of the destination's held-out end that are converted", minimum=1)
    gan_minutes: float = redefault(PipelineOptions, "gan_minutes", 30.0,
                                   "the study trains its prior on the destination's training split alone, a "
                                   "smaller set than run's; the grid's many swap trainings need the time")
    directions_n: int = redefault(PipelineOptions, "directions_n", 2000,
                                  "fitted once per k and prior: several fits per study instead of one per run")
    invert_steps: int = redefault(PipelineOptions, "invert_steps", 200,
                                  "inverted once per k and prior; PTI (same steps as run) does the identity work")
    synthetic: int = redefault(PipelineOptions, "synthetic", 200,
                               "per condition, several conditions per study; the comparison needs the same number "
                               "in each, not run's full set")
    swap_steps: int = redefault(PipelineOptions, "swap_steps", 1500,
                                "the conditions are compared at the same step budget; minutes would give the "
                                "faster conditions more steps")

    def validate(self) -> None:
        if not self.ks:
            raise OptionError("--k needs positive numbers of real photos")
        if self.enhance_minutes:
            raise OptionError("--enhance-minutes: the study converts with the enhancer as shipped (run's default); "
                              "fine-tuning it on each condition's photos is not part of the study")
        super().validate()


@dataclass
class Condition:
    name: str
    k: int | None  # None for all-real
    synthetic: str | None  # None, an engine name, or "generic" (the GAN engine on --generic-gan)
    sources: list[str]


def _write_subset(faceset: Faceset, faces: list, out: Path, resume: bool) -> None:
    """A stage's build: the chosen faces of `faceset` as a faceset of their own (redone, never resumed)."""
    fresh(out)
    write_subset(faceset, faces, out)


def split_by_time(faceset: Faceset, fraction: float) -> tuple[list, list]:
    """Faces before and after `fraction` of the covered time span (by frame index)."""
    last = max(f.frame_index for f in faceset)
    cut = last * fraction
    return [f for f in faceset if f.frame_index < cut], [f for f in faceset if f.frame_index >= cut]


def pick_photos(faces: list, k: int, seed: int = 0) -> list:
    """The k real photos of a condition: evenly spaced over the training split for seed 0 (the single
    study's choice); another seed draws k others at random, in time order."""
    if k >= len(faces):
        return list(faces)
    if seed == 0:
        picks = np.linspace(0, len(faces) - 1, k).round().astype(int)
    else:
        picks = np.sort(np.random.default_rng(seed).choice(len(faces), size=k, replace=False))
    return [faces[i] for i in picks]


def cut_video(src: str | Path, out: Path, first_frame: int, max_frames: int) -> None:
    """Re-encode frames [first_frame, first_frame + max_frames) of `src` as the evaluation clip."""
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
        o = self.opts
        for name, video, every_n in (("subject_all", o.subject_video, o.subject_every_n),
                                     ("dest_all", o.dest_video, o.dest_every_n)):
            extract_stage(f"extract {name}", FaceExtraction(inputs=[video], out=str(self.data / name), size=o.size,
                                                            every_n=every_n, progress=o.progress), self.log)

        def split(src: str, fraction: float, names: tuple[str, str]):
            faces = Faceset.open(self.data / src)
            parts = split_by_time(faces, fraction)
            for part_name, part in zip(names, parts):
                run_stage(f"split {part_name}", self.data / part_name, {"fraction": fraction}, [self.data / src],
                          partial(_write_subset, faces, part), self.log)
            return parts

        self.subject_train, _ = split("subject_all", o.subject_train_fraction, ("subject_train", "subject_holdout"))
        dest_train, dest_eval = split("dest_all", o.dest_train_fraction, ("dest_train", "dest_eval_faces"))
        first_eval_frame = min(f.frame_index for f in dest_eval)
        run_stage("cut evaluation clip", self.data / "dest_eval.mp4",
                  {"first": first_eval_frame, "max": o.eval_max_frames}, [o.dest_video],
                  lambda out, r: cut_video(o.dest_video, out, first_eval_frame, o.eval_max_frames), self.log)
        for k in o.ks:
            picks = pick_photos(self.subject_train, k, o.seed)
            subject_train = Faceset.open(self.data / "subject_train")
            # (seed 0's key is the one studies made before seeds chose photos: their subsets stay valid)
            key = {"k": k} if o.seed == 0 else {"k": k, "seed": o.seed}
            run_stage(f"real-{k}", self.data / f"real_{k}", key, [self.data / "subject_train"],
                      partial(_write_subset, subject_train, picks), self.log)

    # -- synthetic data ---------------------------------------------------------------------

    def prepare_gan(self) -> Path:
        o = self.opts
        if o.gan:
            return Path(o.gan)
        # Destination frames only: a prior that had seen the subject's other frames would leak them.
        return gan_train_stage("gan prior (destination frames)", GanTrainOptions(
            data=[str(self.data / "dest_train")], out=str(self.models / "gan_personal"), resolution=o.gan_resolution,
            minutes=o.gan_minutes, seed=o.seed, device=o.device, verbose=o.progress), self.log)

    def synthesize(self, k: int, engine: str, gan: Path | None, slug: str) -> Path | None:
        """The synthetic faceset of condition real-k+slug (None when nothing passed the filters)."""
        o = self.opts
        plan = SyntheticFaces(engine=engine, subject=str(self.data / f"real_{k}"),
                              match=str(self.data / "dest_train"), out=str(self.synthetic_dir(k, slug)),
                              n=o.synthetic, invert_steps=o.invert_steps, pti_steps=o.pti_steps,
                              landmark_steps=o.landmark_steps, directions_n=o.directions_n, seed=o.seed,
                              device=o.device, progress=o.progress)
        if ENGINES[engine].needs_inversion:
            plan = replace(plan, gan=str(gan), inversion=str(self.models / f"inversion_{slug}_{k}"),
                           directions=str(self.models / f"directions_{slug}_{k}.safetensors"))
        return synthetic_stage(f"synthesize real-{k} ({slug})", plan, self.log)

    def synthetic_dir(self, k: int, slug: str) -> Path:
        return self.data / f"synthetic_{slug}_{k}"

    # -- conditions --------------------------------------------------------------------------

    def conditions(self) -> list[Condition]:
        o = self.opts
        conds = [self.condition(None)]
        for k in o.ks:
            conds.append(self.condition(k))
            conds += [self.condition(k, (engine,)) for engine in o.engines]
            if o.generic_gan:  # the GAN engine a second time, on the generic prior
                conds.append(self.condition(k, ("generic",)))
        return conds

    def condition(self, k: int | None, kinds: tuple[str, ...] = ()) -> Condition:
        """One training set: all-real (k None), real-k, or real-k with the synthetic faces of each of
        `kinds` (an engine's name, or 'generic': the GAN engine on --generic-gan), made if missing."""
        if k is None:
            return Condition("all-real", None, None, [str(self.data / "subject_train")])
        name = f"real-{k}" + "".join(f"+{kind}" for kind in kinds)
        sources = [str(self.data / f"real_{k}")]
        for kind in kinds:
            path = self.synthetic_faces(k, kind)
            if path is None:
                self.log(f"[study] {name}: no {kind} image passed the identity filter")
            else:
                sources.append(str(path))
        return Condition(name, k, "+".join(kinds) or None, sources)

    def synthetic_faces(self, k: int, kind: str) -> Path | None:
        if kind == "generic":
            assert self.opts.generic_gan, "a generic condition needs --generic-gan"
            generic = Path(str(resolve_model(self.opts.generic_gan, "gan")))  # 'shipped': the package's prior
            return self.synthesize(k, "gan", generic, "generic")
        gan = self.prepare_gan() if ENGINES[kind].needs_inversion else None
        return self.synthesize(k, kind, gan, self.engine_slug(kind))

    @staticmethod
    def engine_slug(engine: str) -> str:
        """Folder names of an engine's synthetic data ('personal' for the GAN: its prior's name)."""
        return "personal" if ENGINES[engine].needs_inversion else engine

    def model_dir(self, cond: Condition) -> Path:
        """Where the condition's swap model is trained."""
        return self.models / f"swap_{cond.name.replace('+', '_')}"

    def train_and_evaluate(self, cond: Condition) -> dict[str, Any]:
        o = self.opts
        slug = cond.name.replace("+", "_")
        dest_train = str(self.data / "dest_train")
        init = None if o.swap_init == "none" else str(resolve_model(o.swap_init, "swap", o.swap_resolution))
        model = swap_train_stage(f"swap train {cond.name}",
                                 o.swap_train_options(cond.sources, [dest_train], str(self.model_dir(cond)), init),
                                 self.log)
        eval_clip = self.data / "dest_eval.mp4"
        # run's default face enhancer, as shipped (run fine-tunes it only with --enhance-minutes)
        enhancer = str(resolve_model(SHIPPED_NAME, "enhance")) if o.enhance else None
        video = convert_stage(f"convert {cond.name}", model, eval_clip, self.outputs / f"{slug}.mp4",
                              ConvertOptions(device=o.device, precision=o.precision, progress=o.progress,
                                             enhancer=enhancer, keep_mouth=o.keep_mouth), self.log)
        metrics_path = self.outputs / f"{slug}_eval.json"
        holdout = self.data / "subject_holdout"
        run_stage(f"evaluate {cond.name}", metrics_path, {}, [video, holdout],
                  lambda out, r: evaluate(video, eval_clip, holdout, progress=o.progress).write(out.with_suffix("")),
                  self.log)
        return json.loads(metrics_path.read_text())["summary"]

    def run(self) -> dict[str, Any]:
        for video in (self.opts.subject_video, self.opts.dest_video):
            if not Path(video).is_file():
                raise FileNotFoundError(f"{video}: no such file")
            if self.root.resolve() in Path(video).resolve().parents:
                raise ValueError(f"--out {self.root}: holds the input {video}; the study folder is for its outputs")
        with locked_output(self.root, "study folder"):  # one study per folder
            return self._run()

    def _run(self) -> dict[str, Any]:
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
        if cond.synthetic is None or "+" in cond.synthetic:  # none, or several sets (no one report)
            return None
        assert cond.k is not None  # a condition with synthetic data has its k photos
        slug = "generic" if cond.synthetic == "generic" else self.engine_slug(cond.synthetic)
        path = self.synthetic_dir(cond.k, slug) / REPORT_FILE
        return json.loads(path.read_text()) if path.exists() else None
