"""`synthswap run`: the whole job, each stage cached in a work directory.

    subject photos/video ─extract─▶ subject ─┐
    destination video ──extract─▶ dest ──────┴─gan train─▶ gan ─directions─▶ directions
    gan + subject ─invert─▶ inversion ─synthesize --match dest─▶ synthetic
    subject + synthetic + dest ─swap train─▶ swap ─convert─▶ OUT.mp4 ─evaluate─▶ report

A stage whose inputs and settings did not change since its last run is skipped; an
interrupted run picks up where it stopped (see `synthswap.stages`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from synthswap.stages import fresh, run_stage


@dataclass
class RunOptions:
    subject: list[str]
    video: str
    out: str
    work: str | None = None  # default: OUT's folder / <OUT stem>_work
    size: int = 128  # crop size of the extracted facesets
    every_n: int = 1  # destination frames used for training (every n-th)
    subject_every_n: int = 1  # when the subject is given as a video: frames kept (every n-th) ...
    subject_max_frames: int | None = None  # ... and at most this many
    gan: str | None = None  # a trained prior (a GPU run, a generic prior) instead of training one here
    gan_resolution: int = 64
    gan_minutes: float = 60.0
    directions_n: int = 3000
    invert_steps: int = 300
    pti_steps: int = 200
    landmark_steps: int = 400  # training steps of the inversion's landmark regressor
    synthetic: int = 500  # synthetic images to make; 0 trains on the real photos alone
    engine: str = "gan"  # gan | warp
    swap_resolution: int = 96
    swap_minutes: float = 60.0
    swap_steps: int | None = None
    batch_size: int = 8
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def work_dir(self) -> Path:
        out = Path(self.out)
        return Path(self.work) if self.work else out.parent / f"{out.stem}_work"


def train_swap_into(out: Path, resume: bool, **options: Any) -> None:
    """Swap training as a stage: continue from the checkpoint when resuming, else start clean."""
    from synthswap.swap.train import CHECKPOINT_FILE, TrainOptions, train

    resume = resume and (out / CHECKPOINT_FILE).exists()
    if not resume:
        fresh(out)
    train(TrainOptions(out=str(out), resume=resume, **options))


def train_gan_into(out: Path, resume: bool, **options: Any) -> None:
    """GAN training as a stage: continue from the checkpoint when resuming, else start clean."""
    from synthswap.gan.train import CHECKPOINT, TrainOptions, train

    resume = resume and (out / CHECKPOINT).exists()
    if not resume:
        fresh(out)
    train(TrainOptions(out=str(out), resume=resume, **options))


def run(opts: RunOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every stage that is not up to date; returns the evaluation summary."""
    from synthswap.extract import extract
    from synthswap.metrics.evaluate import evaluate
    from synthswap.swap.convert import ConvertOptions, convert_video
    from synthswap.swap.networks import SwapConfig

    if opts.engine not in ("gan", "warp"):
        raise ValueError(f"--engine must be gan or warp, not {opts.engine}")
    if opts.gan is not None:
        from synthswap.gan.train import load_generator

        load_generator(opts.gan)  # a wrong --gan fails here, before an hour of extraction (CheckpointError)
    work = opts.work_dir()
    work.mkdir(parents=True, exist_ok=True)
    subject, dest = work / "subject", work / "dest"

    run_stage("extract subject", subject,
              {"size": opts.size, "every_n": opts.subject_every_n, "max_frames": opts.subject_max_frames},
              opts.subject,
              lambda out, resume: extract(opts.subject, out, size=opts.size, every_n=opts.subject_every_n,
                                          max_frames=opts.subject_max_frames, progress=opts.progress), log)
    run_stage("extract destination", dest, {"size": opts.size, "every_n": opts.every_n}, [opts.video],
              lambda out, resume: extract([opts.video], out, size=opts.size, every_n=opts.every_n,
                                          progress=opts.progress), log)

    sources = [str(subject)]
    if opts.synthetic > 0:
        synthetic = work / f"synthetic_{opts.engine}"
        if opts.engine == "gan":
            _gan_stages(opts, work, subject, dest, synthetic, log)
        else:
            _warp_stage(opts, subject, dest, synthetic, log)
        if (synthetic / "faceset.json").exists() and _faces(synthetic):
            sources.append(str(synthetic))
        else:
            log("[synthesize] no synthetic image passed the identity filter: training on the real photos alone")

    swap = work / "swap"
    swap_params = {"resolution": opts.swap_resolution, "minutes": opts.swap_minutes, "steps": opts.swap_steps,
                   "batch": opts.batch_size, "seed": opts.seed}

    run_stage("swap train", swap, swap_params, sources + [str(dest)],
              lambda out, resume: train_swap_into(
                  out, resume, src=sources, dst=[str(dest)], config=SwapConfig(resolution=opts.swap_resolution),
                  batch_size=opts.batch_size, steps=opts.swap_steps, minutes=opts.swap_minutes, seed=opts.seed,
                  device=opts.device, progress=opts.progress), log)

    out = Path(opts.out)
    run_stage("convert", out, {}, [swap, opts.video],
              lambda o, r: convert_video(swap, opts.video, o, ConvertOptions(device=opts.device, progress=opts.progress)),
              log)

    report_dir = out.parent
    evaluation_prefix = work / "evaluation"

    def evaluate_and_report(o: Path, resume: bool) -> None:
        result = evaluate(out, opts.video, subject, progress=opts.progress, fid=len(_faces(subject)) >= 2)
        result.write(evaluation_prefix)
        _write_run_report(o, opts, result.summary(), work)

    run_stage("evaluate", report_dir / "report.html", {}, [out, subject], evaluate_and_report, log)
    summary = json.loads(evaluation_prefix.with_suffix(".json").read_text())["summary"]
    log(f"wrote {out} and {report_dir / 'report.html'}")
    return summary


