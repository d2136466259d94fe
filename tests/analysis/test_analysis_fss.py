"""pyfssa-compatible scaling functions on data with planted exponents; phi_c fits; extrapolation."""
import numpy as np
import pytest

from analysis.critical import (CriticalPoints, absorption_bracket, compare_extrapolations, extrapolate,
                               extrapolate_brackets)
from analysis.errors import AnalysisError, CollapseError
from analysis.fss import (MANNA, Collapse, autoscale, fit_critical_point, fit_phi_c_powerlaw,
                          observable_exponents, quality, refine_phi_grid, scaledata)


def planted(l, rho, rho_c, nu, zeta, noise=0.01, seed=0):
    lm, rm = np.meshgrid(l, rho, indexing="ij")
    x = lm ** (1 / nu) * (rm - rho_c)
    a = lm ** (zeta / nu) * (1.0 / (1.0 + np.exp(-x)) + 0.2)
    da = noise * a
    a = a + np.random.default_rng(seed).standard_normal(a.shape) * da
    return a, da


def test_scaledata_conventions():
    l, rho = np.array([10.0, 100.0]), np.array([0.4, 0.5, 0.6])
    a = np.ones((2, 3))
    s = scaledata(l, rho, a, 0.1 * a, 0.5, 2.0, 1.0)
    np.testing.assert_allclose(s.x[1], 100 ** 0.5 * (rho - 0.5))
    np.testing.assert_allclose(s.y[1], 100 ** -0.5)
    np.testing.assert_allclose(s.dy[1], 0.1 * 100 ** -0.5)
    with pytest.raises(ValueError):
        scaledata(l, rho, a, a, 0.7, 2.0, 1.0)     # rho_c out of range
    with pytest.raises(ValueError):
        scaledata(l, rho, a, 0 * a, 0.5, 2.0, 1.0)  # non-positive errors


def test_quality_minimal_at_planted_parameters():
    l, rho = np.array([10.0, 20.0, 40.0, 80.0]), np.linspace(0.9, 1.1, 25)
    a, da = planted(l, rho, 1.0, 1.5, 0.7)
    s_true = quality(*scaledata(l, rho, a, da, 1.0, 1.5, 0.7))
    s_off = quality(*scaledata(l, rho, a, da, 1.02, 1.5, 0.7))
    assert s_true < 3 < s_off


def test_autoscale_recovers_planted_exponents():
    l, rho = np.array([10.0, 20.0, 40.0, 80.0]), np.linspace(0.9, 1.1, 25)
    a, da = planted(l, rho, 1.0, 1.5, 0.7)
    res = autoscale(l, rho, a, da, rho_c0=0.99, nu0=1.3, zeta0=0.5)
    assert res.success
    for field in ("rho", "nu", "zeta", "drho", "dnu", "dzeta", "fun", "success"):
        assert field in res
    assert res.rho == pytest.approx(1.0, abs=max(4 * res.drho, 2e-3))
    assert res.nu == pytest.approx(1.5, abs=max(4 * res.dnu, 0.05))
    assert res.zeta == pytest.approx(0.7, abs=max(4 * res.dzeta, 0.05))
    assert 0 < res.drho < 0.02 and 0 < res.dnu < 0.5


@pytest.mark.parametrize("dim,quantity", [(3, "f_inf"), (3, "tau_r"), (2, "f_inf")])
def test_fixed_manna_exponents_fit_phi_c(dim, quantity):
    nu, zeta = observable_exponents(quantity, dim)
    l = np.array([500, 4000, 32000]) ** (1 / dim) if dim == 3 else np.array([400, 1600, 6400]) ** 0.5
    rho = np.linspace(0.60, 0.68, 17)
    a, da = planted(l, rho, 0.6431, nu, zeta, noise=0.005)
    res = fit_critical_point(l, rho, a, da, nu, zeta)
    assert res.rho == pytest.approx(0.6431, abs=max(4 * res.drho, 5e-4))
    assert 0 < res.drho < 0.005
    assert res.dnu == 0 and res.nu == nu


def test_missing_points_are_allowed():
    l, rho = np.array([10.0, 20.0, 40.0]), np.linspace(0.9, 1.1, 21)
    a, da = planted(l, rho, 1.0, 1.5, 0.7)
    a[0, :5] = np.nan
    a[2, -4:] = np.nan
    res = fit_critical_point(l, rho, a, da, 1.5, 0.7)
    assert res.rho == pytest.approx(1.0, abs=3e-3)


def test_collapse_from_table_rows_and_too_few_sizes():
    m = MANNA[3]
    rows = []
    for n in (1000, 8000):
        L = n ** (1 / 3)
        for phi in np.linspace(0.60, 0.70, 41):
            x = L ** (1 / m.nu_perp) * (phi - 0.65)
            f = L ** (-m.beta / m.nu_perp) * np.log1p(np.exp(2 * x))
            rows.append({"n": n, "phi": phi, "f_inf": f, "f_inf_err": 0.01 * f})
    c = Collapse("f_inf", dim=3).compute(rows)
    assert c.phi_c == pytest.approx(0.65, abs=1e-3)
    assert c.scaled.x.shape == (2, 41)
    with pytest.raises(CollapseError, match="too few sizes"):
        Collapse("f_inf", dim=3).compute([r for r in rows if r["n"] == 1000])


