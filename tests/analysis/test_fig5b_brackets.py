"""launch/fig5b_brackets.py on planted brackets: phi_c(eps) = 0.64 - 0.8 eps, each bracket 0.004 wide around it."""
import csv
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("fig5b_brackets",
                                               Path(__file__).parents[2] / "launch" / "fig5b_brackets.py")
fig5b_brackets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fig5b_brackets)

COLUMNS = ("scheme", "batch_fraction", "step_size", "phi_all_absorbed", "phi_none_absorbed")


def write_table(path, scheme, batch_fraction, steps, offset=0.0):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for step in steps:
            eps = step * batch_fraction if batch_fraction else step
            phi_c = 0.64 + offset - 0.8 * eps
            w.writerow([scheme, batch_fraction or "", step, phi_c - 0.002, phi_c + 0.002])
    return path


def test_planted_lines_and_their_intersection(tmp_path):
    bro = write_table(tmp_path / "bro.csv", "bro-pairwise", None, [0.1, 0.05, 0.025])
    # SGD's steps are learning rates: at b_f = 0.5 they are the same kick sizes as BRO's
    sgd = write_table(tmp_path / "sgd.csv", "sgd", 0.5, [0.2, 0.1, 0.05], offset=0.003)
    out = tmp_path / "x.csv"
    png = tmp_path / "x.png"
    assert fig5b_brackets.main([str(bro), str(sgd), "-o", str(out), "--figure", str(png)]) == 0
    rows = {r["scheme"]: r for r in csv.DictReader(open(out))}
    assert rows["sgd"]["eps"] == "0.025 0.05 0.1"
    for scheme, truth in (("bro-pairwise", 0.64), ("sgd", 0.643)):
        lo, hi = float(rows[scheme]["linear_phi_c0_lo"]), float(rows[scheme]["linear_phi_c0_hi"])
        assert lo < truth < hi and hi - lo < 0.01
        assert rows[scheme]["sqrt_phi_c0_lo"] == "nan"        # no square root through tight linear brackets
        assert float(rows[scheme]["power_exponent_lo"]) <= 1.0 <= float(rows[scheme]["power_exponent_hi"])
    both = rows["all"]
    assert float(both["linear_phi_c0_lo"]) == pytest.approx(float(rows["sgd"]["linear_phi_c0_lo"]))
    assert float(both["linear_phi_c0_hi"]) == pytest.approx(float(rows["bro-pairwise"]["linear_phi_c0_hi"]))
    assert png.stat().st_size > 10000


def test_empty_input_is_refused(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_text(",".join(COLUMNS) + "\n")
    assert fig5b_brackets.main([str(empty)]) == 2
