"""Provenance: every output says it is synthetic, in three layers that fail independently.

    metadata.py   container tags (MP4/MOV/MKV) and PNG tEXt chunks: synthetic, tool, version, date,
                  sha256 of the swap model and GAN prior, watermark on/off, run id
    watermark.py  an invisible mark in the pixels (marker + run id) that survives re-encoding
    manifest.py   a signed C2PA manifest (c2pa-python) with a local key made on first use
    verify.py     reading all three back: `synthswap verify`
    edits.py      the edits a shared video goes through (re-encode, downscale, crop, brightness)

The layers are written by `swap convert` (and so by `run` and `demo`); `verify` reads them.
"""