def _faces(path: Path):
    from synthswap.faceset import Faceset

    return Faceset.open(path).faces


def _gan_stages(opts: RunOptions, work: Path, subject: Path, dest: Path, synthetic: Path, log) -> None:
    from synthswap.synth.pipeline import SynthOptions, synthesize

    gan, directions, inversion = work / "gan", work / "directions.safetensors", work / "inversion"
    if opts.gan is not None:
        gan = Path(opts.gan)
        log(f"[gan train (personal prior)] using the trained prior {gan}")
    else:
        run_stage("gan train (personal prior)", gan, {"resolution": opts.gan_resolution,
                                                     "minutes": opts.gan_minutes, "seed": opts.seed},
                  [dest, subject],
                  lambda out, resume: train_gan_into(out, resume, data=[str(dest), str(subject)],
                                                     resolution=opts.gan_resolution, minutes=opts.gan_minutes,
                                                     seed=opts.seed, device=opts.device, verbose=opts.progress),
                  log)
    invert_gan(gan, subject, inversion, opts.invert_steps, opts.pti_steps, opts.landmark_steps, opts.seed,
               opts.device, opts.progress, log)
    if not local_directions(gan, inversion, directions, opts.directions_n, opts.seed, opts.device, opts.progress,
                            log):
        return

    def run_synth(out: Path, resume: bool) -> None:
        fresh(out)
        synthesize(SynthOptions(out=str(out), n=opts.synthetic, engine="gan", inversion=str(inversion),
                                faces=str(subject), match=str(dest), directions=str(directions), seed=opts.seed,
                                device=opts.device, progress=opts.progress), log=log)

    synthesize_stage("synthesize", synthetic, {"n": opts.synthetic, "seed": opts.seed},
                     [inversion, directions, dest], run_synth, log)