def test_powerlaw_single_size_fallback():
    phi = np.linspace(0.62, 0.70, 9)
    f = 2.0 * (phi - 0.61) ** 0.84
    pc, dpc, amp = fit_phi_c_powerlaw(phi, f, 0.001 * f, 0.84)
    assert pc == pytest.approx(0.61, abs=1e-6) and amp == pytest.approx(2.0, rel=1e-4)


def test_extrapolation_line_and_error():
    eps = np.array([0.01, 0.02, 0.04, 0.08])
    rng = np.random.default_rng(1)
    err = np.full(4, 0.002)
    y = 0.64 + 0.3 * eps + err * rng.standard_normal(4)
    fit = extrapolate(eps, y, err)
    assert fit.form == "linear" and fit.dof == 2 and fit.n_points == 4
    assert fit.phi_c0 == pytest.approx(0.64, abs=4 * fit.phi_c0_err)
    assert 0.001 < fit.phi_c0_err < 0.01
    assert fit.aic == pytest.approx(fit.chi2 + 4) and fit.aicc == pytest.approx(fit.aic + 12)
    with pytest.raises(CollapseError):
        extrapolate([0.01], [0.64], [0.001])
    with pytest.raises(CollapseError):
        extrapolate([0.01, 0.02], [0.64, 0.65], [0.001, 0.001], form="power")


@pytest.mark.parametrize("truth", ["linear", "sqrt"])
def test_extrapolation_forms_recover_their_own_data(truth):
    """Six step sizes, noiseless: the true form fits exactly, the others do not, and the free power
    finds the exponent (1 or 1/2)."""
    eps = np.array([0.0125, 0.025, 0.05, 0.1, 0.2, 0.4])
    g = eps if truth == "linear" else np.sqrt(eps)
    y, err = 0.64 - 0.1 * g, np.full(eps.size, 0.001)
    cmp_ = compare_extrapolations(eps, y, err)
    fits = cmp_["fits"]
    assert fits[truth].phi_c0 == pytest.approx(0.64, abs=1e-9) and fits[truth].chi2 < 1e-12
    assert fits["power"].params[2] == pytest.approx(1.0 if truth == "linear" else 0.5, rel=1e-4)
    assert fits["power"].phi_c0 == pytest.approx(0.64, abs=1e-6)
    other = "sqrt" if truth == "linear" else "linear"
    assert fits[other].chi2_per_dof > 10 and not fits[other].contains(0.64)
    assert cmp_["preferred"] == truth and cmp_["decisive"]      # power has one parameter more
    assert f"data prefer {truth}" in cmp_["verdict"] and "0.64 inside" in cmp_["verdict"]


def test_brackets_two_points_give_the_lines_through_their_corners():
    """Two brackets: the extreme lines join opposite corners, so phi_c0 is known in closed form."""
    eps, lo, hi = [0.1, 0.05], [0.55, 0.59], [0.56, 0.60]
    b = extrapolate_brackets(eps, lo, hi, "linear")
    # max: through (0.1, lo0) and (0.05, hi1): p0 = 2 hi1 - lo0; min: 2 lo1 - hi0
    assert b.phi_c0_lo == pytest.approx(2 * 0.59 - 0.56) and b.phi_c0_hi == pytest.approx(2 * 0.60 - 0.55)
    assert b.consistent and b.contains(0.63) and not b.contains(0.66) and b.n_brackets == 2
    g = np.sqrt(eps)
    s = extrapolate_brackets(eps, lo, hi, "sqrt")
    assert s.phi_c0_hi == pytest.approx((0.60 * g[0] - 0.55 * g[1]) / (g[0] - g[1]))
    # an open side leaves that side unbounded
    assert extrapolate_brackets(eps, [0.55, np.nan], hi, "linear").phi_c0_lo == -np.inf


@pytest.mark.parametrize("truth", ["linear", "sqrt"])
def test_brackets_around_a_planted_curve(truth):
    """Brackets of width 0.004 around phi_c(eps) = 0.64 - s g(eps) at four step sizes: the true form's
    range holds 0.64 and is narrower than the brackets' spread; the other form has no curve through
    them; the free power admits the true exponent."""
    eps = np.array([0.0125, 0.025, 0.05, 0.1])
    g = eps if truth == "linear" else np.sqrt(eps)
    y = 0.64 - (0.8 if truth == "linear" else 0.25) * g
    shift = np.array([0.001, -0.0015, 0.0005, -0.001])     # the truth is not centred
    lo, hi = y - 0.002 + shift, y + 0.002 + shift
    fits = {f: extrapolate_brackets(eps, lo, hi, f) for f in ("linear", "sqrt", "power")}
    assert fits[truth].contains(0.64) and fits[truth].phi_c0_hi - fits[truth].phi_c0_lo < 0.02
    other = "sqrt" if truth == "linear" else "linear"
    assert not fits[other].consistent and not fits[other].contains(0.64)
    assert np.isnan(fits[other].phi_c0_lo) and np.isnan(fits[other].exponent_lo)
    p = fits["power"]
    a = 1.0 if truth == "linear" else 0.5
    assert p.exponent_lo <= a <= p.exponent_hi and p.contains(0.64)
    assert p.phi_c0_lo <= fits[truth].phi_c0_lo and p.phi_c0_hi >= fits[truth].phi_c0_hi


