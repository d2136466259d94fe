"""launch/fig5b_sizes.py on a planted activity table: N = 1000 absorbs up to 0.62, N = 2000 up to 0.615."""
import csv
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("fig5b_sizes", Path(__file__).parents[2] / "launch" / "fig5b_sizes.py")
fig5b_sizes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fig5b_sizes)

COLUMNS = ("scheme", "n", "phi", "kick_size", "learning_rate", "batch_fraction", "n_seeds", "n_absorbed")


def test_a_bracket_per_size(tmp_path, capsys):
    table = tmp_path / "fig5b-sgd-eps0.05-activity.csv"
    absorbed = {1000: {0.61: 3, 0.615: 3, 0.62: 3, 0.625: 0, 0.63: 0},
                2000: {0.61: 3, 0.615: 3, 0.62: 1, 0.625: 0, 0.63: 0}}
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for n, by_phi in absorbed.items():
            for phi, k in by_phi.items():
                w.writerow(["sgd", n, phi, "", 0.1, 0.5, 3, k])
    out = tmp_path / "sizes.csv"
    assert fig5b_sizes.main([str(table), "-o", str(out)]) == 0
    rows = {int(r["n"]): r for r in csv.DictReader(open(out))}
    assert float(rows[1000]["eps"]) == pytest.approx(0.05)          # alpha b_f
    assert (float(rows[1000]["phi_all_absorbed"]), float(rows[1000]["phi_none_absorbed"])) == (0.62, 0.625)
    assert (float(rows[2000]["phi_all_absorbed"]), float(rows[2000]["phi_none_absorbed"])) == (0.615, 0.625)
    # half of N = 2000's seeds absorbed between 0.615 (all) and 0.62 (one of three)
    assert float(rows[2000]["phi_half"]) == pytest.approx(0.615 + 0.005 * 0.5 / (2 / 3))
    assert "| sgd-eps0.05 | 0.05 | [0.62, 0.625] | [0.615, 0.625] |" in capsys.readouterr().out


def test_empty_input_is_refused(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_text(",".join(COLUMNS) + "\n")
    assert fig5b_sizes.main([str(empty)]) == 2
