"""Regression guard of the trajectories: every scheme (and momentum, pgd noise variants, polydisperse and
species systems), in 2d and 3d, run straight and resumed from a checkpoint, must reproduce the SHA-256 of
its final positions/images and observable series recorded in tests/data/trajectory_hashes.json (by
tests/data/make_trajectory_hashes.py, before the core redesign), serially and on any number of MPI ranks."""
import importlib.util
import json
from pathlib import Path

import pytest

_DATA = Path(__file__).with_name("data")
_spec = importlib.util.spec_from_file_location("make_trajectory_hashes", _DATA / "make_trajectory_hashes.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)

STORED = json.loads(cases.HASHES.read_text())["cases"]
NAMES = list(cases.CASES)


def check(name, got, how):
    want = STORED[name]
    assert want["config"] == cases.CASES[name], (
        f"{name}: the case differs from the one recorded; regenerate with tests/data/make_trajectory_hashes.py")
    for key in ("state", "observables"):
        assert got[key] == want[key], f"{name} ({how}): the {key} hash differs from the recorded trajectory"


def test_every_case_is_recorded():
    assert sorted(STORED) == sorted(NAMES)
    assert sorted(n for n in NAMES if STORED[n]["resumed"]) == sorted(cases.RESUMED)


@pytest.mark.serial
@pytest.mark.parametrize("name", NAMES)
def test_straight_run(name, tmp_path):
    check(name, cases.run_straight(name, tmp_path), "straight, serial")


@pytest.mark.serial
@pytest.mark.parametrize("name", cases.RESUMED)
def test_resumed_run(name, tmp_path):
    check(name, cases.run_resumed(name, tmp_path), "resumed, serial")


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("name", NAMES)
def test_straight_run_in_parallel(name, tmp_path):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    base = Path(comm.bcast(str(tmp_path), root=0))
    # Without output: collective HDF5 writes cost seconds per run on an oversubscribed machine, and
    # writing (with checkpoints) is exercised by the resumed runs below.
    check(name, cases.run_straight(name, base, comm=comm, write=False), f"straight, {comm.size} ranks")


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("name", cases.RESUMED)
def test_resumed_run_in_parallel(name, tmp_path):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    base = Path(comm.bcast(str(tmp_path), root=0))
    check(name, cases.run_resumed(name, base, comm=comm), f"resumed, {comm.size} ranks")
