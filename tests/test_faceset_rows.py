"""Faceset rows held compactly (issue 28): landmarks, affine and identity as float64 arrays, which
write back byte for byte what was read."""

from __future__ import annotations

import json

import numpy as np

from synthswap.faceset import Faceset, write_subset


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