def test_brackets_refused_when_too_few_or_reversed():
    with pytest.raises(CollapseError):
        extrapolate_brackets([0.1], [0.55], [0.56])
    with pytest.raises(CollapseError):
        extrapolate_brackets([0.1, 0.05], [0.55, 0.59], [0.56, 0.6], "power")
    with pytest.raises(CollapseError):   # a step size without a bracket side is dropped
        extrapolate_brackets([0.1, 0.05], [0.55, np.nan], [0.56, np.nan])
    with pytest.raises(AnalysisError, match="lo <= hi"):
        extrapolate_brackets([0.1, 0.05], [0.57, 0.59], [0.56, 0.6])


def test_three_points_cannot_tell_linear_from_sqrt():
    """The issue's situation: three step sizes with errors of a few 1e-3 fit a line and a square root
    equally well; the comparison says so instead of choosing, and the two phi_c(0) differ."""
    eps = np.array([0.025, 0.05, 0.1])
    err = np.full(3, 0.004)
    y = 0.628 - 0.08 * np.sqrt(eps) + np.array([0.001, -0.002, 0.001])
    cmp_ = compare_extrapolations(eps, y, err)
    assert not cmp_["decisive"] and "not decisive" in cmp_["verdict"]
    lin, sq = cmp_["fits"]["linear"], cmp_["fits"]["sqrt"]
    assert lin.chi2_per_dof < 2 and sq.chi2_per_dof < 2
    assert sq.phi_c0 - lin.phi_c0 > lin.phi_c0_err
    assert cmp_["fits"]["power"].dof == 0 and not np.isfinite(cmp_["fits"]["power"].aicc)


def test_critical_points_on_planted_sweep(sweep_dir):
    from analysis.activity import ActivityTable
    from analysis.io import load_runs
    t = ActivityTable().compute(load_runs(sweep_dir / "manifest.tsv"))
    assert t.exclusion_note == ""
    cp = CriticalPoints().compute(t.rows)
    got = {p["step_size"]: p for p in cp.points}
    assert got[0.1]["phi_c"] == pytest.approx(0.61, abs=0.005)
    assert got[0.2]["phi_c"] == pytest.approx(0.63, abs=0.005)
    assert {p["status"] for p in cp.points} == {"value"}
    lin = next(e for e in cp.extrapolations if e["form"] == "linear")
    assert lin["phi_c0"] == pytest.approx(0.59, abs=0.03) and lin["n_points"] == 2
    power = next(e for e in cp.extrapolations if e["form"] == "power")
    assert np.isnan(power["phi_c0"]) and "more step sizes" in power["note"]


def test_bootstrap_over_seeds(sweep_dir):
    from analysis.activity import ActivityTable
    from analysis.io import load_runs
    t = ActivityTable().compute(load_runs(sweep_dir / "manifest.tsv"))
    a = CriticalPoints(n_bootstrap=12, seed=3).compute(t.rows, t.per_run)
    b = CriticalPoints(n_bootstrap=12, seed=3).compute(t.rows, t.per_run)
    for p, q in zip(a.points, b.points):
        assert p["n_bootstrap"] == 12 and p["phi_c_err_bootstrap"] == q["phi_c_err_bootstrap"]
        assert np.isfinite(p["phi_c_err_bootstrap"]) and p["phi_c_err_bootstrap"] > 0
        assert p["phi_c_err"] == max(p["phi_c_err_fit"], p["phi_c_err_bootstrap"])
    # the quality ceiling judges the data, not a replica (one that drew a seed twice has too small
    # errors): just above each value's S, the bootstrap is the same as with no ceiling
    for p in a.points:
        rows = [r for r in t.rows if r["learning_rate"] == p["step_size"]]
        runs = [r for r in t.per_run if r["learning_rate"] == p["step_size"]]
        c, d = (CriticalPoints(n_bootstrap=12, seed=3, max_quality=q).compute(rows, runs).points[0]
                for q in (1.01 * p["quality"], np.inf))
        assert c["status"] == d["status"] == "value"
        assert (c["phi_c_err_bootstrap"], c["bootstrap_not_value"]) == (d["phi_c_err_bootstrap"],
                                                                         d["bootstrap_not_value"])


def manna_rows(phis, phi_c, sizes=(1000, 8000, 64000), absorbed_below=None, rel_err=0.01):
    """f_inf rows with the 3d Manna scaling and a planted phi_c; 0 (absorbed) at phi < absorbed_below."""
    m = MANNA[3]
    rows = []
    for n in sizes:
        L = n ** (1 / 3)
        for phi in phis:
            x = L ** (1 / m.nu_perp) * (phi - phi_c)
            f = L ** (-m.beta / m.nu_perp) * np.log1p(np.exp(2 * x))
            if absorbed_below is not None and phi < absorbed_below:
                f = 0.0
            rows.append({"n": n, "phi": float(phi), "f_inf": f, "f_inf_err": rel_err * f})
    return rows


