"""The particle-field schema (mpisim/core/state.py) and the state sources (mpisim/sources.py)."""
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpisim import ConfigError, RunConfig, Simulation
from mpisim.core.state import AUX, PARTICLE_FIELDS, POS, ParticleSchema, ParticleState
from mpisim.io import checkpoint_path
from mpisim.io.checkpoint import DATASETS
from mpisim.sources import OutputFrame, StartState


def _filled_state(n, n_aux, rng):
    st = ParticleState(n_aux=n_aux)
    st.set_owned(np.arange(100, 100 + n), rng.uniform(0, 5, (n, 3)), rng.integers(-9, 9, (n, 3)),
                 rng.uniform(0.4, 0.6, n), rng.uniform(-5, 10, (n, 3)), rng.normal(size=(n, n_aux)))
    return st


@pytest.mark.parametrize("n_aux", [0, 3])
def test_every_field_travels_through_migration_rows(n_aux):
    """pack_owned -> add_owned (what migration does) carries every schema field exactly, in any order."""
    rng = np.random.default_rng(n_aux)
    src = _filled_state(40, n_aux, rng)
    rows = np.array([7, 3, 39, 0, 12])
    dst = ParticleState(n_aux=n_aux)
    dst.add_owned(src.pack_owned(rows))
    assert dst.n_own == len(rows)
    for f in PARTICLE_FIELDS:
        got, want = getattr(dst, f.name)[:len(rows)], getattr(src, f.name)[rows]
        assert got.dtype == f.dtype and np.array_equal(got, want), f.name
    # remove_owned and sort_owned move every field together
    x0_by_id = src.x0[:40].copy()
    src.remove_owned(np.array([1, 2]))
    src.sort_owned(-src.ids.astype(np.int64))
    assert np.array_equal(src.ids[:src.n_own], np.setdiff1d(np.arange(100, 140), [101, 102])[::-1])
    assert np.array_equal(src.x0[:src.n_own], x0_by_id[src.ids[:src.n_own] - 100])
    unpacked = ParticleSchema(n_aux).unpack(src.pack_owned(np.arange(src.n_own)))
    assert np.array_equal(unpacked["ids"], src.ids[:src.n_own])
    assert np.array_equal(unpacked["radius"], src.radius[:src.n_own])


@pytest.mark.parametrize("leaving", [[], [0], [39], [5, 38, 39], [0, 1, 2, 37, 38, 39], list(range(40)),
                                     [30, 2, 17, 39, 11]])
def test_remove_owned_keeps_every_other_particle_whole(leaving):
    """Migration's removal fills holes from the tail: the rows left are exactly the others, each field with
    its own particle (held by id), whatever rows leave (head, tail, all, unsorted)."""
    rng = np.random.default_rng(len(leaving))
    st = _filled_state(40, 2, rng)
    before = {f.name: getattr(st, f.name)[:40].copy() for f in PARTICLE_FIELDS}
    st.remove_owned(np.array(leaving, dtype=np.int64))
    n = st.n_own
    assert n == 40 - len(leaving)
    ids = st.ids[:n]
    assert np.array_equal(np.sort(ids), np.setdiff1d(np.arange(100, 140), np.array(leaving, dtype=int) + 100))
    for f in PARTICLE_FIELDS:
        assert np.array_equal(getattr(st, f.name)[:n], before[f.name][ids - 100]), f.name


@pytest.mark.parametrize("width", [3, 5])
def test_schema_covers_the_state_and_puts_position_first(width):
    schema = ParticleSchema(n_aux=2, width=width)
    assert schema.columns["pos"] == slice(0, width)  # Domain.distribute reads the owner from columns 0-2
    widths = {AUX: 2, POS: width}
    assert schema.width == sum(widths.get(f.width, f.width) for f in PARTICLE_FIELDS)
    assert schema.width == 3 * width + 2 + 2
    with pytest.raises(ValueError, match="missing"):
        schema.pack(pos=np.zeros((1, 3)), ids=np.zeros(1))


