"""The steady-state criterion (mpisim.core.steady) on series with known answers, and the analysis
keeping unsteady runs out of f_inf, tau_r and phi_c."""
import numpy as np
import pytest

from analysis.activity import ActivityTable, SteadyState
from analysis.io import load_runs
from analysis.synthetic import write_run
from mpisim.core.steady import is_steady

K = np.arange(0, 20001, 10)


def ar1(rng, n, rho):
    """Stationary AR(1) noise of unit variance and correlation time -1/ln(rho) points."""
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0]
    c = np.sqrt(1.0 - rho ** 2)
    for j in range(1, n):
        x[j] = rho * x[j - 1] + c * e[j]
    return x


@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_stationary_series_are_steady(rho):
    rng = np.random.default_rng(7)
    verdicts = [is_steady(0.3 + 0.01 * ar1(rng, K.size, rho), K)[0] for _ in range(200)]
    assert np.mean(verdicts) >= 0.95          # measured 0.98-0.99 (module doc)


def test_relaxing_series_is_not_steady():
    rng = np.random.default_rng(8)
    for _ in range(50):
        f = 0.3 + 0.2 * np.exp(-K / 8000.0) + 0.01 * ar1(rng, K.size, 0.9)
        ok, d = is_steady(f, K)
        assert not ok and d["reason"] == "drift" and d["drift"] < -3 * d["drift_err"]
    # the same relaxation seen over a run 5x longer is steady in its second half
    k = np.arange(0, 100001, 50)
    ok, d = is_steady(0.3 + 0.2 * np.exp(-k / 8000.0) + 0.01 * ar1(rng, k.size, 0.9), k)
    assert ok and d["reason"] == "flat" and d["window_start"] == 50000


def test_absorbed_constant_and_short_series():
    ok, d = is_steady(np.r_[np.linspace(0.5, 0.01, 30), 0.0], np.arange(31))
    assert ok and d["reason"] == "absorbed"
    ok, d = is_steady(np.full(101, 0.25), np.arange(101))     # exactly flat: no error, no drift
    assert ok and d["drift"] == 0.0
    ok, d = is_steady(np.full(30, 0.25), np.arange(30))       # 15 points in the tail < 4 x 5
    assert not ok and d["reason"] == "too few points"
    with pytest.raises(ValueError, match="tail_fraction"):
        is_steady(np.ones(50), np.arange(50), tail_fraction=0.0)


def test_rtol_accepts_a_small_drift():
    f = 0.3 + 1e-4 * K / K[-1]                                  # noiseless, 0.03% drift
    assert not is_steady(f, K)[0]
    assert is_steady(f, K, rtol=1e-3)[0]


def test_steady_state_flag_uses_the_criterion():
    k = np.arange(0, 8001, 10)
    slow = 0.2 + 0.6 * np.exp(-k / 4000.0)                     # relaxing past the window start
    ss = SteadyState().compute(k, slow)
    assert not ss.steady and ss.steady_reason.startswith("relaxing")
    creep = 0.2 + 0.02 * np.exp(-k / 4000.0)                   # within 10% of f_inf from the start (tau_r = 0),
    ss = SteadyState().compute(k, creep)                       # yet still drifting over the window
    assert ss.tau_r == 0 and not ss.steady and ss.steady_reason.startswith("drift")
    ss = SteadyState().compute(k, np.full(k.size, 0.2))
    assert ss.steady and ss.steady_reason == "flat"


@pytest.fixture
def mixed_runs(tmp_path):
    """Two parameter groups of two seeds: one steady, one where seed 2 is still relaxing."""
    k = np.arange(0, 8001, 10)
    flat = np.full(k.size, 0.2)
    slow = 0.2 + 0.02 * np.exp(-k / 4000.0)
    for phi, seeds in ((0.60, (flat, flat)), (0.62, (flat, slow))):
        for s, f in enumerate(seeds, start=1):
            write_run(tmp_path / f"phi{phi}_s{s}.h5", n=100, phi=phi, seed=s, steps=8000, log_every=10,
                      activity=f)
    return load_runs(tmp_path)


def test_table_excludes_groups_with_an_unsteady_seed(mixed_runs):
    t = ActivityTable().compute(mixed_runs)
    rows = {r["phi"]: r for r in t.rows}
    assert rows[0.60]["f_inf"] == pytest.approx(0.2) and rows[0.60]["excluded"] == ""
    assert np.isnan(rows[0.62]["f_inf"]) and np.isnan(rows[0.62]["tau_r"])
    assert rows[0.62]["n_unsteady"] == 1 and "not steady" in rows[0.62]["excluded"]
    (ex,) = t.excluded
    assert ex["phi"] == 0.62 and ex["reason"].startswith("drift")
    assert "1 of 4 runs" in t.exclusion_note and "1 of 2" in t.exclusion_note
    kept = ActivityTable(include_unsteady=True).compute(mixed_runs)
    row = next(r for r in kept.rows if r["phi"] == 0.62)
    assert np.isfinite(row["f_inf"]) and row["f_inf"] > 0.2 and row["n_unsteady"] == 1
    assert kept.excluded == [] and "included" in kept.exclusion_note


def test_module_examples():
    import doctest

    import mpisim.core.steady as steady
    result = doctest.testmod(steady)
    assert result.attempted >= 3 and result.failed == 0