def invert_gan(gan: Path, faces: Path, out: Path, steps: int, pti_steps: int, landmark_steps: int, seed: int,
               device: str, progress: bool, log) -> None:
    """`gan invert` as a stage (run and study share it)."""
    from synthswap.gan.invert import InvertOptions, invert

    def build(path: Path, resume: bool) -> None:
        fresh(path)  # a few minutes at most: simpler to redo than to resume
        invert(InvertOptions(gan=str(gan), faces=str(faces), out=str(path), steps=steps, pti_steps=pti_steps,
                             landmark_steps=landmark_steps, seed=seed, device=device, progress=progress), log=log)

    run_stage(f"gan invert {faces.name}", out, {"steps": steps, "pti_steps": pti_steps,
                                                "landmark_steps": landmark_steps, "seed": seed}, [gan, faces], build,
              log)


def local_directions(gan: Path, inversion: Path, out: Path, n: int, seed: int, device: str, progress: bool,
                     log) -> bool:
    """Expression directions fitted around the subject's pivots (`gan directions --around`).

    Fitted on the prior's own samples, directions need a GAN whose random samples are
    measurable faces; around the pivots, the tuned generator renders the subject, so the
    fit works on the short-trained priors a CPU can afford too. False when too few
    renders were measurable to fit anything (then there is nothing to synthesise with).
    """
    from synthswap.gan.directions import DirectionsError, directions_for_gan

    try:
        run_stage(f"gan directions {inversion.name}", out, {"n": n, "seed": seed}, [gan, inversion],
                  lambda path, resume: directions_for_gan(gan, path, n=n, seed=seed, device=device,
                                                          progress=progress, around=inversion, log=log), log)
    except DirectionsError as exc:
        log(f"[gan directions] no directions, so no GAN-synthetic images: {exc}")
        return False
    return True


def synthesize_stage(name: str, out: Path, params: dict[str, Any], inputs: list, build, log) -> None:
    """A synthesis stage that finding no acceptable image does not fail: the swap then trains on
    the real photos alone, and the log says so."""
    from synthswap.synth.pipeline import SynthError

    try:
        run_stage(name, out, params, inputs, build, log)
    except SynthError as exc:
        log(f"[{name}] no synthetic images: {exc}")


def _warp_stage(opts: RunOptions, subject: Path, dest: Path, synthetic: Path, log) -> None:
    from synthswap.synth.pipeline import SynthOptions, synthesize

    def run_synth(out: Path, resume: bool) -> None:
        fresh(out)
        synthesize(SynthOptions(out=str(out), n=opts.synthetic, engine="warp", faces=str(subject), match=str(dest),
                                seed=opts.seed, device=opts.device, progress=opts.progress), log=log)

    synthesize_stage("synthesize (warp)", synthetic, {"n": opts.synthetic, "seed": opts.seed}, [subject, dest],
                     run_synth, log)


def _write_run_report(html_path: Path, opts: RunOptions, summary: dict[str, Any], work: Path) -> None:
    from synthswap.media import probe_video, write_png
    from synthswap.report import Figure, Heading, Paragraph, Table, frame_grid, write_report

    out = Path(opts.out)
    folder = html_path.parent
    frames = probe_video(out).frame_count or 1
    picks = sorted({int(frames * f) for f in (0.1, 0.35, 0.6, 0.85)})
    write_png(folder / "report_frames.png", frame_grid({"destination": opts.video, "swapped": out}, picks))
    blocks = [
        Paragraph(f"Subject: {', '.join(opts.subject)}. Destination: {opts.video}. Output: {out.name}."),
        Heading("Metrics"),
        Table(["metric", "value"], [[k, v] for k, v in summary.items() if not isinstance(v, str)]),
        Figure("report_frames.png", "Destination frames (top) and the swapped output (bottom)."),
        Heading("Settings"),
        Table(["setting", "value"], [[k, str(v)] for k, v in asdict(opts).items()]),
        Paragraph(f"Work directory with every stage's output: {work}"),
    ]
    preview = work / "swap" / "preview.png"
    if preview.exists():
        shutil.copyfile(preview, folder / "report_preview.png")
        blocks.append(Figure("report_preview.png", "Swap-model preview: A, A→A, B, B→B, B→A."))
    write_report(folder, f"synthswap: {out.name}", blocks, name=html_path.stem)
