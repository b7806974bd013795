"""The job's stages as functions, shared by `synthswap run`, `synthswap study` and the web app.

Each function runs one stage through the caching mechanism of `synthswap.cache`: skipped
when its inputs and settings are unchanged, resumed after an interruption, started over
otherwise. Each takes the options object of the library function it runs (its `out` is
the stage's output), and the stage's cache key is made from those same options, so a
setting is declared once and every setting that changes the result reruns the stage.

    extract_stage       faces of photos or a video -> faceset
    gan_train_stage     facesets -> GAN prior               (resumes from its checkpoint)
    synthetic_stage     subject (+ prior) -> synthetic faceset, by any registered engine
    swap_train_stage    facesets -> swap model              (resumes from its checkpoint)
    enhancer_stage      subject's photos -> the shipped enhancer fine-tuned on them
    convert_stage       swap model (+ enhancer) + video -> swapped video

`RUN_STAGES` below is `synthswap run`'s stages in order, declared once: `run` names its stages
and places their outputs from it, `run.stage_plan` lists it, and the web app shows each stage's
state and progress from it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from synthswap import space
from synthswap.cache import StageInterrupted, fresh, run_stage
from synthswap.enhance.train import EnhanceTrainOptions, train_enhancer
from synthswap.extract import ExtractOptions, collect_inputs, extract
from synthswap.faces.choice import parse_face
from synthswap.faceset import INFO_FILE as FACESET_INFO
from synthswap.faceset import Faceset
from synthswap.gan.directions import DirectionsError, DirectionsOptions, directions_for_gan
from synthswap.gan.invert import InvertOptions, invert
from synthswap.gan.loading import CHECKPOINT as GAN_CHECKPOINT
from synthswap.gan.train import GanTrainOptions
from synthswap.gan.train import train as train_gan
from synthswap.swap.convert import ConvertOptions, convert_video
from synthswap.swap.loading import CHECKPOINT_FILE as SWAP_CHECKPOINT
from synthswap.swap.networks import SwapModel, SwapConfig
from synthswap.swap.train import SwapTrainOptions, trained_seconds
from synthswap.swap.train import train as train_swap
from synthswap.synth.base import SynthError, SynthOptions
from synthswap.synth.engines import ENGINES
from synthswap.synth.pipeline import synthesize

Log = Callable[[str], None]

# Options that say where a stage writes or how it reports, not what it computes.
_NOT_KEYED = {"out", "progress", "verbose", "device", "resume", "threads", "log_every", "log_seconds", "key_dir",
              "tsa_url", "preview_minutes"}


def stage_params(opts: Any) -> dict[str, Any]:
    """A stage's cache key material: every option of `opts` that can change its result."""
    return {k: v for k, v in asdict(opts).items() if k not in _NOT_KEYED}


@dataclass
class FaceExtraction(ExtractOptions):
    """`extract` as a stage: its declared settings (ExtractOptions) and what it reads and writes."""

    inputs: list[str] = field(kw_only=True)
    out: str = field(kw_only=True)
    progress: bool = True


def extract_stage(name: str, opts: FaceExtraction, log: Log = print) -> Path:
    """Extraction appends and skips faces it already has, so an interrupted stage simply runs again."""
    _, photo = parse_face(opts.face)  # a reference photo is an input too: another photo, another faceset
    run_stage(name, opts.out, stage_params(opts), [*opts.inputs, *([str(photo)] if photo else [])],
              lambda out, resume: extract(opts.inputs, out, size=opts.size, every_n=opts.every_n,
                                          max_frames=opts.max_frames, max_pixels=opts.max_pixels,
                                          face=opts.face, progress=opts.progress), log,
              needs=lambda: space.extraction_bytes(collect_inputs(opts.inputs), opts.size, opts.every_n,
                                                   opts.max_frames))
    return Path(opts.out)


def gan_train_stage(name: str, opts: GanTrainOptions, log: Log = print) -> Path:
    def build(out: Path, resume: bool) -> None:
        resume = resume and (out / GAN_CHECKPOINT).exists()
        if not resume:
            fresh(out)
        summary = train_gan(replace(opts, out=str(out), resume=resume))
        if summary["stopped_by"] == "signal":
            raise StageInterrupted(f"[{name}] interrupted at kimg {summary['kimg']:.1f}; its checkpoint is saved: "
                                   f"run the same command again to resume")

    run_stage(name, opts.out, stage_params(opts), list(opts.data), build, log)
    return Path(opts.out)


