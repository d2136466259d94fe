"""Figures on a small study must not look broken (issue 15, item 5): the axes and notes themselves."""
from pathlib import Path

import numpy as np
import pytest

import analysis.figures as figures
from analysis.fss import MANNA


@pytest.fixture
def captured(monkeypatch):
    """Replace the writer: keep each figure object to look at its axes."""
    figs = {}

    def save(fig, out, stem, rows, columns=None):
        figs[stem] = fig
        return [Path(out) / f"{stem}.png"]

    monkeypatch.setattr(figures, "_save", save)
    return figs


def texts(ax):
    return " ".join(t.get_text() for t in ax.texts)


def fig3_rows():
    """Two sizes; at phi = 0.58 every seed absorbed, at 0.60 one of two seeds absorbed (mean = sem)."""
    m = MANNA[3]
    rows = []
    for n in (1000, 8000):
        L = n ** (1 / 3)
        for phi in np.round(np.arange(0.58, 0.705, 0.01), 3):
            f = L ** (-m.beta / m.nu_perp) * np.log1p(np.exp(2 * L ** (1 / m.nu_perp) * (phi - 0.61)))
            fe = 0.02 * f
            if phi == 0.58:
                f, fe = 0.0, 0.0
            elif phi == 0.60:
                fe = f                        # the sem of (0, 2f): its bar reaches 0 exactly
            rows.append({"scheme": "sgd", "dim": 3, "n": n, "phi": float(phi), "kick_size": None,
                         "learning_rate": 0.1, "batch_fraction": 0.5, "potential": "linear",
                         "f_inf": f, "f_inf_err": fe, "tau_r": 100.0 + 10 * phi, "tau_r_err": 1.0,
                         "excluded": ""})
    return rows


def test_fig3_log_axis_and_absorbed_points(captured, tmp_path):
    figures.fig3(fig3_rows(), tmp_path)
    (fig,) = captured.values()
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert lo >= 0.999e-4 * hi                 # at most 4 decades: never down to ~1e-18
    assert "2 point(s) where every seed absorbed" in texts(ax)
    floor_markers = [ln for ln in ax.lines if np.allclose(ln.get_ydata(), lo) and len(ln.get_ydata())]
    assert sum(len(ln.get_ydata()) for ln in floor_markers) == 2
    assert "not shown" in texts(fig.axes[1])


def test_figS1_empty_panels_say_why(captured, tmp_path):
    k = np.arange(0, 2001, 100)
    groups = [{"scheme": "sgd", "n": 100, "phi": 0.6, "batch_fraction": 0.5, "effective_kick": 0.05,
               "c": 1.0, "c_err": 0.01, "steps": k, "msd": 1e-3 * k, "msd_err": 1e-5 * k}]
    figures.figS1(groups, tmp_path, k_at=1000)
    fig = captured["figS1"]
    assert texts(fig.axes[0]) == ""
    assert "no runs of" in texts(fig.axes[1]) and "no runs of" in texts(fig.axes[2])


def test_figS2_legend_has_no_nan(captured, tmp_path):
    k = np.linspace(0.5, 4, 8)
    groups = [{"scheme": "sgd", "phi": 0.6, "n": 125, "batch_fraction": 0.5, "k": k, "S": np.ones(8),
               "counts": np.full(8, 6), "alpha": np.nan, "alpha_err": np.nan},
              {"scheme": "rcd", "phi": 0.6, "n": 125, "batch_fraction": 0.5, "k": k, "S": k ** 0.5,
               "counts": np.full(8, 6), "alpha": 0.5, "alpha_err": 0.01}]
    figures.figS2(groups, tmp_path)
    ax = captured["figS2"].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert not any("nan" in lab for lab in labels) and any("0.50" in lab for lab in labels)
    assert "not fitted for 1 of 2" in ax.get_title()