def test_optimum_at_the_edge_gets_a_finite_error_and_a_flag():
    """Data only above the planted phi_c = 0.60: S falls towards the lower end of the data range, where the
    curvature cannot be taken; the error falls back to the width of the S minimum, never NaN."""
    nu, zeta = observable_exponents("f_inf", 3)
    l = np.array([1000.0, 8000.0, 64000.0]) ** (1 / 3)
    rho = np.linspace(0.62, 0.70, 17)
    lm, rm = np.meshgrid(l, rho, indexing="ij")
    a = lm ** (zeta / nu) * np.log1p(np.exp(2 * lm ** (1 / nu) * (rm - 0.60)))
    da = 0.01 * a
    res = fit_critical_point(l, rho, a, da, nu, zeta)
    assert res.at_boundary == "lower" and res.rho == pytest.approx(0.62, abs=1e-3)
    assert res.drho_method in ("delta_s", "delta_s_one_sided", "range")
    assert np.isfinite(res.drho) and res.drho > 0
    # with room below the data the same fit finds the planted value in the interior, by curvature
    inside = fit_critical_point(l, rho, a, da, nu, zeta, bounds=(0.56, 0.70))
    assert inside.at_boundary == "" and inside.drho_method == "curvature"
    assert inside.rho == pytest.approx(0.60, abs=max(4 * inside.drho, 1e-3))


@pytest.mark.parametrize("extend", [True, False])
def test_f_inf_collapse_may_reach_down_to_the_last_absorbed_phi(extend):
    phis = np.round(np.arange(0.56, 0.705, 0.01), 3)
    rows = manna_rows(phis, 0.60, absorbed_below=0.605)       # phi <= 0.60: every run absorbed
    c = Collapse("f_inf", dim=3, extend_to_absorbed=extend).compute(rows)
    label = c.phi_c_label()
    assert "nan" not in label and np.isfinite(c.phi_c_err) and c.phi_c_err > 0
    if extend:
        assert c.phi_c_range == (0.60, 0.70)
        assert c.phi_c == pytest.approx(0.60, abs=2e-3)
        assert np.isfinite(c.scaled.x).sum() == np.isfinite(c.grid[2]).sum()
    else:
        assert c.phi_c_range == (0.61, 0.70)
        assert c.at_boundary == "lower" and c.phi_c_err_method != "curvature"
        assert "lower end" in label


def test_delta_s_width_equals_the_curvature_error_for_a_parabola():
    from analysis.fss import _delta_s_halfwidth
    grid = np.linspace(0.0, 1.0, 2001)
    smin, curv, x0 = 2.0, 100.0, 0.3                     # S = S_min + S''/2 (x - x0)^2
    vals = smin + 0.5 * curv * (grid - x0) ** 2
    left, right = _delta_s_halfwidth(grid, vals, x0, smin, max(smin, 1.0))
    assert 0.5 * (right - left) == pytest.approx(np.sqrt(2 * smin / curv), rel=1e-3)
    left, right = _delta_s_halfwidth(grid, vals, 0.0, 0.5 * curv * x0 ** 2 + smin, 1.0)
    assert left is None and right is not None            # the optimum at the lower end: one side only


def test_planted_phi_c_inside_the_grid_is_a_value():
    """The study's sizes and a grid of 0.005: phi_c found between grid points, by curvature, with the
    range reaching down to the last phi where every run absorbed."""
    phis = np.round(np.arange(0.60, 0.7001, 0.005), 3)
    rows = manna_rows(phis, 0.6431, sizes=(1000, 2000, 4000), absorbed_below=0.64)
    c = Collapse("f_inf", dim=3).compute(rows)
    assert c.status == "value" and c.phi_c_bound == "" and np.isnan(c.phi_c_limit)
    assert c.phi_c_err_method == "curvature" and c.phi_c_err < 0.002
    assert c.phi_c == pytest.approx(0.6431, abs=3 * c.phi_c_err)
    assert c.phi_c_range == (0.635, 0.70)


def unrelaxed_rows(step, sizes=(1000, 2000, 4000)):
    """Runs far too short: f_inf is the same for every N, stays high above the last phi where every
    run absorbed (0.60), and carries no finite-size scaling."""
    rows = []
    for n in sizes:
        for phi in np.round(np.arange(0.56, 0.705, 0.01), 3):
            f = 0.3 + 3.0 * (phi - 0.60) if phi > 0.605 else 0.0
            rows.append({"scheme": "sgd", "dim": 3, "n": n, "phi": float(phi), "kick_size": None,
                         "learning_rate": step, "batch_fraction": 0.5, "potential": "linear",
                         "f_inf": f, "f_inf_err": 0.02 * f, "tau_r": 100.0, "tau_r_err": 1.0})
    return rows


def test_unrelaxed_size_independent_data_give_a_bound_not_a_value():
    c = Collapse("f_inf", dim=3).compute(unrelaxed_rows(0.05))
    assert c.status == "bound" and c.at_boundary == "lower"
    assert c.phi_c == pytest.approx(0.60, abs=1e-3)           # S is lowest at the last absorbed phi
    assert c.phi_c_bound.startswith("<=") and c.phi_c_limit > c.phi_c
    assert c.phi_c_label().startswith("<=") and "+-" not in c.phi_c_label()
    assert c.status_reason.startswith("S is lowest at the lower end of its range [0.6,")


