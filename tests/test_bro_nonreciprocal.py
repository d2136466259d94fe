"""Nonreciprocal pairwise BRO (mpisim/core/schemes/bro_nonreciprocal.py; sips
NonReciprocalPairwiseBROCList): exact two- and three-particle kicks, the moments of each side and their
independence, exact restart, and the same trajectory on any rank count (serial here and under mpirun -n
2..4; tests/test_domain.py runs it with every other registered scheme too)."""
import numpy as np
import pytest

from mpisim import Simulation
from mpisim.core import rng
from mpisim.core.fixedpoint import FIXED_SCALE

from .run_checks import assert_parallel_equals_serial, assert_restart_is_exact
from .test_schemes import EPS, make, one_step, pair_geometry

SCHEME = "bro-nonreciprocal"


def u(self_id, other_id, seed=11, step=0):
    """Particle self_id's kick size in its pair with other_id: eps U[0, 1) keyed (self, other)."""
    return EPS * rng.uniform(seed, step, rng.STREAM_PAIR_UNIFORM, self_id, other_id)


@pytest.mark.parametrize("dim", [2, 3])
def test_two_particles_exact(dim):
    sim = make(SCHEME, dim=dim)
    x, e = pair_geometry(dim)                       # e: unit vector from particle 1 to particle 0
    d = one_step(sim, x)
    np.testing.assert_allclose(d[0], u(0, 1) * e, atol=2 / FIXED_SCALE)
    np.testing.assert_allclose(d[1], -u(1, 0) * e, atol=2 / FIXED_SCALE)
    assert abs(u(0, 1) - u(1, 0)) > 1e-3            # two draws: the kicks do not cancel
    assert np.abs(d.sum(axis=0)).max() > 1e-4
    # The smaller id's side is bro-pairwise's u^{ij}.
    np.testing.assert_array_equal(d[0], one_step(make("bro-pairwise", dim=dim), x)[0])


@pytest.mark.parametrize("dim", [2, 3])
def test_three_particles_exact(dim):
    """Particle 1 overlaps 0 and 2: its two pairs give it two independent sizes, keyed (1, 0) and (1, 2)."""
    sim = make(SCHEME, n=3, dim=dim)
    x, e = pair_geometry(dim)
    x = np.vstack([x, x[1] + 0.8 * np.eye(dim)[1]])
    d = one_step(sim, x)
    e21 = (x[1] - x[2]) / np.linalg.norm(x[1] - x[2])
    np.testing.assert_allclose(d[0], u(0, 1) * e, atol=4 / FIXED_SCALE)
    np.testing.assert_allclose(d[1], -u(1, 0) * e + u(1, 2) * e21, atol=4 / FIXED_SCALE)
    np.testing.assert_allclose(d[2], -u(2, 1) * e21, atol=4 / FIXED_SCALE)


def test_each_side_is_uniform_and_the_sides_are_independent():
    """Along e: each particle's kick has mean eps/2 and variance eps^2/12 (as reciprocal BRO), but the
    two kicks are uncorrelated (reciprocal BRO: correlation 1)."""
    sim = make(SCHEME)
    x, e = pair_geometry()
    samples = 3000
    a, b = np.empty(samples), np.empty(samples)
    for k in range(samples):
        d = one_step(sim, x)
        a[k], b[k] = d[0] @ e, -d[1] @ e
    for s in (a, b):
        assert abs(s.mean() - EPS / 2) < 5 * np.sqrt(EPS ** 2 / 12 / samples)
        assert abs(s.var(ddof=1) - EPS ** 2 / 12) < 5 * EPS ** 2 / 12 * np.sqrt(1.0 / samples)
        assert s.min() >= 0 and s.max() < EPS
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / np.sqrt(samples)


def config(tmp_path=None, n=500, dim=2, steps=40, **run):
    cfg = {"system": {"n": n, "phi": 0.62, "dim": dim, "seed": 8, "polydispersity": 0.1},
           "dynamics": {"scheme": SCHEME, "kick_size": 0.1},
           "run": {"steps": steps, "log_every": 4, "stop_when_absorbed": False, "progress_seconds": 0.0,
                   "sort_every": 7, **run}}
    if tmp_path is not None:
        cfg["output"] = {"path": str(tmp_path / "run.h5"), "snapshot_every": 10}
    return cfg


def test_restart_from_checkpoint_is_exact(tmp_path):
    assert_restart_is_exact(config(tmp_path, checkpoint_every=20), tmp_path, cut_at=30)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("dim", [2, 3])
def test_parallel_run_equals_serial_run(dim):
    """Pairs straddling two ranks are computed on both, each keeping its own particle's side: the sides
    differ, so this checks that both ranks assign c_lo and c_hi by id, not by storage order."""
    from mpi4py import MPI
    cfg = config(n=600 if dim == 2 else 900, dim=dim, steps=60)
    par, ser = assert_parallel_equals_serial(cfg)
    _, pos, img = ser.snapshot()
    _, pos0, img0 = Simulation.from_config(cfg, comm=MPI.COMM_SELF, write=False).snapshot()
    drift = (pos + img * ser.box[:dim] - pos0 - img0 * ser.box[:dim]).sum(axis=0)
    assert np.abs(drift).max() > 1e-3        # the centre of mass moved: the nonreciprocal path ran