def test_fig4b_never_joins_points_at_the_same_b_f(captured, tmp_path):
    rows = [{"scheme": "sgd", "phi": 0.7, "n": n, "learning_rate": 0.05, "kick_size": None,
             "potential": "linear", "batch_fraction": bf, "sigma_t": 0.03, "m": 10,
             "delta_v_tilde_per_particle": 1e-3 * bf + 1e-4 * i, "delta_v_tilde_per_particle_err": 1e-5}
            for i, n in enumerate((1000, 8000)) for bf in (0.25, 0.5, 1.0)]
    figures.fig4b(rows, tmp_path)
    ax = captured["fig4b"].axes[0]
    joined = [ln for ln in ax.lines if len(ln.get_xdata()) > 1 and ln.get_linestyle() not in ("None", "none", "")]
    assert len(joined) == 2
    for ln in joined:
        x = np.asarray(ln.get_xdata(), dtype=float)
        assert np.unique(x).size == x.size      # one point per b_f on a line
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("N = 1000" in lab for lab in labels) and any("N = 8000" in lab for lab in labels)


def test_fig3_title_reads_phi_c_leq_for_a_bound(captured, tmp_path):
    """Runs too short (f_inf the same for every N, every run absorbed up to 0.60): the Manna-fixed collapse
    gives a bound, and the panel says "phi_c <= x", never "phi_c = <= x"; a planted collapse says "= x"."""
    rows = []
    for n in (1000, 2000, 4000):
        for phi in np.round(np.arange(0.56, 0.705, 0.01), 3):
            f = 0.3 + 3.0 * (phi - 0.60) if phi > 0.605 else 0.0
            rows.append({"scheme": "sgd", "dim": 3, "n": n, "phi": float(phi), "kick_size": None,
                         "learning_rate": 0.1, "batch_fraction": 0.5, "potential": "linear",
                         "f_inf": f, "f_inf_err": 0.02 * f, "tau_r": 100.0, "tau_r_err": 1.0, "excluded": ""})
    figures.fig3(rows, tmp_path)
    (fig,) = captured.values()
    title = fig.axes[1].get_title()
    assert title.startswith(r"(b) $\phi_c$ $\leq$ 0.6") and "=" not in title.split(",")[0], title
    captured.clear()
    figures.fig3(fig3_rows(), tmp_path)
    (fig,) = captured.values()
    assert fig.axes[1].get_title().startswith(r"(b) $\phi_c$ = 0.6"), fig.axes[1].get_title()


class _RunWithSofk:
    """Stands in for analysis.io.Run: in-run S(k) at three steps, bins 0 and 2 empty."""
    path = "fake.h5"
    has_structure_factor = True

    def structure_factor(self):
        count = np.array([0, 4, 0, 6, 8, 10, 12, 14, 16])
        S = np.tile(np.arange(9.0), (3, 1)) * np.array([[1.0], [2.0], [3.0]])
        S[:, count == 0] = np.nan
        return {"step": np.array([0, 100, 200]), "k_mean": np.linspace(0.1, 0.9, 9), "count": count, "S": S}


def test_small_k_history_skips_empty_bins():
    h = figures.small_k_history(_RunWithSofk(), n_bins=3)
    # filled bins 1, 3, 4: mean of (1, 3, 4) = 8/3 at step 0, times 2 and 3 later
    np.testing.assert_allclose(h["S"], [8 / 3, 16 / 3, 8.0])
    assert h["k_max"] == pytest.approx(0.5) and list(h["step"]) == [0, 100, 200]


def test_figS2_draws_the_in_run_history(captured, tmp_path):
    k = np.linspace(0.5, 4, 8)
    history = figures.small_k_history(_RunWithSofk(), n_bins=3)
    groups = [{"scheme": "bro-pairwise", "phi": 0.565, "n": 1000, "batch_fraction": None, "k": k,
               "S": np.ones(8), "counts": np.full(8, 6), "alpha": np.nan, "alpha_err": np.nan,
               "history": history},
              {"scheme": "sgd", "phi": 0.52, "n": 1000, "batch_fraction": 0.5, "k": k, "S": np.ones(8),
               "counts": np.full(8, 6), "alpha": np.nan, "alpha_err": np.nan, "history": None}]
    paths = figures.figS2(groups, tmp_path)
    fig = captured["figS2"]
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 1       # one run measured S(k) in the run
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), history["S"])
    rows = (tmp_path / "figS2_history.csv").read_text().strip().splitlines()
    assert tmp_path / "figS2_history.csv" in paths and len(rows) == 1 + 3 and rows[1].startswith("bro-pairwise")
