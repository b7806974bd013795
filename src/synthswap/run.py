"""`synthswap run`: the whole job, each stage cached in a work directory.

    subject photos/video ─extract─▶ subject ─┐
    destination video ──extract─▶ dest ──────┴─gan train─▶ gan ─directions─▶ directions
    gan + subject ─invert─▶ inversion ─synthesize --match dest─▶ synthetic
    subject + synthetic + dest ─swap train─▶ swap ─convert─▶ OUT.mp4 ─evaluate─▶ report

A stage whose inputs and settings did not change since its last run is skipped; an
interrupted run picks up where it stopped (see `synthswap.cache`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

from synthswap.cache import StageError, made_by_stage, run_stage
from synthswap.extract import CROP_SIZES, ExtractError, check_readable, reference_embedding
from synthswap.faces.choice import face_option, parse_face
from synthswap.faceset import INFO_FILE as FACESET_INFO
from synthswap.faceset import Faceset, FacesetError
from synthswap.gan.invert import InversionError
from synthswap.gan.loading import load_generator
from synthswap.gan.networks import RESOLUTIONS
from synthswap.gan.train import GanTrainOptions
from synthswap.locking import LOCK_FILE, LockError, locked_output
from synthswap.media import MediaError, probe_video, write_png
from synthswap.metrics.evaluate import evaluate
from synthswap.metrics.plain import plain_words
from synthswap.options import ComputeOptions, OptionError, check_options, option
from synthswap.enhance.train import FINETUNE_BATCH, FINETUNE_LR, EnhanceTrainOptions
from synthswap.pretrained import SHIPPED_NAME, PretrainedError, resolve_model
from synthswap.provenance.metadata import read_tags
from synthswap.report import Block, Figure, Heading, Paragraph, Table, face_grid, frame_grid, write_report
from synthswap.stages import (
    EVALUATION,
    OUT,
    REPORT,
    RUN_STAGES,
    STAGE,
    FaceExtraction,
    SyntheticFaces,
    convert_stage,
    enhancer_stage,
    extract_stage,
    gan_train_stage,
    report_files,
    run_plan,
    swap_train_stage,
    synthetic_stage,
)
from synthswap.swap.convert import KEEP_MOUTH_HELP, ConvertOptions
from synthswap.swap.loading import read_model_json
from synthswap.swap.networks import SwapConfig
from synthswap.swap.train import SWAP_GAN_POWER, SWAP_ID_WEIGHT, SwapTrainError, SwapTrainOptions
from synthswap.synth.engines import ENGINES
from synthswap.training import CheckpointError, resolve_device


# The paired loss holds the swaps to their warped photos up to the face's size over this (8 px at 128):
# on the d3 -> d10 whole run the lower the band the better, 8 px best (docs/swap.md).
PAIRED_BAND = 16


def _swap_resolution_problem(value: int) -> str | None:
    try:
        SwapConfig(resolution=value).validate()
    except ValueError as exc:
        return f"is refused: {exc}"
    return None


@dataclass(kw_only=True)
class PipelineOptions(ComputeOptions):
    """The options `run` and `study` share: how faces are extracted, the GAN prior, the inversion,
    the synthesis and the swap model. A subclass that needs another default says why (`redefault`)."""

    size: int = option(128, "crop size of the extracted faces", minimum=CROP_SIZES[0], maximum=CROP_SIZES[1])
    subject_every_n: int = option(1, "when the subject is a video: keep every N-th frame", minimum=1, metavar="N")
    gan_resolution: int = option(64, "resolution of a personal prior", choices=RESOLUTIONS)
    gan_minutes: float = option(60.0, "training budget of a personal prior, in minutes", above=0)
    directions_n: int = option(3000, "GAN samples rendered and measured to fit expression directions", minimum=1,
                               metavar="N")
    invert_steps: int = option(300, "projection steps per photo", minimum=1)
    pti_steps: int = option(400, "pivotal-tuning steps (the synthetic images keep the subject only when the tuned "
                                 "generator renders the photos; docs/gan.md measures the effect)", minimum=0)
    landmark_steps: int = option(400, "training steps of the inversion's landmark regressor (0: no landmark loss)",
                                 minimum=0)
    synthetic: int = option(500, "synthetic images to make (0: train on the real photos alone)", minimum=0,
                            metavar="N")
    swap_init: str = option(SHIPPED_NAME, "the swap model to fine-tune: 'shipped' (pretrained on a face corpus, "
                                          "inside the package), a `synthswap pretrain` folder, or 'none' to train "
                                          "from random weights", metavar="MODEL_DIR")
    swap_resolution: int = option(128, "swap model face size in pixels ('shipped' starts a 128 or 256 px model from "
                                       "the shipped 128 px one, other multiples of 64 from the 64 px one grown to "
                                       "that size; another size needs --swap-init none or a pretrained model it is "
                                       "a multiple of)",
                                  check=_swap_resolution_problem)
    swap_id_weight: float = option(SWAP_ID_WEIGHT, "identity supervision of the swap (`swap train --id-weight`): "
                                                   "SFace pulls the swapped faces towards the subject's photos "
                                                   "(0: off)")
    swap_gan_power: float = option(SWAP_GAN_POWER, "weight of the swap's patch discriminator (`swap train "
                                                   "--gan-power`, DeepFaceLab SAEHD's 'GAN power'): pays for the "
                                                   "texture a photo has; 0: off", minimum=0)
    swap_warp_off_last: float = option(0.0, "the last fraction of the swap's budget trained without the random warp "
                                            "of inputs (`swap train --warp-off-last`), for the photos' own detail; "
                                            "0: warp throughout", minimum=0, maximum=1, metavar="F")
    swap_steps: int | None = option(None, "swap training steps (ends at whichever of steps and minutes comes first)",
                                    minimum=1)
    batch_size: int = option(8, "swap training batch (faces of each person per step)", minimum=1)
    enhance: bool = option(True, "do not restore the swapped face's detail with the face enhancer (docs/enhance.md): "
                                 "enlarge it by bicubic interpolation instead", flag="no-enhance")
    swap_paired_weight: float = option(0.0, "weight of the swap's paired loss (`swap train --paired-weight`): the "
                                            "swapped faces held to the subject's own photo warped to each "
                                            "destination face, up to 1/16 of the face's size (`--paired-"
                                            "resolution`, 8 px at 128; docs/swap.md); 0: off", minimum=0)
    keep_mouth: bool = option(True, KEEP_MOUTH_HELP, flag="no-keep-mouth")
    enhance_minutes: float = option(0.0, "minutes of fine-tuning the shipped enhancer on the subject's photos "
                                         "before converting (0: use it as shipped; docs/enhance.md compares the two)",
                                    minimum=0)

    def swap_train_options(self, src: list[str], dst: list[str], out: str, init: str | None,
                           minutes: float | None = None) -> SwapTrainOptions:
        """The swap stage's options from these settings: the one place `run` and `study` build them."""
        return SwapTrainOptions(
            src=src, dst=dst, out=out, config=SwapConfig(resolution=self.swap_resolution), init=init,
            id_weight=self.swap_id_weight, gan_power=self.swap_gan_power, warp_off_last=self.swap_warp_off_last,
            paired_weight=self.swap_paired_weight,
            paired_resolution=self.swap_resolution // PAIRED_BAND if self.swap_paired_weight else 0,
            batch_size=self.batch_size, steps=self.swap_steps, minutes=minutes, seed=self.seed,
            device=self.device, precision=self.precision, progress=self.progress)

    def validate(self) -> None:
        """OptionError (a ValueError) naming the first setting that cannot run: each option's own
        bounds and choices, then what needs this machine (a --device it lacks). The CLI, the web
        app and the study all call it, before anything is written."""
        check_options(self)
        try:
            resolve_device(self.device)  # --device cuda on a machine without: now, not at the first training
        except ValueError as exc:
            raise OptionError(str(exc)) from None


