"""f_inf (late-window mean, block errors), tau_r (paper's definition), averages over seeds."""
import numpy as np
import pytest

from analysis.activity import ActivityTable, SteadyState, activity_curves, block_average
from analysis.errors import WindowError
from analysis.io import load_runs
from analysis.synthetic import write_run


def test_plateau_mean_and_block_error_of_white_noise():
    rng = np.random.default_rng(3)
    k = np.arange(0, 200001, 10)
    f = 0.25 + 0.5 * np.exp(-k / 1000) + 0.01 * rng.standard_normal(k.size)
    ss = SteadyState().compute(k, f)
    assert ss.f_inf == pytest.approx(0.25, abs=4 * ss.f_inf_err)
    # white noise: the block error equals sigma / sqrt(n_window) within sampling error
    n_win = (k >= 100000).sum()
    assert ss.f_inf_err == pytest.approx(0.01 / np.sqrt(n_win), rel=0.5)
    assert ss.window_start == 100000 and ss.steady and not ss.absorbed


def test_tau_r_active_side_exact():
    k = np.arange(0, 20001, 1)
    f = 0.2 + 0.8 * np.exp(-k / 500.0)
    ss = SteadyState().compute(k, f)
    # (f - f_inf)/f_inf < 0.1  <=>  0.8 exp(-k/500) < 0.02  <=>  k > 500 ln 40
    assert ss.tau_r == int(np.floor(500 * np.log(40))) + 1


def test_tau_r_absorbing_side():
    k = np.arange(0, 1001, 10)
    f = np.clip(1 - k / 725.0, 0, None)
    ss = SteadyState().compute(k, f)
    assert ss.absorbed and ss.f_inf == 0.0 and ss.f_inf_err == 0.0
    assert ss.tau_r == 730  # first logged step with f_a = 0
    assert SteadyState().compute(k, f, absorbed=True, absorbed_step=733).tau_r == 733


def test_window_too_short():
    with pytest.raises(WindowError, match="too short"):
        SteadyState(window_fraction=0.1).compute(np.arange(0, 100, 10), np.full(10, 0.3))


def test_block_average_needs_blocks():
    with pytest.raises(WindowError):
        block_average(np.ones(5), 10)


def test_seed_average_includes_absorbed_runs(tmp_path):
    write_run(tmp_path / "a.h5", seed=1, activity=np.full(101, 0.3))
    write_run(tmp_path / "b.h5", seed=2, activity=np.full(101, 0.5))
    write_run(tmp_path / "c.h5", seed=3, activity=np.r_[np.linspace(0.5, 0, 11)])
    t = ActivityTable().compute(load_runs(tmp_path))
    (row,) = t.rows
    assert row["n_seeds"] == 3 and row["n_absorbed"] == 1
    assert row["f_inf"] == pytest.approx(0.8 / 3)
    assert row["f_inf_err"] == pytest.approx(np.std([0.3, 0.5, 0], ddof=1) / np.sqrt(3))
    assert row["tau_r"] == pytest.approx((0 + 0 + 100) / 3)
    assert len(t.per_run) == 3


def test_activity_curves_pad_absorbed(tmp_path):
    write_run(tmp_path / "a.h5", seed=1, activity=np.full(11, 0.4), log_every=10)
    write_run(tmp_path / "b.h5", seed=2, activity=np.linspace(0.4, 0.0, 6), log_every=10)
    ((k, f, e),) = activity_curves(load_runs(tmp_path)).values()
    assert k[-1] == 100 and f[-1] == pytest.approx(0.2)