def swap_train_stage(name: str, opts: SwapTrainOptions, log: Log = print) -> Path:
    def build(out: Path, resume: bool) -> None:
        resume = resume and (out / SWAP_CHECKPOINT).exists()
        if not resume:
            fresh(out)
        minutes = opts.minutes
        if resume and minutes is not None:  # the budget is the stage's, across interruptions
            spent = trained_seconds(out) / 60
            if spent >= minutes:
                log(f"[{name}] its {minutes:g}-minute budget was spent before the interruption: the checkpoint "
                    f"is the model")
                return
            minutes -= spent
            log(f"[{name}] {spent:.1f} of its {opts.minutes:g} minutes were spent before: {minutes:.1f} left")
        summary = train_swap(replace(opts, out=str(out), resume=resume, minutes=minutes))
        if summary["stopped_by_signal"]:
            raise StageInterrupted(f"[{name}] interrupted at step {summary['step']}; its checkpoint is saved: "
                                   f"run the same command again to resume")

    run_stage(name, opts.out, stage_params(opts), [*opts.src, *opts.dst], build, log,
              needs=lambda: space.checkpoint_bytes(swap_parameters(opts.config)))
    return Path(opts.out)


def swap_parameters(config: SwapConfig) -> int:
    """The swap model's parameter count, from its shape alone (built on the meta device: no memory)."""
    import torch

    from synthswap.training import parameter_count

    with torch.device("meta"):
        return parameter_count(SwapModel(config))


def enhancer_stage(name: str, opts: EnhanceTrainOptions, log: Log = print) -> Path:
    """The enhancer fine-tuned on the subject's photos: a minute or two, redone rather than resumed."""
    def build(out: Path, resume: bool) -> None:
        fresh(out)
        train_enhancer(replace(opts, out=str(out)), log=log)

    run_stage(name, opts.out, stage_params(opts), list(opts.data), build, log)
    return Path(opts.out)


def convert_stage(name: str, model: Path, video: str | Path, out: Path, opts: ConvertOptions,
                  log: Log = print) -> Path:
    run_stage(name, out, stage_params(opts), [model, video],
              lambda o, resume: convert_video(model, video, o, opts), log, needs=lambda: space.video_bytes(video))
    return out


@dataclass
class SyntheticFaces:
    """Everything a synthesis stage needs, whichever engine makes the images.

    For an engine that edits a GAN inversion (`needs_inversion`), the subject's photos are
    first inverted into `gan` (`inversion`) and directions fitted around the pivots
    (`directions`); those two are stages of their own, cached beside the synthetic faceset.
    """

    engine: str
    subject: str  # the subject's real faceset
    match: str  # the destination faceset whose expressions to aim at
    out: str  # the synthetic faceset
    n: int
    gan: str | None = None
    inversion: str | None = None
    directions: str | None = None
    invert_steps: int = 300
    pti_steps: int = 400
    landmark_steps: int = 400
    directions_n: int = 3000
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    progress: bool = True
    invert_name: str | None = None  # the two stages' names in the log (default: from their paths)
    directions_name: str | None = None


def synthetic_stage(name: str, opts: SyntheticFaces, log: Log = print) -> Path | None:
    """Make the synthetic faceset; None when there is nothing to train on (no image passed the
    filters, or no directions could be fitted), which the log says and the swap then trains on
    the real photos alone."""
    engine = ENGINES[opts.engine]
    synth = SynthOptions(out=opts.out, n=opts.n, engine=opts.engine, faces=opts.subject, match=opts.match,
                         seed=opts.seed, device=opts.device, precision=opts.precision, progress=opts.progress)
    inputs: list[str | os.PathLike] = [opts.subject, opts.match]
    if engine.needs_inversion:
        if not (opts.gan and opts.inversion and opts.directions):
            raise ValueError(f"the {opts.engine} engine needs a GAN prior, an inversion and a directions path")
        _invert_stage(opts.invert_name, InvertOptions(gan=opts.gan, faces=opts.subject, out=opts.inversion, steps=opts.invert_steps,
                                    pti_steps=opts.pti_steps, landmark_steps=opts.landmark_steps, seed=opts.seed,
                                    device=opts.device, precision=opts.precision, progress=opts.progress), log)
        directions = DirectionsOptions(gan=opts.gan, out=opts.directions, n=opts.directions_n, around=opts.inversion,
                                       seed=opts.seed, device=opts.device, progress=opts.progress)
        if not _directions_stage(opts.directions_name, directions, log):
            return None
        synth = replace(synth, inversion=opts.inversion, directions=opts.directions)
        inputs = [opts.inversion, opts.directions, opts.match]

    def build(out: Path, resume: bool) -> None:
        fresh(out)  # a few minutes at most: simpler to redo than to resume
        synthesize(replace(synth, out=str(out)), log=log)

    try:
        run_stage(name, opts.out, stage_params(synth), inputs, build, log,
                  needs=lambda: space.faceset_bytes(opts.n, Faceset.open(opts.subject).size))
    except SynthError as exc:
        log(f"[{name}] no synthetic images: {exc}")
        return None
    out = Path(opts.out)
    if not (out / FACESET_INFO).exists() or not len(Faceset.open(out)):
        return None
    return out