@dataclass(kw_only=True)
class RunOptions(PipelineOptions):
    subject: list[str]
    video: str
    out: str
    work: str | None = option(None, "work directory holding every stage's output (default: OUT_work/ beside OUT)",
                              metavar="DIR")
    every_n: int = option(1, "use every N-th destination frame for training (all frames are converted)", minimum=1,
                          metavar="N")
    subject_max_frames: int | None = option(None, "when the subject is a video: keep at most N frames", minimum=1,
                                            metavar="N")
    gan: str = option(SHIPPED_NAME, "the GAN prior the subject's photos are inverted into: 'shipped' (the generic "
                                    "prior inside the package) or a `gan train` folder (e.g. trained on a GPU)",
                      metavar="GAN_DIR")
    train_gan: bool = option(False, "train a personal prior here instead, on the destination's frames and the "
                                    "subject's photos, for --gan-minutes (off by default: on a CPU an hour leaves "
                                    "faces blurred; docs/gan.md has the figures)")
    engine: str = option("gan", "how to synthesise extra subject images: the GAN or the warp control",
                         choices=tuple(ENGINES))
    swap_minutes: float = option(15.0, "swap training budget in minutes, across interruptions (more minutes keep "
                                       "improving the face: docs/swap.md; a whole run's time: README, 'Planning "
                                       "figures')", above=0)
    no_watermark: bool = option(False, "do not put the invisible watermark in the output's frames (an explicit "
                                       "opt-out that the output's metadata, manifest and report record)")
    key_dir: str | None = option(None, "folder of the C2PA signing key, made on first use (default: "
                                       "$SYNTHSWAP_KEY_DIR or ~/.config/synthswap/signing)", metavar="DIR")
    face: str = face_option("of the destination to replace")

    def work_dir(self) -> Path:
        out = Path(self.out)
        return Path(self.work) if self.work else out.parent / f"{out.stem}_work"


