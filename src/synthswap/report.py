"""Static reports: one list of blocks rendered to Markdown and to a self-contained HTML page.

Used by `synthswap run` (one swap) and `synthswap study` (the grid of conditions). Images
are PNG files beside the report: the Markdown links them by relative path, the HTML carries
them inside (data URIs), so the one file can be sent and opened anywhere.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from synthswap import atomic
from synthswap.media import iter_video_frames


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[object]]


@dataclass
class Figure:
    path: str  # relative to the report's folder
    caption: str


Block = Heading | Paragraph | Table | Figure


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def to_markdown(title: str, blocks: Sequence[Block]) -> str:
    out = [f"# {title}", ""]
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Paragraph):
            out += [b.text, ""]
        elif isinstance(b, Table):
            out.append("| " + " | ".join(b.headers) + " |")
            out.append("| " + " | ".join("---" for _ in b.headers) + " |")
            out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in b.rows]
            out.append("")
        elif isinstance(b, Figure):
            out += [f"![{b.caption}]({b.path})", "", f"*{b.caption}*", ""]
    return "\n".join(out)


def _image_source(path: str, folder: Path | None) -> str:
    """A figure's PNG inside the page when it is in `folder`, else its relative path."""
    if folder is not None and (folder / path).is_file():
        return "data:image/png;base64," + base64.b64encode((folder / path).read_bytes()).decode("ascii")
    return path


def to_html(title: str, blocks: Sequence[Block], folder: Path | None = None) -> str:
    """The page; figures found in `folder` (the report's) are inlined."""
    e = html.escape
    body = [f"<h1>{e(title)}</h1>"]
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            body.append(f"<p>{e(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{e(h)}</th>" for h in b.headers)
            rows = "".join("<tr>" + "".join(f"<td{' class=n' if isinstance(v, (int, float)) else ''}>{e(_cell(v))}</td>"
                                            for v in row) + "</tr>" for row in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Figure):
            body.append(f'<figure><img src="{e(_image_source(b.path, folder))}" alt="{e(b.caption)}">'
                        f"<figcaption>{e(b.caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
             "text-align:left}td.n{text-align:right}th{background:#f3f3f3}img{max-width:100%}"
             "figcaption{color:#555;font-size:90%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write_report(folder: str | os.PathLike, title: str, blocks: Sequence[Block], name: str = "report") -> tuple[Path, Path]:
    """Write NAME.md and NAME.html into `folder` atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = (folder / f"{name}.md", folder / f"{name}.html")
    for path, text in zip(paths, (to_markdown(title, blocks), to_html(title, blocks, folder))):
        atomic.write_text(path, text)
    return paths


def frame_grid(videos: dict[str, str | os.PathLike], indices: Sequence[int], height: int = 128) -> np.ndarray:
    """One row per video (label drawn on the left), one column per frame index."""
    wanted = set(indices)
    rows = []
    for label, path in videos.items():
        frames = {f.index: f.bgr for f in iter_video_frames(path, max_frames=max(indices) + 1) if f.index in wanted}
        tiles = []
        for i in indices:
            bgr = frames.get(i)
            if bgr is None:
                tiles.append(np.zeros((height, height, 3), np.uint8))
                continue
            tiles.append(cv2.resize(bgr, (round(bgr.shape[1] * height / bgr.shape[0]), height),
                                    interpolation=cv2.INTER_AREA))
        label_tile = np.full((height, 150, 3), 255, np.uint8)
        cv2.putText(label_tile, label[:18], (4, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
        rows.append(np.hstack([label_tile, *tiles]))
    width = max(r.shape[1] for r in rows)
    return np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])


def face_grid(faceset, limit: int = 32, size: int = 64, columns: int = 8) -> np.ndarray:
    """The first `limit` aligned faces of a faceset as one BGR picture, `columns` per row."""
    tiles = [cv2.resize(faceset.read_image(f), (size, size), interpolation=cv2.INTER_AREA)
             for f in faceset.faces[:limit]]
    tiles += [np.full((size, size, 3), 255, np.uint8)] * (-len(tiles) % columns)
    return np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
