"""phi_c from the absorption probability (analysis.survival): planted answers, separated data, censoring."""
import csv
import math

import numpy as np
import pytest

from analysis.cli import main
from analysis.errors import AnalysisError
from analysis.fss import MANNA
from analysis.survival import AbsorptionProbability, RunOutcome, fit_crossing, fit_half, outcome_at
from analysis.synthetic import write_manifest, write_run

FAMILY = (("scheme", "bro-pairwise"), ("batch_fraction", None), ("potential", "linear"), ("dim", 3),
          ("step_size", 0.1))


def outcome(n, phi, seed, absorbed_step, last_step):
    return RunOutcome(FAMILY, n, phi, seed, absorbed_step, last_step)


def planted(phi_c=0.5612, a=0.003, w0=0.004, sizes=(1000, 2000, 4000, 8000), seeds=40, seed=7):
    """Runs whose absorbed fraction is sigmoid(-(phi - phi_half(N)) / w(N)), phi_half(N) = phi_c + a x,
    w(N) = w0 x, x = (N / 1000)^(-1/(d nu_perp)): the scaling form, crossing at phi_c with
    P_abs = sigmoid(a / w0). An absorbed run absorbs at step 100, an active one runs to 1e6."""
    nu = MANNA[3].nu_perp
    rng = np.random.default_rng(seed)
    runs = []
    for n in sizes:
        x = (n / sizes[0]) ** (-1.0 / (3 * nu))
        for phi in np.round(np.arange(0.545, 0.5801, 0.0025), 4):
            p = 1.0 / (1.0 + math.exp((phi - phi_c - a * x) / (w0 * x)))
            for s in range(seeds):
                runs.append(outcome(n, float(phi), s, 100, 100) if rng.random() < p
                            else outcome(n, float(phi), s, None, 10 ** 6))
    return runs


def by(rows, estimate, n=""):
    (r,) = [r for r in rows if r["estimate"] == estimate and r["n"] == n]
    return r


def test_outcome_at_and_censoring_rules():
    assert outcome_at(500, 500, 1000) == 1                 # absorbed by T
    assert outcome_at(1500, 1500, 1000) == 0               # absorbed later: active at T
    assert outcome_at(None, 2000, 1000) == 0               # ran past T, active
    assert outcome_at(None, 800, 1000) is None             # stopped (steady) before T: censored
    assert outcome_at(None, 800, 1000, "active") == 0
    assert outcome_at(None, 800, 1000, "absorbed") == 1
    assert outcome_at(None, 800, None) == 0 and outcome_at(700, 700, None) == 1
    with pytest.raises(AnalysisError, match="censored must be one of exclude, active, absorbed"):
        outcome_at(None, 800, 1000, "drop")


def test_planted_crossing_and_extrapolation_recovered():
    """A planted phi_c with a logistic width shrinking like L^(-1/nu_perp): every estimate is a value and
    finds it within 3 errors; the fitted widths shrink with N as planted."""
    ap = AbsorptionProbability(t0=1000, n_bootstrap=20, seed=1).compute(planted())
    rows = ap.rows
    cross = by(rows, "crossing")
    assert cross["status"] == "value"
    assert abs(cross["phi"] - 0.5612) < 3 * cross["phi_err"] and cross["phi_err"] < 0.001
    assert cross["p_cross"] == pytest.approx(1 / (1 + math.exp(-0.75)), abs=0.1)
    assert cross["lr_p"] > 0.01                            # the data do scale with the Manna nu_perp
    ext = by(rows, "extrapolated")
    assert ext["status"] == "value" and abs(ext["phi"] - 0.5612) < 3 * ext["phi_err"]
    nu = MANNA[3].nu_perp
    widths = []
    for n in (1000, 2000, 4000, 8000):
        r = by(rows, "phi_half", n)
        x = (n / 1000) ** (-1 / (3 * nu))
        assert r["status"] == "value" and abs(r["phi"] - (0.5612 + 0.003 * x)) < 3 * r["phi_err"]
        assert abs(r["width"] - 0.004 * x) < 3 * r["width_err"]
        widths.append(r["width"])
        assert r["T"] == pytest.approx(1000 * (n / 1000) ** (MANNA[3].z / 3))
    assert widths == sorted(widths, reverse=True)


def test_wrong_nu_perp_is_rejected_by_the_likelihood_ratio():
    """The same planted runs fitted with nu_perp = 2 (widths that barely shrink): the crossing form fits
    much worse than free per-N curves."""
    ap = AbsorptionProbability(t0=1000, nu_perp=2.0, n_bootstrap=0).compute(planted())
    assert by(ap.rows, "crossing")["lr_p"] < 1e-3


