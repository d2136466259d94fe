"""f_inf (late-window mean, block errors), tau_r (paper's definition), averages over seeds."""
import numpy as np
import pytest

from analysis.activity import ActivityTable, SteadyState, activity_curves, block_average
from analysis.errors import AnalysisError, WindowError
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


def horizon_sweep(root):
    """N = 1000: at phi = 0.60 two runs absorb (steps 3000, 8000) and one is flat but stops at 5000; at
    0.61 one absorbs at 12000 and one is flat to 20000; at 0.62 a flat run stops at 5000 (nothing
    absorbs at >= 0.62). N = 2000, phi = 0.60: a flat run to 5000 (no absorption at that N)."""
    flat = lambda steps: 0.3 + 0.01 * np.random.default_rng(steps).standard_normal(steps // 50 + 1)  # noqa: E731
    down = lambda step: np.r_[np.linspace(0.3, 0.01, step // 50), 0.0]                          # noqa: E731
    for n, phi, seed, act in [(1000, 0.60, 1, down(3000)), (1000, 0.60, 2, down(8000)),
                              (1000, 0.60, 3, flat(5000)), (1000, 0.61, 1, down(12000)),
                              (1000, 0.61, 2, flat(20000)), (1000, 0.62, 1, flat(5000)),
                              (2000, 0.60, 1, flat(5000))]:
        write_run(root / f"n{n}_phi{phi}_s{seed}.h5", n=n, phi=phi, seed=seed, log_every=50, activity=act)
    return load_runs(root)


@pytest.mark.parametrize("horizon,short", [(1.0, {(1000, 0.60, 3)}), (2.0, {(1000, 0.60, 3), (1000, 0.61, 2)}),
                                           (0.0, set())])
def test_a_flat_run_that_stopped_before_a_later_absorption_is_short(tmp_path, horizon, short):
    """A run counts as steady only if it outlived the latest absorption at its N and at the same or a
    higher phi: (1000, 0.60, seed 3) stopped at 5000 while a run at 0.61 absorbed at 12000."""
    t = ActivityTable(absorption_horizon=horizon).compute(horizon_sweep(tmp_path))
    got = {(p["n"], p["phi"], p["seed"]) for p in t.per_run if not p["steady"]}
    assert got == short
    for p in t.per_run:
        if (p["n"], p["phi"], p["seed"]) in short:
            assert p["steady_reason"].startswith("short: active at its last step")
            assert "step 12000 at phi = 0.61" in p["steady_reason"]
    rows = {(r["n"], r["phi"]): r for r in t.rows}
    assert np.isnan(rows[(1000, 0.60)]["f_inf"]) == ((1000, 0.60, 3) in short)
    assert np.isfinite(rows[(1000, 0.62)]["f_inf"]) and np.isfinite(rows[(2000, 0.60)]["f_inf"])
    assert ("short" in t.exclusion_note) == bool(short)
    with pytest.raises(AnalysisError):
        ActivityTable(absorption_horizon=-1)