def _config(path, **system):
    return RunConfig.from_dict({
        "system": {"n": 300, "phi": 0.6, "dim": 2, "seed": 4, **system},
        "dynamics": {"scheme": "sgd", "learning_rate": 0.3, "batch_fraction": 0.5, "momentum": 0.5},
        "run": {"steps": 30, "log_every": 5, "stop_when_absorbed": False, "checkpoint_every": 20,
                "progress_seconds": 0.0},
        "output": {"path": str(path), "snapshot_every": 10}})


def test_checkpoint_stores_the_schema_fields_under_their_names(tmp_path):
    """Every field but ids (the row order) is a dataset under /state, named as checkpoints always were."""
    Simulation(_config(tmp_path / "o.h5")).run(steps=25)
    with h5py.File(checkpoint_path(tmp_path / "o.h5")) as f:
        stored = {name: (ds.dtype, ds.shape) for name, ds in f["state"].items()}
    assert sorted(stored) == ["aux", "image", "position", "radius", "x0"]
    for field in PARTICLE_FIELDS:
        if field.name != "ids":
            assert stored[DATASETS.get(field.name, field.name)][0] == field.dtype


def test_init_frame_starts_from_that_frame(tmp_path):
    """system.init_frame picks the frame (index, negative from the end); -1 is the last."""
    first = tmp_path / "first.h5"
    Simulation(_config(first)).run()
    with h5py.File(first) as f:
        frames = f["particles/all/position/value"][:]
    assert len(frames) == 4
    for frame in (1, -3, -1):
        sim = Simulation(_config(tmp_path / "b.h5", init=str(first), init_frame=frame), write=False)
        np.testing.assert_array_equal(sim.snapshot()[1], frames[frame])
        assert sim.step == 0
        assert not sim.snapshot()[2].any()             # images start afresh
    with pytest.raises(ConfigError, match=r"system\.init_frame: .* holds 4 frames.* got 4"):
        Simulation(_config(tmp_path / "b.h5", init=str(first), init_frame=4), write=False)


def test_init_frame_needs_an_init_file(tmp_path):
    with pytest.raises(ConfigError, match=r"system\.init_frame"):
        _config(tmp_path / "o.h5", init_frame=2)
    with pytest.raises(ConfigError, match=r"system\.init_frame: expected int"):
        _config(tmp_path / "o.h5", init="random", init_frame=1.5)


def test_a_source_is_any_callable(tmp_path):
    """A notebook passes its own source: here a square lattice, the same rows whoever builds them."""
    cfg = _config(tmp_path / "o.h5")
    box = np.array(cfg.box_edges())
    side = int(np.ceil(np.sqrt(cfg.system.n)))

    def lattice(config, schema, block):
        ids = np.arange(*block)
        pos = np.zeros((len(ids), 3))
        pos[:, 0], pos[:, 1] = (ids % side + 0.5) * box[0] / side, (ids // side + 0.5) * box[1] / side
        n = len(ids)
        return StartState(box, schema.pack(pos=pos, image=np.zeros((n, 3)), x0=pos, radius=np.full(n, 0.5),
                                           ids=ids, aux=np.zeros((n, schema.n_aux))))

    sim = Simulation(cfg, write=False, source=lattice)
    ids, pos, _ = sim.snapshot()
    np.testing.assert_array_equal(pos[:, 0], (ids % side + 0.5) * box[0] / side)
    # The system.init source gives the same state as the constructor's default for that config.
    Simulation(cfg).run(steps=10)
    a = Simulation(_config(tmp_path / "x.h5", init=str(tmp_path / "o.h5")), write=False)
    b = Simulation(cfg, write=False, source=OutputFrame(tmp_path / "o.h5", frame=-1))
    np.testing.assert_array_equal(a.snapshot()[1], b.snapshot()[1])


@pytest.mark.mpi(min_size=2)
def test_init_frame_on_many_ranks(tmp_path):
    """Each rank reads only its id block of the frame; together they hold exactly that frame."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    base = Path(comm.bcast(str(tmp_path), root=0))
    first = base / "first.h5"
    Simulation(_config(first), comm=comm).run()
    with h5py.File(first, "r") as f:
        frame = f["particles/all/position/value"][1]
    sim = Simulation(_config(base / "b.h5", init=str(first), init_frame=1), comm=comm, write=False)
    assert sim.state.n_own < sim.n_total or comm.size == 1
    np.testing.assert_array_equal(sim.snapshot()[1], frame)