def test_a_free_fit_without_an_error_is_not_a_value(monkeypatch):
    """A free optimum inside the range whose curvature error is undefined (S not curved upwards there;
    rcd at alpha = 0.1, N = 1000 - 8000: phi_c 0.5813, S = 0.014, zeta = -1.44, error NaN): undetermined,
    so it never enters an extrapolation as a value."""
    import analysis.fss as fss
    rows = manna_rows(np.round(np.arange(0.60, 0.7001, 0.005), 3), 0.6431, sizes=(1000, 2000, 4000),
                      absorbed_below=0.64)
    assert Collapse("f_inf", dim=3, free=True).compute(rows).status == "value"
    real = fss.autoscale

    def no_error(*args, **kwargs):
        res = real(*args, **kwargs)
        res["drho"] = np.nan
        return res
    monkeypatch.setattr(fss, "autoscale", no_error)
    c = Collapse("f_inf", dim=3, free=True).compute(rows)
    assert c.at_boundary == "" and np.isnan(c.phi_c_err)
    assert c.status == "undetermined" and c.phi_c_bound == "undetermined"
    assert "has no error: S is not curved upwards" in c.status_reason and "S flat" not in c.phi_c_label()


def test_a_collapse_above_the_quality_ceiling_is_undetermined():
    """A phi_c inside the range that does not collapse the data (S above max_quality) is no measurement:
    the planted collapse is a value; scrambling one size's curve, or a ceiling below its S, makes it
    undetermined, and the reason says so. A bound stays a bound whatever its S (its minimum may lie
    beyond the end)."""
    phis = np.round(np.arange(0.60, 0.7001, 0.005), 3)
    rows = manna_rows(phis, 0.6431, sizes=(1000, 2000, 4000), absorbed_below=0.64)
    good = Collapse("f_inf", dim=3).compute(rows)
    assert good.status == "value" and good.status_reason == "" and good.quality < 1
    strict = Collapse("f_inf", dim=3, max_quality=good.quality / 2).compute(rows)
    assert strict.phi_c == good.phi_c and strict.status == "undetermined"
    assert strict.status_reason.startswith(f"S = {good.quality:.3g} is above")
    assert "do not collapse" in strict.phi_c_label() and strict.phi_c_bound == "undetermined"
    bad = [{**r, "f_inf": 1.1 * r["f_inf"]} if r["n"] == 2000 else r for r in rows]
    c = Collapse("f_inf", dim=3).compute(bad)
    assert c.quality > 10 and c.at_boundary == "" and c.status == "undetermined"
    edge = Collapse("f_inf", dim=3, extend_to_absorbed=False).compute(
        manna_rows(np.round(np.arange(0.56, 0.705, 0.01), 3), 0.60, absorbed_below=0.605))
    assert edge.status == "bound" and edge.quality > 10
    with pytest.raises(AnalysisError, match="max_quality must be > 0"):
        Collapse("f_inf", dim=3, max_quality=0)


def test_a_bound_never_enters_the_extrapolation(tmp_path):
    """Two step sizes with planted Manna data (values) and one unrelaxed (a bound): phi_c of the bound
    is NaN, the extrapolation uses the two values only, and the Fig. 5b CSV says "bound"."""
    import csv
    from analysis.figures import fig5b
    rows = unrelaxed_rows(0.05)
    for step, pc in ((0.1, 0.62), (0.2, 0.64)):   # errors of a few seeds (with 1 %, S = 17 - 23 here)
        for r in manna_rows(np.round(np.arange(0.58, 0.705, 0.01), 3), pc, absorbed_below=pc - 0.005,
                            rel_err=0.05):
            rows.append({**r, "scheme": "sgd", "dim": 3, "kick_size": None, "learning_rate": step,
                         "batch_fraction": 0.5, "potential": "linear", "tau_r": 100.0, "tau_r_err": 1.0})
    cp = CriticalPoints().compute(rows)
    got = {p["step_size"]: p for p in cp.points}
    assert got[0.05]["status"] == "bound" and np.isnan(got[0.05]["phi_c"])
    assert got[0.05]["phi_c_bound"].startswith("<=")
    assert got[0.05]["status_reason"].startswith("S is lowest at the lower end")
    assert got[0.1]["status"] == got[0.2]["status"] == "value" and got[0.1]["status_reason"] == ""
    lin = next(e for e in cp.extrapolations if e["form"] == "linear")
    assert lin["n_points"] == 2 and lin["n_bounds_left_out"] == 1
    expected = extrapolate([0.1, 0.2], [got[0.1]["phi_c"], got[0.2]["phi_c"]],
                           [got[0.1]["phi_c_err"], got[0.2]["phi_c_err"]])
    assert lin["phi_c0"] == pytest.approx(expected.phi_c0, rel=1e-12)
    assert any("only a bound" in v for v in cp.verdicts())
    paths = fig5b(cp, tmp_path)
    with open(tmp_path / "fig5b.csv") as fh:
        table = {float(r["step_size"]): r for r in csv.DictReader(fh)}
    assert table[0.05]["status"] == "bound" and table[0.05]["phi_c"] in ("", "nan")
    assert table[0.05]["phi_c_bound"].startswith("<=")
    assert (tmp_path / "fig5b_extrapolations.csv") in paths