def _invert_stage(name: str | None, opts: InvertOptions, log: Log) -> None:
    def build(out: Path, resume: bool) -> None:
        fresh(out)  # a few minutes at most: simpler to redo than to resume
        invert(replace(opts, out=str(out)), log=log)

    # The inversion keeps a tuned copy of the generator: at most the prior's folder, and the pivots.
    run_stage(name or f"gan invert {Path(opts.faces).name}", opts.out, stage_params(opts), [opts.gan, opts.faces], build,
              log, needs=lambda: space.used_bytes(opts.gan) + space.SLACK)


def _directions_stage(name: str | None, opts: DirectionsOptions, log: Log) -> bool:
    """Expression directions fitted around the subject's pivots (`gan directions --around`).

    Fitted on the prior's own samples, directions need a GAN whose random samples are
    measurable faces; around the pivots, the tuned generator renders the subject, so the
    fit works on the short-trained priors a CPU can afford too. False when too few
    renders were measurable to fit anything (then there is nothing to synthesise with).
    """
    assert opts.around is not None and opts.out is not None  # around the pivots, into the run's file
    try:
        run_stage(name or f"gan directions {Path(opts.around).name}", opts.out, stage_params(opts), [opts.gan, opts.around],
                  lambda out, resume: directions_for_gan(replace(opts, out=str(out)), log=log), log)
    except DirectionsError as exc:
        log(f"[gan directions] no directions, so no GAN-synthetic images: {exc}")
        return False
    return True


# --- synthswap run's stages -------------------------------------------------------------------------

OUT, REPORT = "OUT", "REPORT"  # outputs beside the output video rather than in the work directory
REPORT_PICTURES = ("frames", "preview", "synthetic")
EVALUATION = "evaluation"  # in the work directory: evaluation.json and evaluation.md


@dataclass(frozen=True)
class Stage:
    """One stage of `synthswap run`.

    key       what the other stages call it (`reads`)
    name      its name in the log and on the web page ({engine}: the synthesis engine)
    output    its output in the work directory ({engine} as above), or OUT / REPORT
    reads     the stages whose outputs are its inputs (their keys are part of its cache key, with
              the options object its stage function takes: `stage_params`)
    progress  what its output shows while it runs: "faces" (faces.jsonl rows against the frames
              `frames` says it looks at), "gan" or "swap" (the trainer's log.csv); None: only its time
    when      whether a job with these RunOptions has it
    """

    key: str
    name: str
    output: str
    reads: tuple[str, ...] = ()
    progress: str | None = None
    frames: Callable[[Any], tuple[list[str], int, int | None]] | None = None
    when: Callable[[Any], bool] = lambda opts: True

    def title(self, opts: Any) -> str:
        return self.name.format(engine=opts.engine)

    def path(self, opts: Any) -> Path:
        """Where this stage of the job `opts` (RunOptions) writes."""
        if self.output == OUT:
            return Path(opts.out)
        if self.output == REPORT:
            return report_files(opts.out)["html"]
        return opts.work_dir() / self.output.format(engine=opts.engine)


def report_files(out: str | Path) -> dict[str, Path]:
    """What `run` writes beside OUT, each named after it (OUT_report.html, OUT_report.md,
    OUT_report_frames.png, ...): two runs into one folder keep their own reports."""
    out = Path(out)
    base = out.parent / f"{out.stem}_report"
    return {"html": base.with_name(base.name + ".html"), "md": base.with_name(base.name + ".md"),
            **{name: base.with_name(f"{base.name}_{name}.png") for name in REPORT_PICTURES}}


def _inverts(opts: Any) -> bool:
    return opts.synthetic > 0 and ENGINES[opts.engine].needs_inversion


RUN_STAGES = (
    Stage("subject", "extract subject", "subject", progress="faces",
          frames=lambda o: (list(o.subject), o.subject_every_n, o.subject_max_frames)),
    Stage("dest", "extract destination", "dest", progress="faces", frames=lambda o: ([o.video], o.every_n, None)),
    Stage("gan", "gan train (personal prior)", "gan", ("dest", "subject"), progress="gan",
          when=lambda o: _inverts(o) and o.train_gan),
    Stage("inversion", "gan invert subject", "inversion", ("gan", "subject"), when=_inverts),
    Stage("directions", "gan directions inversion", "directions.safetensors", ("gan", "inversion"), when=_inverts),
    Stage("synthetic", "synthesize ({engine})", "synthetic_{engine}", ("subject", "dest", "inversion", "directions"),
          when=lambda o: o.synthetic > 0),
    Stage("swap", "swap train", "swap", ("subject", "synthetic", "dest"), progress="swap"),
    Stage("enhancer", "enhance train (subject)", "enhancer", ("subject",),
          when=lambda o: o.enhance and o.enhance_minutes > 0),
    Stage("convert", "convert", OUT, ("swap", "enhancer")),
    Stage("evaluate", "evaluate", REPORT, ("convert", "subject")),
)
STAGE = {stage.key: stage for stage in RUN_STAGES}


def run_plan(opts: Any) -> list[Stage]:
    """The stages a job with these RunOptions goes through, in order."""
    return [stage for stage in RUN_STAGES if stage.when(opts)]
