"""MSD from unwrapped positions and the exponent c of MSD ~ k^c (random walk: c = 1)."""
import numpy as np
import pytest

from analysis.errors import WindowError
from analysis.io import load_run, load_runs
from analysis.msd import MSD, DiffusionExponent, msd_at, msd_from_positions, run_msd
from analysis.synthetic import write_run


def walk(seed, frames=401, n=200, step=0.05, drift=0.0):
    rng = np.random.default_rng(seed)
    jumps = rng.normal(0, step, (frames - 1, n, 3)) + drift
    return np.r_[np.zeros((1, n, 3)), np.cumsum(jumps, axis=0)] + rng.random((n, 3)) * 6.0


@pytest.mark.parametrize("drift,c_true", [(0.0, 1.0), (0.05, 2.0)])
def test_exponent_of_walks(tmp_path, drift, c_true):
    for s in range(3):
        write_run(tmp_path / f"w{s}.h5", n=200, seed=s, positions=walk(s, drift=drift),
                  frame_steps=np.arange(401) * 5, box=np.full(3, 6.0), activity=np.full(401, 0.1),
                  log_every=5)
    m = MSD().compute(load_runs(tmp_path))
    # ballistic + diffusive crossover: c -> 2 only when drift dominates, so tolerance is loose there
    tol = 0.05 if drift == 0 else 0.15
    assert m.exponent.c == pytest.approx(c_true, abs=tol)
    assert m.exponent.c_err < 0.05
    assert len(m.c_seeds) == 3
    assert m.exponent.fit_range == (2000 / 3, 2000)
    if drift == 0:
        # MSD of a Gaussian walk: 3 step^2 per frame
        assert m.at(1000)[0] == pytest.approx(3 * 0.05 ** 2 * 200, rel=0.1)


def test_positions_unwrap_across_the_box(tmp_path):
    traj = walk(0, frames=50, step=0.5)  # many boundary crossings in a box of 6
    p = write_run(tmp_path / "w.h5", n=200, positions=traj, box=np.full(3, 6.0), activity=np.full(50, 0.1))
    steps, msd = run_msd(load_run(p), "positions")
    np.testing.assert_allclose(msd, msd_from_positions(traj), rtol=1e-10)


def test_observable_fallback_and_fit_range(tmp_path):
    k = np.arange(0, 1001, 10)
    p = write_run(tmp_path / "o.h5", activity=np.full(k.size, 0.1), msd=0.3 * k ** 0.6, log_every=10)
    steps, msd = run_msd(load_run(p))
    d = DiffusionExponent(k_min=100, k_max=900).compute(steps, msd)
    assert d.c == pytest.approx(0.6, abs=1e-9) and d.amplitude == pytest.approx(0.3)
    with pytest.raises(WindowError, match="too short"):
        DiffusionExponent(k_max=5000).compute(steps, msd)
    with pytest.raises(WindowError, match="too short"):
        msd_at(steps, msd, 10_000)