def test_separated_data_give_brackets_never_values():
    """3 seeds on a coarse grid, every run below 0.56 absorbed and none above: the MLE does not exist;
    each N gives its bracket, the crossing a bracket of intercepts, no value anywhere."""
    runs = []
    for n, edge in ((1000, 0.5625), (2000, 0.56), (4000, 0.56)):
        for phi in (0.55, 0.555, 0.56, 0.5625, 0.565, 0.57):
            runs += [outcome(n, phi, s, 100, 100) if phi < edge else outcome(n, phi, s, None, 10 ** 6)
                     for s in range(3)]
    rows = AbsorptionProbability(t0=None, n_bootstrap=20).compute(runs).rows
    assert by(rows, "phi_half", 1000)["status"] == "bracket"
    assert (by(rows, "phi_half", 1000)["phi_lo"], by(rows, "phi_half", 1000)["phi_hi"]) == (0.56, 0.5625)
    assert (by(rows, "phi_half", 2000)["phi_lo"], by(rows, "phi_half", 2000)["phi_hi"]) == (0.555, 0.56)
    # the crossing's bracket: intercepts at x = 0 of the lines in x = (N/1000)^(-1/(3 nu_perp)) through every
    # size's bracket; the lowest joins (x(4000), 0.555) and (1, 0.5625), the highest is flat at 0.56
    x4 = 4 ** (-1 / (3 * MANNA[3].nu_perp))
    cross = by(rows, "crossing")
    assert cross["status"] == "bracket"
    assert cross["phi_lo"] == pytest.approx(0.555 - 0.0075 / (1 - x4) * x4, abs=1e-6)
    assert cross["phi_hi"] == pytest.approx(0.56, abs=1e-6)
    assert by(rows, "extrapolated")["status"] == "undetermined"
    assert all(math.isnan(r["phi"]) and math.isnan(r["phi_err"]) for r in rows)
    assert all(r["bootstrap_not_value"] == 1.0 for r in rows)


def test_quasi_separation_bracket_spans_the_neighbouring_points():
    """Both outcomes only at 0.56 (absorbed below, active above): the limit puts the 50% point on 0.56,
    but the data only say it lies between 0.555 and 0.565."""
    phi = np.repeat([0.55, 0.555, 0.56, 0.565, 0.57], 3)
    y = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    r = fit_half(phi, y)
    assert (r["status"], r["phi_lo"], r["phi_hi"]) == ("bracket", 0.555, 0.565)
    u = np.r_[np.ones(15), np.full(15, 1.5)]
    c = fit_crossing(u, np.r_[phi, phi], np.r_[y, y])
    assert c["status"] == "bracket" and c["phi_lo"] < 0.555 and c["phi_hi"] > 0.565 and math.isnan(c["phi"])


def test_one_outcome_only_is_a_bound():
    phi = np.array([0.55, 0.56, 0.57])
    assert fit_half(phi, np.ones(3))["phi_bound"] == ">= 0.5700"
    assert fit_half(phi, np.zeros(3))["phi_bound"] == "<= 0.5500"
    assert fit_half(phi, np.ones(3))["status"] == "bound"


def test_a_crossing_in_the_tails_is_fragile():
    """Planted curves that cross where 99% of the runs absorb (a / w0 = 4.6): the MLE is fine, but the
    meeting point is set by the logistic tails."""
    runs = planted(a=0.0184, w0=0.004, seeds=20)
    cross = by(AbsorptionProbability(t0=1000, n_bootstrap=0).compute(runs).rows, "crossing")
    assert cross["p_cross"] > 0.9
    assert cross["status"] == "fragile" and math.isnan(cross["phi"]) and "tail" in cross["note"]


def test_a_value_most_resamplings_cannot_reproduce_is_fragile():
    """Separated but for one absorbed run at 0.565 above one active run at 0.56 (10 seeds each): the MLE
    exists, but most resamplings of the seeds drop one of the two and are separated."""
    runs = []
    for phi, absorbed in ((0.55, 10), (0.555, 10), (0.56, 9), (0.565, 1), (0.57, 0), (0.575, 0)):
        runs += [outcome(1000, phi, s, 100, 100) if s < absorbed else outcome(1000, phi, s, None, 10 ** 6)
                 for s in range(10)]
    plain = by(AbsorptionProbability(t0=None, n_bootstrap=0).compute(runs).rows, "phi_half", 1000)
    assert plain["status"] == "value" and 0.56 < plain["phi"] < 0.565
    r = by(AbsorptionProbability(t0=None, n_bootstrap=300).compute(runs).rows, "phi_half", 1000)
    assert r["bootstrap_not_value"] > 0.5
    assert r["status"] == "fragile" and math.isnan(r["phi"]) and r["phi_mle"] == pytest.approx(plain["phi"])