# What a stage refuses with a message of its own (OptionError is a ValueError); anything else is a bug
# and keeps its traceback. The CLI and the web app report these as one line.
PIPELINE_ERRORS = (ExtractError, MediaError, FacesetError, CheckpointError, InversionError, SwapTrainError, LockError,
                   StageError, PretrainedError, ValueError, OSError)

# Outputs of run's stages inside the work directory (with every engine's): nothing of the user's may live there.
STAGE_OUTPUTS = tuple(dict.fromkeys(stage.output.format(engine=engine) for stage in RUN_STAGES
                                    if stage.output not in (OUT, REPORT) for engine in ENGINES))
OUTPUT_SUFFIXES = (".mp4", ".mov", ".mkv")
PROVENANCE_KEYS = ("synthetic", "generator", "creation_time", "synthswap_run_id", "synthswap_watermark",
                   "synthswap_swap_model_sha256", "synthswap_gan_sha256", "synthswap_source_sha256")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_paths(opts: RunOptions) -> None:
    """Refuse, before anything is written or removed, a request whose outputs would overwrite or
    delete its own inputs or other files of the user's."""
    out, video = Path(opts.out).resolve(), Path(opts.video).resolve()
    work = opts.work_dir().resolve()
    inputs = [Path(p).resolve() for p in opts.subject] + [video]
    for path in inputs:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
    for path in inputs:
        if _inside(out, path):
            raise ValueError(f"--out {opts.out}: is (or is inside) the input {path}; choose another output")
    if out.is_dir():
        raise ValueError(f"--out {opts.out}: is a folder; give the video file to write")
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"--out {opts.out}: must be a {', '.join(OUTPUT_SUFFIXES)} file")
    for path in inputs:
        if _inside(path, work) or _inside(work, path):
            raise ValueError(f"--work {work}: overlaps the input {path}; the work directory holds stage outputs "
                             f"only, choose another one")
    if not (work / LOCK_FILE).exists():  # not yet a work directory: its evaluation files would be the user's
        for name in ("evaluation.json", "evaluation.md"):
            if (work / name).exists():
                raise ValueError(f"--work {work}: holds {name}, which synthswap run did not write; move it away "
                                 f"or choose another --work")
    stage_dirs = [work / name for name in STAGE_OUTPUTS]
    if any(_inside(out, d) for d in stage_dirs):
        raise ValueError(f"--out {opts.out}: is inside the work directory's stage outputs; choose another output")
    report, *companions = report_files(out).values()
    # The report's companions are the run's own only beside a report that its stage made.
    for path in (out, report, *(() if made_by_stage(report) else companions)):
        if path.exists() and not made_by_stage(path):
            raise ValueError(f"{path}: exists and was not written by synthswap run; move it away or choose "
                             f"another --out")


