"""Faceset rows held compactly (issue 28): landmarks, affine and identity as float64 arrays, which
write back byte for byte what was read."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from synthswap.faceset import (
    MANIFEST_FILE,
    PROGRESS_ROWS,
    Faceset,
    FacesetError,
    FacesetWriter,
    ManifestRows,
    write_subset,
)


def test_rows_are_arrays_that_write_back_the_same_numbers(extracted, tmp_path):
    source = Faceset.open(extracted("videos/people/d6.mp4", size=64, max_frames=4, every_n=60))
    face = source.faces[0]
    assert isinstance(face.landmarks, np.ndarray) and face.landmarks.shape == (478, 2)
    assert face.landmarks.dtype == np.float64 and face.identity.shape == (128,)
    copy = write_subset(source, source.faces, tmp_path / "copy")
    drop = ("id", "image", "mask")
    rows = [[{k: v for k, v in json.loads(line).items() if k not in drop} for line in
             (fs.root / "faces.jsonl").read_text().splitlines()] for fs in (source, copy)]
    assert rows[0] == rows[1] and len(rows[0]) == len(source)
    assert np.array_equal(copy.identities(), source.identities())


def test_rows_are_read_from_the_manifest_when_asked_for(extracted, tmp_path):
    """An opened faceset keeps where each row starts, not the rows (a 200,000-row faceset opened in
    136 MB, `benchmarks/bench_faceset_memory.py`): indexing, slicing and iterating parse the same rows
    as a full read of the manifest, in order; rows appended later are not part of it; a manifest
    replaced under it is refused, not read as other faces."""
    source = Faceset.open(extracted("videos/people/d6.mp4", size=64, max_frames=6, every_n=40))
    copy = write_subset(source, source.faces, tmp_path / "copy")
    faces = copy.faces
    assert isinstance(faces, ManifestRows) and len(faces) == len(source) >= 4
    lines = [json.loads(line) for line in (copy.root / MANIFEST_FILE).read_text().splitlines()]
    assert [f.id for f in faces] == [row["id"] for row in lines]
    assert np.array_equal(faces[-1].landmarks, np.array(lines[-1]["landmarks"]))
    assert [f.id for f in faces[1::2]] == [row["id"] for row in lines[1::2]] and faces[len(faces):] == []
    with pytest.raises(IndexError):
        faces[len(faces)]
    assert copy.synthetic().tolist() == [row.get("synthetic", False) for row in lines]

    # Rows another writer appends afterwards belong to the next opening, not to this one.
    with FacesetWriter(copy.root, copy.size, copy.info["template"]) as writer:
        extra = {k: v for k, v in asdict(source.faces[0]).items() if k not in ("id", "image", "mask")}
        writer.add(source.read_image(source.faces[0]), source.read_mask(source.faces[0]),
                   **dict(extra, frame_index=99999))
    assert len(faces) == len(source) and len(Faceset.open(copy.root)) == len(source) + 1
    assert faces[0].id == lines[0]["id"]

    # The manifest replaced by one whose rows are numbered otherwise: refused by name.
    manifest = copy.root / MANIFEST_FILE
    manifest.write_text("".join(json.dumps(dict(row, id=f"{int(row['id']) + 7:06d}")) + "\n" for row in lines))
    with pytest.raises(FacesetError, match="changed since the faceset was opened"):
        faces[0]


def test_a_long_faceset_reads_with_a_progress_bar(extracted, tmp_path, capsys):
    """Reading 5,000 rows or more takes seconds: `coverage` shows a bar for the manifest and for the
    columns, and gives the same answer as on the rows it repeats; a short faceset shows none."""
    from synthswap.cli import main

    source = Faceset.open(extracted("videos/people/d6.mp4", size=64, max_frames=4, every_n=60))
    long = write_subset(source, source.faces, tmp_path / "long")
    lines = (long.root / MANIFEST_FILE).read_text().splitlines()
    with open(long.root / MANIFEST_FILE, "w") as fh:  # the same crops, listed PROGRESS_ROWS times over
        for n in range(PROGRESS_ROWS):
            row = json.loads(lines[n % len(lines)])
            fh.write(json.dumps(dict(row, id=f"{n:06d}", frame_index=n)) + "\n")
    assert main(["coverage", "--dest", str(source.root), "--train", str(source.root)]) == 0
    short = capsys.readouterr()
    assert main(["coverage", "--dest", str(source.root), "--train", str(long.root)]) == 0
    captured = capsys.readouterr()
    assert "long: reading rows" in captured.err and "long: expressions, poses, identities" in captured.err
    assert "reading rows" not in short.err and captured.out == short.out.replace(f"by {len(source)} ", f"by {PROGRESS_ROWS} ")
