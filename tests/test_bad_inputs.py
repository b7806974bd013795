"""Bad inputs to every subcommand: the fast subset of the catalogue in benchmarks/probe_bad_inputs.py.

Each probe is a `synthswap ...` command line run in a fresh folder holding copies of real inputs
(a few frames of d0.mp4, a 3-face faceset, a tiny GAN and swap model), damaged as the probe says.
The same runner as the benchmark's; here through `synthswap.cli.main` in this process (one
import of torch instead of one per probe), except the read-only probes, which need a process
without root's CAP_DAC_OVERRIDE. The full catalogue: `python benchmarks/probe_bad_inputs.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import probe_bad_inputs as catalogue  # noqa: E402

FAST = [p for p in catalogue.PROBES if p.fast]


@pytest.fixture(scope="session")
def materials(shared_data, tmp_path_factory) -> catalogue.Materials:
    return catalogue.Materials(tmp_path_factory.mktemp("probe_inputs"), shared=shared_data)


def test_the_catalogue_covers_every_subcommand():
    from synthswap.cli import build_parser

    commands = {p.command for p in catalogue.PROBES}
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, subparser in sub.choices.items():
        nested = [a for a in subparser._actions if a.dest in ("gan_command", "swap_command")]
        names = [f"{name} {n}" for n in nested[0].choices] if nested else [name]
        assert set(names) <= commands, set(names) - commands
    assert len(catalogue.PROBES) >= 80


@pytest.mark.parametrize("probe", FAST, ids=lambda p: f"{p.command}: {p.name}")
def test_a_bad_input_gives_one_error_line_and_loses_nothing(probe, materials, tmp_path):
    result = catalogue.run_probe(probe, materials, tmp_path / "probe", in_process=not probe.readonly)
    assert not result.traceback, result.stderr
    assert result.exit in probe.expect and result.exit != 0, (result.exit, result.stderr)
    assert result.one_error_line, result.stderr
    assert not result.lost, f"changed or deleted: {result.lost}"