def run(opts: RunOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every stage that is not up to date; returns the evaluation summary."""
    opts = prepare(opts)
    with locked_output(opts.work_dir(), "work directory"):  # one `run` per work directory
        return _run_stages(opts, opts.work_dir(), log)


def prepare(opts: RunOptions) -> RunOptions:
    """Check a request before anything is written: its paths, and its models (found and loaded, so
    a wrong one fails now, not after an hour). Returns the options with the models' folders
    resolved. `run` calls it; the web app calls it too, to refuse a job when it is submitted."""
    opts.validate()
    check_paths(opts)
    check_readable([*opts.subject, opts.video])  # a truncated video fails now, not after the training
    _, face_photo = parse_face(opts.face)
    if face_photo is not None:
        reference_embedding(face_photo)  # a photo without a face fails now, not at the convert stage
    if opts.enhance:
        resolve_model(SHIPPED_NAME, "enhance")  # checked against its sha256 now, not at the convert stage
    gan = None
    if ENGINES[opts.engine].needs_inversion and opts.synthetic > 0 and not opts.train_gan:
        gan = resolve_model(opts.gan, "gan")
        load_generator(str(gan))
    swap_init = None if opts.swap_init == "none" else resolve_model(opts.swap_init, "swap", opts.swap_resolution)
    if swap_init is not None:
        init_config = SwapConfig.from_dict(read_model_json(swap_init)["config"])
        if opts.swap_resolution % init_config.resolution:
            raise ValueError(f"--swap-init {opts.swap_init} is a {init_config.resolution} px model; use a "
                             f"--swap-resolution that is a whole multiple of it (it is grown to that size), or "
                             f"--swap-init none to train a {opts.swap_resolution} px model from scratch")
    # None from here on: no prior to invert into, and random initial weights
    return replace(opts, gan=gan, swap_init=swap_init)  # type: ignore[arg-type]


def stage_plan(opts: RunOptions) -> list[tuple[str, Path]]:
    """The stages `run` goes through, in order, as (name in the log, output path): `RUN_STAGES`
    for this job. The output's stage marker (`synthswap.cache.stage_state`) says whether it is done."""
    return [(stage.title(opts), stage.path(opts)) for stage in run_plan(opts)]


def _run_stages(opts: RunOptions, work: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Each stage of RUN_STAGES in turn, named and placed as declared there."""
    def name(key: str) -> str:
        return STAGE[key].title(opts)

    def at(key: str) -> Path:
        return STAGE[key].path(opts)

    subject = extract_stage(name("subject"), FaceExtraction(
        inputs=opts.subject, out=str(at("subject")), size=opts.size, every_n=opts.subject_every_n,
        max_frames=opts.subject_max_frames, progress=opts.progress), log)
    dest = extract_stage(name("dest"), FaceExtraction(
        inputs=[opts.video], out=str(at("dest")), size=opts.size, every_n=opts.every_n, face=opts.face,
        progress=opts.progress), log)  # the person convert replaces, so the model learns that face

    sources = [str(subject)]
    if STAGE["synthetic"].when(opts):
        synthetic = synthetic_stage(name("synthetic"), _synthesis_plan(opts, subject, dest, log), log)
        if synthetic is not None:
            sources.append(str(synthetic))
        else:
            log("[synthesize] no synthetic image passed the identity filter: training on the real photos alone")

    log(f"[swap train] {'fine-tuning ' + opts.swap_init if opts.swap_init else 'from random weights'}")
    swap = swap_train_stage(name("swap"), opts.swap_train_options(sources, [str(dest)], str(at("swap")),
                                                                  opts.swap_init, minutes=opts.swap_minutes), log)

    enhancer = resolve_model(SHIPPED_NAME, "enhance") if opts.enhance else None
    if STAGE["enhancer"].when(opts):
        enhancer = str(enhancer_stage(name("enhancer"), EnhanceTrainOptions(
            data=[str(subject)], out=str(at("enhancer")), init=SHIPPED_NAME, minutes=opts.enhance_minutes,
            batch_size=FINETUNE_BATCH, lr=FINETUNE_LR, seed=opts.seed,
            device=opts.device, precision=opts.precision, progress=opts.progress), log))

    gan_used = None
    if STAGE["inversion"].when(opts):
        gan_used = str(at("gan")) if STAGE["gan"].when(opts) else opts.gan
    out = convert_stage(name("convert"), swap, opts.video, at("convert"),
                        ConvertOptions(device=opts.device, precision=opts.precision, progress=opts.progress,
                                       enhancer=str(enhancer) if enhancer else None, keep_mouth=opts.keep_mouth,
                                       watermark=not opts.no_watermark,
                                       gan=str(gan_used) if gan_used else None, key_dir=opts.key_dir,
                                       face=opts.face), log)

    evaluation_prefix = work / EVALUATION
    report = at("evaluate")

    def evaluate_and_report(o: Path, resume: bool) -> None:
        result = evaluate(out, opts.video, subject, progress=opts.progress, fid=len(Faceset.open(subject)) >= 2)
        result.write(evaluation_prefix)
        _write_run_report(o, opts, result.summary(), work)

    run_stage(name("evaluate"), report, {}, [out, subject], evaluate_and_report, log)
    summary = json.loads(evaluation_prefix.with_suffix(".json").read_text())["summary"]
    log(f"wrote {out} and {report}")
    return summary


def _synthesis_plan(opts: RunOptions, subject: Path, dest: Path, log) -> SyntheticFaces:
    """The synthesis stage's options; for the GAN engine, the personal prior is trained first
    (on the destination's frames and the subject's photos) unless --gan names one."""
    plan = SyntheticFaces(engine=opts.engine, subject=str(subject), match=str(dest),
                          out=str(STAGE["synthetic"].path(opts)), n=opts.synthetic,
                          invert_steps=opts.invert_steps, pti_steps=opts.pti_steps, landmark_steps=opts.landmark_steps,
                          directions_n=opts.directions_n, seed=opts.seed, device=opts.device,
                          precision=opts.precision, progress=opts.progress)
    if not STAGE["inversion"].when(opts):
        return plan
    if not STAGE["gan"].when(opts):
        gan = Path(opts.gan)
        log(f"[gan prior] inverting into {gan}")
    else:
        gan = gan_train_stage(STAGE["gan"].title(opts), GanTrainOptions(
            data=[str(dest), str(subject)], out=str(STAGE["gan"].path(opts)), resolution=opts.gan_resolution,
            minutes=opts.gan_minutes, seed=opts.seed, device=opts.device, precision=opts.precision,
            verbose=opts.progress), log)
    return replace(plan, gan=str(gan), inversion=str(STAGE["inversion"].path(opts)),
                   directions=str(STAGE["directions"].path(opts)), invert_name=STAGE["inversion"].title(opts),
                   directions_name=STAGE["directions"].title(opts))


def _shown(value: Any) -> str:
    """A setting as the report shows it: files by their names, not the machine's paths."""
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, str) and "/" in value:
        return Path(value).name
    return str(value)


def _write_run_report(html_path: Path, opts: RunOptions, summary: dict[str, Any], work: Path) -> None:
    out = Path(opts.out)
    folder = html_path.parent
    files = report_files(out)
    frames = probe_video(out).frame_count or 1
    picks = sorted({int(frames * f) for f in (0.1, 0.35, 0.6, 0.85)})
    write_png(files["frames"], frame_grid({"destination": opts.video, "swapped": out}, picks))
    blocks: list[Block] = [
        Paragraph(f"Subject: {', '.join(Path(p).name for p in opts.subject)}. Destination: {Path(opts.video).name}. "
                  f"Output: {out.name}. This video is synthetic: it shows the subject's face on another person."),
        Figure(files["frames"].name, "Destination frames (top) and the swapped output (bottom)."),
        Heading("In plain words"),
        Table(["what the measures say", "how it is measured"], plain_words(summary)),
        Heading("Metrics"),
        Table(["metric", "value"], [[k, v] for k, v in summary.items() if not isinstance(v, str)]),
        Heading("Provenance"),
        Paragraph("The output says it is synthetic: container metadata, an invisible watermark in every frame "
                  "(unless --no-watermark) and a signed C2PA manifest. Check any copy with `synthswap verify FILE`."),
        Table(["metadata", "value"], [[k, v] for k, v in read_tags(out).items() if k in PROVENANCE_KEYS]),
        Heading("Settings"),
        Table(["setting", "value"], [[k, _shown(v)] for k, v in asdict(opts).items()]),
        Paragraph(f"Every stage's output is in the work directory {work.name}/ beside the video."
                  if work.parent == out.parent else f"Every stage's output is in the work directory {work}."),
    ]
    preview = STAGE["swap"].path(opts) / "preview.png"
    if preview.exists():
        shutil.copyfile(preview, files["preview"])
        blocks.append(Figure(files["preview"].name, "Swap-model preview: A, A→A, B, B→B, B→A."))
    synthetic = STAGE["synthetic"].path(opts)
    if (synthetic / FACESET_INFO).is_file() and len(kept := Faceset.open(synthetic)):
        write_png(files["synthetic"], face_grid(kept, limit=32))
        blocks.append(Figure(files["synthetic"].name, f"Synthetic images kept for training ({len(kept)}; "
                                                     f"the first {min(len(kept), 32)} shown)."))
    write_report(folder, f"synthswap: {out.name}", blocks, name=html_path.stem)
