"""The steady-state criterion (mpisim.core.steady) on series with known answers, and the analysis
keeping unsteady runs out of f_inf, tau_r and phi_c."""
import numpy as np
import pytest

from analysis.activity import ActivityTable, SteadyState
from analysis.errors import AnalysisError
from analysis.io import load_runs
from analysis.synthetic import fcc_positions, write_run
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


@pytest.fixture
def crystal_runs(tmp_path):
    """Three phi of two seeds (N = 256 at phi = 0.55): at 0.54 both absorb amorphous; at 0.55 seed 1
    absorbs as an fcc crystal and seed 2 stays active (steady); at 0.56 both stay active."""
    k = np.arange(0, 8001, 10)
    active = np.full(k.size, 0.2)
    absorbs = np.r_[np.linspace(0.3, 0.01, 300), 0.0]
    x, box = fcc_positions(4)
    rng = np.random.default_rng(1)
    for phi, seeds in ((0.54, (absorbs, absorbs)), (0.55, (absorbs, active)), (0.56, (active, active))):
        for s, f in enumerate(seeds, start=1):
            crystal = phi == 0.55 and s == 1
            pos = x + 0.02 * rng.standard_normal(x.shape) if crystal else rng.random(x.shape) * box
            write_run(tmp_path / f"phi{phi}_s{s}.h5", n=len(x), phi=phi, seed=s, steps=8000, log_every=10,
                      activity=f, positions=pos[None], box=box)
    return load_runs(tmp_path)


def test_crystal_runs_leave_the_table_and_the_bracket(crystal_runs):
    """The fcc run is a crystal (solid fraction 1), the random ones are not: with the threshold its
    point is left out and its absorption no longer closes the bracket at 0.55."""
    from analysis.fss import absorption_bracket
    plain = ActivityTable().compute(crystal_runs)
    assert all(np.isnan(p["solid_fraction"]) for p in plain.per_run)
    assert absorption_bracket(plain.rows)["phi_none_absorbed"] == 0.56
    t = ActivityTable(max_solid_fraction=0.1).compute(crystal_runs)
    solid = {(p["phi"], p["seed"]): p["solid_fraction"] for p in t.per_run}
    assert solid[(0.55, 1)] == 1.0 and max(v for key, v in solid.items() if key != (0.55, 1)) < 0.1
    rows = {r["phi"]: r for r in t.rows}
    assert rows[0.55]["n_crystal"] == 1 and "crystal" in rows[0.55]["excluded"]
    assert rows[0.55]["n_seeds"] == 1 and rows[0.55]["n_absorbed"] == 0 and np.isnan(rows[0.55]["f_inf"])
    assert rows[0.54]["n_crystal"] == 0 and rows[0.54]["f_inf"] == 0.0
    (ex,) = t.excluded
    assert ex["reason"].startswith("crystal: 100.0%")
    assert "crystal 1" in t.exclusion_note
    b = absorption_bracket(t.rows)
    assert b["phi_all_absorbed"] == 0.54 and b["phi_none_absorbed"] == 0.55
    kept = ActivityTable(max_solid_fraction=0.1, include_unsteady=True).compute(crystal_runs)
    assert np.isnan(next(r for r in kept.rows if r["phi"] == 0.55)["f_inf"])   # crystals stay out
    assert len(kept.excluded) == 1 and "excluded 1 crystal" in kept.exclusion_note
    with pytest.raises(AnalysisError, match="max_solid_fraction"):
        ActivityTable(max_solid_fraction=1.5)


def test_crystal_option_on_the_command_line(crystal_runs, tmp_path, capsys):
    from analysis.cli import main
    out = tmp_path / "per_run.csv"
    inputs = [str(r.path) for r in crystal_runs]
    assert main(["activity", *inputs, "--per-run", "--max-solid-fraction", "0.1", "-o", str(out)]) == 0
    header, *lines = out.read_text().splitlines()
    assert header.split(",")[-1] == "solid_fraction" and len(lines) == 6
    assert "crystal 1" in capsys.readouterr().err
    assert main(["activity", *inputs, "--max-solid-fraction", "2"]) == 2
    assert "max_solid_fraction" in capsys.readouterr().err