def test_absorption_bracket_without_scaling():
    rows = []
    absorbed = {1000: [8, 8, 6, 2, 0, 0], 8000: [8, 8, 8, 4, 0, 0]}     # of 8 seeds
    for n, counts in absorbed.items():
        for phi, k in zip((0.58, 0.59, 0.60, 0.61, 0.62, 0.63), counts):
            rows.append({"n": n, "phi": phi, "n_seeds": 8, "n_absorbed": k})
    br = absorption_bracket(rows)
    assert br["phi_all_absorbed"] == 0.59 and br["phi_none_absorbed"] == 0.62
    assert br["phi_half"][1000] == pytest.approx(0.60 + 0.01 * (0.75 - 0.5) / (0.75 - 0.25))
    assert br["phi_half"][8000] == pytest.approx(0.61)
    rows.append({"n": 1000, "phi": 0.64, "n_seeds": 8, "n_absorbed": 1})   # a late absorption above
    assert absorption_bracket(rows)["phi_none_absorbed"] == 0.62


def _absorbed_rows(absorbed, phis, seeds=8):
    return [{"n": n, "phi": phi, "n_seeds": seeds, "n_absorbed": k}
            for n, counts in absorbed.items() for phi, k in zip(phis, counts)]


def test_refine_phi_grid_where_the_runs_change_from_absorbing_to_active():
    phis = (0.58, 0.59, 0.60, 0.61, 0.62, 0.63)
    rows = _absorbed_rows({1000: [8, 8, 6, 2, 0, 0], 8000: [8, 8, 8, 4, 0, 0]}, phis)
    # bracket [0.59, 0.62]: its three intervals; both crossings of 1/2 lie inside it
    assert refine_phi_grid(rows) == [0.595, 0.605, 0.615]
    assert refine_phi_grid(rows, min_step=0.006) == []                      # intervals 0.01 < 2 x 0.006
    # a late absorption far above the bracket (N = 1000, 0.66: 5 of 8) adds its crossing interval only
    late = rows + [{"n": 1000, "phi": 0.66, "n_seeds": 8, "n_absorbed": 5},
                   {"n": 1000, "phi": 0.67, "n_seeds": 8, "n_absorbed": 0}]
    assert refine_phi_grid(late) == [0.595, 0.605, 0.615]                    # first crossing per N only
    refined = _absorbed_rows({1000: [8, 8, 8, 6, 2, 0], 8000: [8, 8, 8, 8, 4, 0]},
                             (0.59, 0.595, 0.60, 0.605, 0.61, 0.615))
    assert refine_phi_grid(refined) == [0.6025, 0.6075, 0.6125]             # the next round narrows in


def test_refine_phi_grid_extends_an_open_bracket_and_refuses_one_phi():
    phis = (0.58, 0.59, 0.60)
    assert refine_phi_grid(_absorbed_rows({1000: [8, 8, 8]}, phis)) == [0.61]   # all absorbed: go up
    assert refine_phi_grid(_absorbed_rows({1000: [0, 0, 0]}, phis)) == [0.57]   # none absorbed: go down
    assert refine_phi_grid(_absorbed_rows({1000: [8, 3, 3]}, phis)) == [0.585, 0.595, 0.61]
    with pytest.raises(ValueError, match=">= 2 packing fractions"):
        refine_phi_grid(_absorbed_rows({1000: [8]}, (0.58,)))
    with pytest.raises(ValueError, match="min_step"):
        refine_phi_grid(_absorbed_rows({1000: [8, 0]}, (0.58, 0.59)), min_step=0)


def test_collapse_value_checked_against_the_bracket():
    phis = np.round(np.arange(0.60, 0.7001, 0.005), 3)
    rows = [{**r, "scheme": "sgd", "dim": 3, "kick_size": None, "learning_rate": 0.1, "batch_fraction": 0.5,
             "potential": "linear", "tau_r": 100.0, "tau_r_err": 1.0, "n_seeds": 4,
             "n_absorbed": 4 if r["f_inf"] == 0 else 0}
            for r in manna_rows(phis, 0.6431, sizes=(1000, 2000, 4000), absorbed_below=0.645)]
    (p,) = CriticalPoints().compute(rows).points
    assert (p["phi_all_absorbed"], p["phi_none_absorbed"]) == (0.64, 0.645) and p["in_bracket"] is True
    # the same f_inf, but runs that all absorbed up to 0.65: the collapse wants phi_c below the
    # bracket, so within it S is lowest at its lower end, and phi_c is a bound, never the value 0.6431
    moved = [{**r, "n_absorbed": 4 if r["phi"] <= 0.65 else 0} for r in rows]
    (p,) = CriticalPoints().compute(moved).points
    assert p["status"] == "bound" and p["phi_all_absorbed"] == 0.65 and np.isnan(p["phi_c"])
    assert p["phi_c_range_lo"] == 0.65 and p["phi_c_bound"].startswith("<=")
    assert p["phi_c_optimum"] == pytest.approx(0.65, abs=1e-3)