def test_censored_runs_counted_and_treated_as_asked():
    """At T(1000) = 1000, T(8000) = 1000 * 8^(z/3): runs that stopped before T without absorbing are
    censored: left out, or counted active / absorbed; a run absorbed after T(N) is active at T(N)."""
    t8000 = 1000 * 8 ** (MANNA[3].z / 3)                  # 3559 steps
    runs = [outcome(1000, 0.55, 1, 900, 900), outcome(1000, 0.55, 2, None, 500),   # absorbed; censored
            outcome(1000, 0.56, 1, None, 5000), outcome(1000, 0.56, 2, 1200, 1200),  # active; absorbed late
            outcome(8000, 0.55, 1, 3000, 3000), outcome(8000, 0.55, 2, None, 3000),  # absorbed; censored
            outcome(8000, 0.56, 1, None, 4000), outcome(8000, 0.56, 2, None, 2000)]  # active; censored
    for how, absorbed, active in (("exclude", (1, 1), (2, 1)), ("active", (1, 1), (3, 3)),
                                  ("absorbed", (2, 3), (2, 1))):
        rows = AbsorptionProbability(t0=1000, censored=how, n_bootstrap=0).compute(runs).rows
        r1, r8 = by(rows, "phi_half", 1000), by(rows, "phi_half", 8000)
        assert r8["T"] == pytest.approx(t8000)
        assert (r1["n_censored"], r8["n_censored"]) == (1, 2)
        assert (r1["n_absorbed"], r8["n_absorbed"]) == absorbed
        assert (r1["n_active"], r8["n_active"]) == active
        assert r1["n_runs"] == 4 and r1["censored"] == how


def test_parameters_are_checked():
    with pytest.raises(AnalysisError, match="t0 must be"):
        AbsorptionProbability(t0=-5)
    with pytest.raises(AnalysisError, match="censored must be one of exclude, active, absorbed"):
        AbsorptionProbability(censored="skip")
    with pytest.raises(AnalysisError, match="z must be > 0"):
        AbsorptionProbability(z=0)


def test_cli_survival_on_run_files(tmp_path, capsys):
    """Run files through the command: separated data give a bracket in the CSV, with notes; bad options
    are one-line errors with status 2."""
    paths = []
    for n in (125, 1000):
        for phi in (0.55, 0.56, 0.57):
            for seed in (1, 2):
                act = np.r_[np.linspace(0.3, 0.01, 20), 0.0] if phi < 0.565 else np.full(101, 0.3)
                paths.append(write_run(tmp_path / f"n{n}_{phi}_{seed}.h5", scheme="bro-pairwise", n=n, phi=phi,
                                       seed=seed, kick_size=0.1, learning_rate=None, batch_fraction=None,
                                       log_every=10, activity=act))
    write_manifest(tmp_path / "manifest.tsv", paths)
    out = tmp_path / "s.csv"
    assert main(["survival", str(tmp_path / "manifest.tsv"), "--t0", "end,100", "--bootstrap", "5",
                 "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "a bracket, not a value" in err
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["time"] for r in rows} == {"end", "scaled"}
    cross_end = [r for r in rows if r["estimate"] == "crossing" and r["time"] == "end"][0]
    assert cross_end["status"] == "bracket" and float(cross_end["phi_lo"]) < 0.56 < 0.57 < float(cross_end["phi_hi"])
    assert math.isnan(float(cross_end["phi"]))
    for argv, match in ((["--t0", "soon"], "--t0: 'soon' is not one of end, auto"),
                        (["--z", "-1"], "--z must be > 0"), (["--bootstrap", "-2"], "--bootstrap must be >= 0")):
        assert main(["survival", str(tmp_path / "manifest.tsv")] + argv) == 2
        e = capsys.readouterr().err.strip()
        assert "\n" not in e and e.startswith("mpisim-analysis: error:") and match in e


def test_cli_survival_reads_continuations(tmp_path, capsys):
    """--continued DIR: a run stopped active is read from its finished continuation, which absorbed."""
    paths = []
    for n in (125, 1000):
        for phi in (0.55, 0.57):
            d = tmp_path / "sweep" / f"n{n}_phi{phi}"
            d.mkdir(parents=True)
            paths.append(write_run(d / "run.h5", scheme="bro-pairwise", n=n, phi=phi, seed=1, kick_size=0.1,
                                   learning_rate=None, batch_fraction=None, log_every=10, activity=np.full(21, 0.3)))
    (tmp_path / "cont" / "n1000_phi0.55").mkdir(parents=True)
    write_run(tmp_path / "cont" / "n1000_phi0.55" / "run.h5", scheme="bro-pairwise", n=1000, phi=0.55, seed=1,
              kick_size=0.1, learning_rate=None, batch_fraction=None, log_every=10,
              activity=np.r_[np.full(40, 0.3), 0.0])

    def absorbed_at_n1000(*extra):
        out = tmp_path / "s.csv"
        assert main(["survival", *map(str, paths), "--t0", "end", "--bootstrap", "0", "-o", str(out), *extra]) == 0
        with open(out, newline="") as fh:
            (row,) = [r for r in csv.DictReader(fh) if r["estimate"] == "phi_half" and r["n"] == "1000"]
        return int(row["n_absorbed"])

    assert absorbed_at_n1000() == 0
    assert absorbed_at_n1000("--continued", str(tmp_path / "cont")) == 1
    assert "1 of 4 runs read from their continuations" in capsys.readouterr().err
