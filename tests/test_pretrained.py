"""The pretrained models that ship: they load, match their sha256, and do what they are for."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from synthswap import pretrained
from synthswap.gan.loading import load_generator
from synthswap.pretrained import SHIPPED, PretrainedError, corpus_heldout, shipped_model
from synthswap.swap.loading import load_model
from synthswap.swap.losses import masked_pixel_loss
from synthswap.swap.networks import PARTS, SwapModel
from synthswap.swap.train import initialise_from


def test_shipped_files_match_their_sha256_and_are_small():
    for kind, model in SHIPPED.items():
        folder = shipped_model(kind)
        for name in model.sha256:
            assert (folder / name).stat().st_size <= pretrained.MAX_SHIPPED_BYTES


def test_the_shipped_gan_prior_renders_images_and_its_model_card_names_every_file():
    G, cfg = load_generator(shipped_model("gan"))
    with torch.no_grad():
        img = G.synthesis(G.broadcast(G.mapping(torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(0)))),
                          noise_mode="const")
    assert img.shape == (4, 3, cfg.resolution, cfg.resolution) and torch.isfinite(img).all()
    card = (pretrained.WEIGHTS_DIR / "MODEL_CARD.md").read_text()
    for model in SHIPPED.values():
        beside = (model.path / "MODEL_CARD.md").read_text()  # each model's own card, in its folder
        for digest in model.sha256.values():
            assert digest in card and digest in beside  # the cards list what loading checks


def test_samples_of_the_shipped_gan_prior_are_found_as_faces_in_most_cases():
    from synthswap.faces.pipeline import FaceAnalyzer
    from synthswap.synth.engines import faces_in_samples

    torch.set_num_threads(1)
    G, _ = load_generator(shipped_model("gan"))
    analyzer = FaceAnalyzer(128, with_identity=False)
    try:
        found, _ = faces_in_samples(G, 24, analyzer)
    finally:
        analyzer.close()
    assert found >= 18, f"only {found} of 24 samples of the shipped prior were found as a face"


def _heldout_reconstruction_errors(shared_data, tmp_path, kind: str) -> dict[str, float]:
    """Masked L1 of held-out UTKFace faces reconstructed by the shipped swap model `kind`, by a
    random one of its shape and, for a model larger than 64 px, by the 64 px model grown to its size
    (what `--swap-resolution` started from before a model of that size shipped)."""
    from synthswap.extract import extract
    from synthswap.faceset import Faceset
    from synthswap.swap.data import FaceSource
    from synthswap.swap.networks import resized_state

    torch.set_num_threads(1)
    model, _ = load_model(shipped_model(kind))
    size = model.config.resolution
    extract(corpus_heldout(shared_data / "faces/utkface", 12), tmp_path / "faces", size=size, progress=False, log=lambda m: None)
    assert len(Faceset.open(tmp_path / "faces")) >= 8
    faces = FaceSource([tmp_path / "faces"], size)
    x = torch.from_numpy(np.ascontiguousarray(faces.images.transpose(0, 3, 1, 2))).float() / 255
    m = torch.from_numpy(faces.masks)[:, None].float() / 255

    def error(net) -> float:
        with torch.no_grad():
            return float(masked_pixel_loss(net.reconstruct(x, "A")[0], x, m))

    torch.manual_seed(0)
    errors = {"shipped": error(model), "random": error(SwapModel(model.config).eval())}
    if size > 64:
        small, _ = load_model(shipped_model("swap"))
        grown = SwapModel(model.config).eval()
        grown.load_state_dict(resized_state(small.state_dict(), small.config, model.config))
        errors["grown from 64 px"] = error(grown)
    return errors


@pytest.mark.parametrize("kind", ["swap", "swap128"])
def test_the_pretrained_swap_models_reconstruct_unseen_faces_better_than_their_starts(shared_data, tmp_path, kind):
    errors = _heldout_reconstruction_errors(shared_data, tmp_path, kind)
    assert errors["shipped"] < 0.6 * errors["random"], errors
    if "grown from 64 px" in errors:  # pretraining at 128 px taught what growing the 64 px model cannot
        assert errors["shipped"] < 0.6 * errors["grown from 64 px"], errors


def test_init_copies_exactly_the_parts_it_names():
    source, _ = load_model(shipped_model("swap"))
    torch.manual_seed(1)
    model = SwapModel(source.config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    info = initialise_from(model, shipped_model("swap"), ("encoder", "decoder_a"))
    assert info["parts"] == ["encoder", "decoder_a"]
    for part in PARTS["df"]:
        copied = part in ("encoder", "decoder_a")
        for key, value in getattr(model, part).state_dict().items():
            assert torch.equal(value, getattr(source, part).state_dict()[key]) == copied, (part, key)
            assert torch.equal(value, before[f"{part}.{key}"]) == (not copied), (part, key)


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_damaged_shipped_file_gives_one_clear_error_naming_it_and_the_rebuild(tmp_path, monkeypatch, damage):
    copy = tmp_path / "weights"
    shutil.copytree(pretrained.WEIGHTS_DIR, copy)
    target = copy / SHIPPED["swap"].folder / "model.safetensors"
    if damage == "corrupt":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the weights
        target.write_bytes(bytes(data))
    else:
        target.unlink()
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", copy)
    shipped_model.cache_clear()
    try:
        with pytest.raises(PretrainedError) as info:
            shipped_model("swap")
    finally:
        shipped_model.cache_clear()
    message = str(info.value)
    assert str(target) in message and ("corrupt" if damage == "corrupt" else "missing") in message
    assert "MODEL_CARD.md" in message and "synthswap pretrain" in message


def test_weights_over_the_file_limit_are_exported_in_shards_that_load_whole(tmp_path):
    """The shipped swap model, exported with a 5 MB limit: several files, each within it, that load
    as the same model; the first names the others, and a missing or foreign shard is one clear error."""
    from synthswap.export_weights import export_swap
    from synthswap.training import CheckpointError, load_tensors, shard_names

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("synthswap.export_weights.MAX_SHIPPED_BYTES", 5_000_000)
        digests = export_swap(shipped_model("swap"), tmp_path / "sharded")
    files = sorted(p.name for p in (tmp_path / "sharded").glob("*.safetensors"))
    assert len(files) >= 3 and files == sorted(shard_names("model.safetensors", len(files)))
    assert set(digests) == {"model.json", *files}
    assert all((tmp_path / "sharded" / f).stat().st_size <= 5_000_000 for f in files)
    whole, _ = load_model(shipped_model("swap"))
    sharded, _ = load_model(tmp_path / "sharded")
    for (name, a), (_, b) in zip(whole.state_dict().items(), sharded.state_dict().items()):
        assert torch.equal(a, b), name

    (tmp_path / "sharded" / "model-3.safetensors").unlink()  # a shard lost
    with pytest.raises(CheckpointError, match="model-3.safetensors: checkpoint not found"):
        load_model(tmp_path / "sharded")
    main = tmp_path / "sharded" / "model.safetensors"
    with safe_open(str(main), framework="pt") as fh:
        meta = json.loads(fh.metadata()["synthswap"])
    meta["shards"] = ["../model.safetensors"]  # a shard must be a file beside the checkpoint
    save_file(load_file(str(main)), str(main), metadata={"synthswap": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="is not a file name beside it"):
        load_tensors(main)


def test_export_weights_names_the_folder_by_architecture_and_size(tmp_path, capsys):
    from synthswap.cli import main

    assert main(["export-weights", "--swap", str(shipped_model("swap")), "--out", str(tmp_path)]) == 0
    written = json.loads(capsys.readouterr().out)
    assert list(written) == ["swap_df64"] and set(written["swap_df64"]) == {"model.json", "model.safetensors"}
    model, meta = load_model(tmp_path / "swap_df64")
    assert meta["config"]["resolution"] == 64 and meta["exported"]["dtype"] == "float16"
    assert main(["export-weights", "--out", str(tmp_path / "none")]) == 2  # nothing to export
    assert not (tmp_path / "none").exists()