def tau_rows(phi_c, bracket, sizes=(1000, 2000, 4000), seed=0):
    """tau_r rows with the 3d Manna scaling tau_r = L^{nu_par/nu_perp} g(L^{1/nu_perp} (phi - phi_c)), g a
    peak at x = 0 (1% noise), on a grid of 0.0025 over [0.55, 0.59]; 3 seeds per point, all of them
    absorbed at phi <= bracket[0], none at phi >= bracket[1], one in between (f_inf to match)."""
    m = MANNA[3]
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        L = n ** (1 / 3)
        for phi in np.round(np.arange(0.55, 0.59001, 0.0025), 4):
            x = L ** (1 / m.nu_perp) * (phi - phi_c)
            t = L ** (m.nu_par / m.nu_perp) * (0.2 + np.exp(-0.5 * x ** 2))
            t *= 1 + 0.01 * rng.standard_normal()
            k = 3 if phi <= bracket[0] else 0 if phi >= bracket[1] else 1
            f = 0.0 if k == 3 else 0.1 + 3.0 * max(phi - bracket[0], 0.0)
            rows.append({"scheme": "bro-pairwise", "dim": 3, "n": n, "phi": float(phi), "kick_size": 0.1,
                         "learning_rate": None, "batch_fraction": None, "potential": "linear",
                         "f_inf": f, "f_inf_err": 0.02 * f, "tau_r": t, "tau_r_err": 0.01 * t,
                         "n_seeds": 3, "n_absorbed": k})
    return rows


def test_tau_r_collapse_inside_the_bracket_is_a_value():
    c = Collapse("tau_r", dim=3).compute(tau_rows(0.5712, (0.56, 0.58)))
    assert c.phi_c_range == (0.56, 0.58)
    assert c.status == "value" and c.phi_c_bound == ""
    assert c.phi_c == pytest.approx(0.5712, abs=max(3 * c.phi_c_err, 5e-4))


@pytest.mark.parametrize("free", [False, True])
def test_tau_r_collapse_beyond_the_bracket_is_a_bound_never_a_value(free):
    """The study's case (pairwise BRO, eps = 0.1: the Manna-fixed tau_r collapse at 0.5696 +- 0.0006 while
    no run absorbed from 0.5625 on): tau_r planted with its peak at 0.5825, above the bracket [0.55, 0.5675]."""
    rows = tau_rows(0.5825, (0.55, 0.5675))
    unlimited = Collapse("tau_r", dim=3, free=free, within_bracket=False).compute(rows)
    assert unlimited.status == "value" and unlimited.phi_c == pytest.approx(0.5825, abs=2e-3)
    c = Collapse("tau_r", dim=3, free=free).compute(rows)
    assert c.phi_c_range == (0.55, 0.5675)
    assert c.status == "bound" and c.at_boundary == "upper"
    assert c.phi_c_bound.startswith(">=") and c.phi_c_limit <= 0.5675
    assert c.phi_c_label().startswith(">=")
    if not free:
        (p,) = CriticalPoints("tau_r").compute(rows).points
        assert p["status"] == "bound" and np.isnan(p["phi_c"]) and p["phi_c_bound"] == c.phi_c_bound
        (p,) = CriticalPoints("tau_r", within_bracket=False).compute(rows).points     # phic --no-bracket
        assert p["status"] == "value" and p["in_bracket"] is False


def test_bracket_outside_the_data_is_an_error():
    rows = [{**r, "n_absorbed": 3} for r in tau_rows(0.5712, (0.56, 0.58))]   # every run absorbed
    with pytest.raises(CollapseError, match="absorption bracket"):
        Collapse("tau_r", dim=3).compute(rows)


def test_one_size_powerlaw_kept_inside_the_bracket():
    """One size: phi_c from f_inf = A (phi - phi_c)^beta is a value inside the absorption bracket, and a
    bound (never a value) when the runs absorbed above the fitted phi_c."""
    def rows(phi_c, absorbed_up_to):
        out = []
        for phi in np.round(np.arange(0.60, 0.7001, 0.005), 3):
            f = 0.0 if phi <= absorbed_up_to else 1.5 * (phi - phi_c) ** MANNA[3].beta
            out.append({"n": 1000, "phi": float(phi), "f_inf": f, "f_inf_err": 0.01 * f if f else 0.0,
                        "scheme": "sgd", "dim": 3, "kick_size": None, "learning_rate": 0.1, "batch_fraction": 0.5,
                        "potential": "linear", "tau_r": 100.0, "tau_r_err": 1.0, "n_seeds": 4,
                        "n_absorbed": 4 if f == 0 else 0})
        return out
    (p,) = CriticalPoints().compute(rows(0.6275, 0.625)).points
    assert p["method"] == "powerlaw" and p["status"] == "value" and p["in_bracket"] is True
    assert p["phi_c"] == pytest.approx(0.6275, abs=3 * p["phi_c_err"] + 1e-9)
    (p,) = CriticalPoints().compute(rows(0.6275, 0.64)).points      # every seed absorbed up to 0.64
    assert p["status"] == "bound" and np.isnan(p["phi_c"]) and p["at_boundary"] == "lower"
    assert p["phi_c_bound"].startswith("<=") and p["phi_c_limit"] >= 0.64
    assert "lies beyond the lower end of the absorption bracket" in p["status_reason"]
    (p,) = CriticalPoints(within_bracket=False).compute(rows(0.6275, 0.64)).points
    assert p["status"] == "value" and p["phi_c"] < 0.64


