"""The command line: --help everywhere, one-line errors with status 2, tables and figures."""
import subprocess
import sys

import h5py
import numpy as np
import pytest

from analysis.cli import main
from analysis.synthetic import write_run

SUBCOMMANDS = ["info", "activity", "curves", "collapse", "phic", "refine", "survival", "msd", "flatness", "crystal", "sofk",
               "figures"]


@pytest.mark.parametrize("sub", [None] + SUBCOMMANDS)
def test_help(sub, capsys):
    with pytest.raises(SystemExit) as exc:
        main(([sub] if sub else []) + ["--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "analysis", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "figures" in out.stdout


def _one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("mpisim-analysis: error:") and match in err
    assert "Traceback" not in err


def test_missing_file(capsys, tmp_path):
    _one_line_error(capsys, ["activity", str(tmp_path / "nope.h5")], "no such file")


def test_not_a_run(capsys, tmp_path):
    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as fh:
        fh["a"] = 1
    _one_line_error(capsys, ["info", str(p)], "not an mpisim run")
    q = tmp_path / "y.h5"
    q.write_text("text")
    _one_line_error(capsys, ["info", str(q)], "not an HDF5 file")


def test_run_too_short(capsys, tmp_path):
    p = write_run(tmp_path / "short.h5", activity=np.full(8, 0.3))
    _one_line_error(capsys, ["activity", str(p)], "too short")


def test_max_quality_must_be_positive(capsys, tmp_path):
    _one_line_error(capsys, ["phic", str(tmp_path), "--max-quality", "0"], "max_quality must be > 0, got 0")


def test_too_few_sizes(capsys, tmp_path):
    for phi in (0.6, 0.62, 0.64):
        write_run(tmp_path / f"r{phi}.h5", n=125, phi=phi, activity=np.full(101, phi - 0.55))
    _one_line_error(capsys, ["collapse", str(tmp_path)], "too few sizes")
    _one_line_error(capsys, ["figures", str(tmp_path), "--which", "fig3", "-o", str(tmp_path / "f")],
                    "too few sizes")


def test_bad_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["activity"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_tables_on_planted_sweep(sweep_dir, capsys, tmp_path):
    assert main(["activity", str(sweep_dir / "manifest.tsv")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("scheme\t") and len(lines) == 1 + 2 * 2 * 7
    assert main(["collapse", str(sweep_dir), "-o", str(tmp_path / "c.csv")]) == 0
    text = (tmp_path / "c.csv").read_text()
    assert "phi_c" in text and len(text.strip().splitlines()) == 3
    assert main(["msd", str(sweep_dir), "--at", "1000"]) == 0
    assert "msd_at" in capsys.readouterr().out


def test_figures_from_planted_sweep(sweep_dir, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["figures", str(sweep_dir / "manifest.tsv"), "-o", str(out), "--flatness-m", "5",
                 "--msd-step", "1000", "--sofk-k-max", "4", "--bootstrap", "4"]) == 0
    for stem in ("fig3_sgd_bf0.5_step0.1", "fig3_sgd_bf0.5_step0.2", "fig4b", "fig5a", "fig5b", "figS1", "figS2"):
        for ext in ("png", "pdf", "csv"):
            assert (out / f"{stem}.{ext}").stat().st_size > 0, stem + ext
    header = (out / "fig5b.csv").read_text().splitlines()[0].split(",")
    for col in ("phi_c", "status", "phi_c_bound", "phi_c_err_bootstrap", "phi_c0_linear", "phi_c0_sqrt",
                "preferred_form"):
        assert col in header
    assert "form" in (out / "fig5b_extrapolations.csv").read_text().splitlines()[0].split(",")
    assert "fig5b: sgd b_f=0.5" in capsys.readouterr().err


def test_phic_says_which_form_and_what_was_left_out(sweep_dir, capsys, tmp_path):
    assert main(["phic", str(sweep_dir), "--bootstrap", "3"]) == 0
    out = capsys.readouterr().out
    assert "status" in out.splitlines()[0] and "phi_c_err_bootstrap" in out.splitlines()[0]
    verdicts = [ln for ln in out.splitlines() if ln.startswith("# ")]
    assert len(verdicts) == 1 and "linear: " in verdicts[0] and "0.64" in verdicts[0]
    assert main(["phic", str(sweep_dir), "--forms", "cubic"]) == 2
    assert "unknown extrapolation form 'cubic'" in capsys.readouterr().err


def test_refine_proposes_the_midpoint_of_the_absorption_bracket(sweep_dir, capsys, tmp_path):
    # planted phi_c 0.61 (rate 0.1) and 0.63 (0.2) on a grid of 0.02: every run absorbs below, none above
    assert main(["refine", str(sweep_dir / "manifest.tsv")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    cols = lines[0].split("\t")
    rows = {float(r[cols.index("step_size")]): r for r in (ln.split("\t") for ln in lines[1:])}
    assert rows[0.1][cols.index("new_phi")] == "0.61" and rows[0.2][cols.index("new_phi")] == "0.63"
    assert rows[0.1][cols.index("axis")] == "[0.56, 0.58, 0.6, 0.61, 0.62, 0.64, 0.66, 0.68]"
    assert main(["refine", str(sweep_dir), "--min-step", "0.011"]) == 0      # 0.02 < 2 x 0.011: fine enough
    out = capsys.readouterr().out.strip().splitlines()
    assert all(ln.split("\t")[cols.index("new_phi")] == "" for ln in out[1:])
    _one_line_error(capsys, ["refine", str(sweep_dir), "--min-step", "0"], "--min-step must be > 0")


def test_free_collapse_finds_the_planted_phi_c(sweep_dir, capsys):
    # every run below the planted phi_c absorbs, so the active points start at the bracket's upper end:
    # the free fit's range must reach down to the last all-absorbed phi, as the fixed fit's does
    planted = {0.1: 0.61, 0.2: 0.63}                  # the sweep's phi_c per rate (conftest.PHI_C)
    assert main(["collapse", str(sweep_dir), "--free"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    cols = lines[0].split("\t")
    for ln in lines[1:]:
        r = dict(zip(cols, ln.split("\t")))
        assert r["status"] == "value"
        assert abs(float(r["phi_c"]) - planted[float(r["step_size"])]) <= 3 * float(r["phi_c_err"]) + 1e-3


def test_collapse_reports_why_a_fit_failed(sweep_dir, capsys, monkeypatch):
    from analysis.errors import CollapseError
    from analysis.fss import Collapse

    def fail(self, rows, phi_c0=None):
        raise CollapseError("the planted reason")
    monkeypatch.setattr(Collapse, "compute", fail)
    _one_line_error(capsys, ["collapse", str(sweep_dir)], "the planted reason")


def test_each_phi_c_that_is_not_a_value_says_why(capsys):
    """The CLI's note for a bound or an undetermined phi_c carries the reason the fit gave
    (:attr:`analysis.fss.Collapse.status_reason`); a value gets no note."""
    from analysis.cli import _bound_notes
    base = {"scheme": "rcd", "batch_fraction": 0.5, "step_size": 0.1}
    _bound_notes([{**base, "status": "bound", "phi_c_bound": ">= 0.5805",
                   "status_reason": "S is lowest at the upper end of its range [0.58, 0.585]"},
                  {**base, "status": "undetermined", "phi_c_bound": "undetermined",
                   "status_reason": "S = 68 is above 10: the data do not collapse"},
                  {**base, "status": "value", "phi_c_bound": "", "status_reason": ""}])
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(ln.endswith("left out of the extrapolation") for ln in lines), lines
    assert "phi_c >= 0.5805 (a bound, not a value: S is lowest at the upper end" in lines[0]
    assert "phi_c undetermined (S = 68 is above 10: the data do not collapse)" in lines[1]