def test_critical_points_extrapolate_the_absorption_brackets():
    """Three step sizes whose runs absorb up to 0.64 - 0.8 eps (grid 0.0025): the extrapolation rows carry
    the brackets' phi_c(0) ranges (extrapolate_brackets on absorption_bracket's edges), whatever the
    collapses give, and the verdict states them."""
    rows = []
    for step in (0.025, 0.05, 0.1):
        edge = 0.64 - 0.8 * step
        for n in (1000, 2000):
            for phi in np.round(np.arange(edge - 0.01, edge + 0.012, 0.0025), 5):
                dead = phi <= edge + 1e-9
                f = 0.0 if dead else 0.2 + 3.0 * (phi - edge)
                rows.append({"scheme": "bro-pairwise", "dim": 3, "n": n, "phi": float(phi), "kick_size": step,
                             "learning_rate": None, "batch_fraction": None, "potential": "linear",
                             "f_inf": f, "f_inf_err": 0.01, "tau_r": 100.0, "tau_r_err": 1.0,
                             "n_seeds": 3, "n_absorbed": 3 if dead else 0})
    cp = CriticalPoints().compute(rows)
    pts = sorted(cp.points, key=lambda p: p["step_size"])
    want = {f: extrapolate_brackets([p["step_size"] for p in pts], [p["phi_all_absorbed"] for p in pts],
                                    [p["phi_none_absorbed"] for p in pts], f) for f in ("linear", "sqrt", "power")}
    assert want["linear"].contains(0.64) and not want["sqrt"].consistent
    for e in cp.extrapolations:
        b = want[e["form"]]
        assert e["bracket_n"] == 3 and e["bracket_consistent"] == b.consistent
        assert e["bracket_phi_c0_lo"] == pytest.approx(b.phi_c0_lo, nan_ok=True)
        assert e["bracket_phi_c0_hi"] == pytest.approx(b.phi_c0_hi, nan_ok=True)
        assert e["bracket_target_inside"] == b.contains(0.64)
    (verdict,) = cp.verdicts()
    assert "from the absorption brackets of 3 step sizes" in verdict
    assert "sqrt: no curve through every bracket" in verdict and "linear: phi_c(0) in [" in verdict


def test_target_per_dimension():
    """phi_c(0) is compared with the jammed packing fraction of the family's dimension (0.64 in 3d,
    0.46 in 4d: Skoge et al. 2006) unless a target is given."""
    from analysis.critical import PHI_JAMMED
    assert CriticalPoints().target_of(3) == 0.64 and CriticalPoints().target_of(4) == PHI_JAMMED[4] == 0.46
    assert CriticalPoints(target=0.5).target_of(4) == 0.5
    rows = [{"scheme": "bro-pairwise", "dim": 4, "n": n, "phi": phi, "kick_size": step, "learning_rate": None,
             "batch_fraction": None, "potential": "linear", "f_inf": f, "f_inf_err": 0.01, "tau_r": 100.0,
             "tau_r_err": 1.0, "n_seeds": 2, "n_absorbed": 2 if f == 0 else 0}
            for step, edge in ((0.1, 0.37), (0.05, 0.405), (0.025, 0.425)) for n in (1000, 2000)
            for phi, f in ((edge - 0.005, 0.0), (edge, 0.0), (edge + 0.005, 0.3), (edge + 0.01, 0.5))]
    cp = CriticalPoints().compute(rows)
    assert {e["target"] for e in cp.extrapolations} == {0.46}
    assert "0.46 inside" in cp.verdicts()[0] or "0.46 outside" in cp.verdicts()[0]


def test_scaled_overlap_counts_the_points_on_another_sizes_curve():
    """A point counts where another size's scaled points bracket it (the points that enter S)."""
    from analysis.fss import scaled_overlap
    x = np.array([[0.0, 1.0, 2.0], [1.5, 2.5, 3.5]])
    y = np.ones_like(x)
    assert scaled_overlap(x, y, 0.1 * y).tolist() == [[1, 3], [1, 3]]
    assert scaled_overlap(x + [[0.0], [9.0]], y, 0.1 * y).tolist() == [[0, 3], [0, 3]]


def test_a_size_off_every_other_curve_leaves_phi_c_undetermined():
    """Exact Manna data for N = 1000 and 2000 collapse at the planted phi_c; a third size measured
    only far above it lies on no other size's scaled curve, so S, which averages over the points on
    one, does not see it: the optimum is undetermined, not a value, and the reason names the sizes.
    (Individual BRO at eps = 0.025, sixteenth session: a free f_inf fit at nu = 0.15 pulled the
    sizes apart to S = 0.03 with N = 4000 on no curve.)"""
    m = MANNA[3]

    def rows(n, phis):
        L = n ** (1 / 3)
        out = []
        for phi in phis:
            f = L ** (-m.beta / m.nu_perp) * np.log1p(np.exp(2 * L ** (1 / m.nu_perp) * (phi - 0.64)))
            out.append({"n": n, "phi": phi, "f_inf": f, "f_inf_err": 0.02 * f})
        return out
    near = np.round(np.linspace(0.62, 0.66, 9), 4)
    two = rows(1000, near) + rows(2000, near)
    c = Collapse("f_inf").compute(two)
    assert c.status == "value" and c.phi_c == pytest.approx(0.64, abs=2e-3)
    assert (c.overlap[:, 0] > 0).all()
    c = Collapse("f_inf").compute(two + rows(8000, [0.74, 0.76]))
    assert c.overlap[2, 0] == 0
    assert c.status == "undetermined" and "no point on another size's scaled curve" in c.status_reason
