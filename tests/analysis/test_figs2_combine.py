"""launch/figs2_combine.py: figS2 tables written apart, drawn together, give back every row they held."""
import csv
import importlib.util
from pathlib import Path

import numpy as np

from analysis.figures import figS2

_spec = importlib.util.spec_from_file_location("figs2_combine",
                                               Path(__file__).parents[2] / "launch" / "figs2_combine.py")
figs2_combine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(figs2_combine)


def group(scheme, phi, b_f, history):
    k = np.geomspace(0.06, 8.0, 12)
    return {"scheme": scheme, "phi": phi, "n": 1000000, "batch_fraction": b_f, "k": k, "S": 1e-3 + k ** 0.9,
            "counts": np.arange(3, 15), "alpha": 0.9, "alpha_err": 0.05,
            "history": {"step": np.array([0, 10000, 20000]), "S": np.array([1.0, 2e-3, 1.5e-3]), "k_max": 0.2}
            if history else None}


def rows(path):
    return sorted(tuple(r.items()) for r in csv.DictReader(open(path)))


def test_tables_written_apart_meet_in_one(tmp_path):
    figS2([group("bro-pairwise", 0.565, None, True)], tmp_path / "a")
    figS2([group("sgd", 0.525, 0.5, True), group("rcd", 0.57, 0.5, False)], tmp_path / "b")
    tables = [str(tmp_path / "a" / "figS2.csv"), str(tmp_path / "b" / "figS2.csv")]
    assert figs2_combine.main(tables + ["-o", str(tmp_path / "all")]) == 0
    assert rows(tmp_path / "all" / "figS2.csv") == sorted(rows(tables[0]) + rows(tables[1]))
    assert rows(tmp_path / "all" / "figS2_history.csv") == sorted(
        rows(tmp_path / "a" / "figS2_history.csv") + rows(tmp_path / "b" / "figS2_history.csv"))
    assert (tmp_path / "all" / "figS2.png").stat().st_size > 0


def test_one_curve_in_two_tables_is_refused(tmp_path, capsys):
    figS2([group("sgd", 0.525, 0.5, False)], tmp_path / "a")
    table = str(tmp_path / "a" / "figS2.csv")
    assert figs2_combine.main([table, table, "-o", str(tmp_path / "all")]) == 2
    assert "also in an earlier table" in capsys.readouterr().err
    assert not (tmp_path / "all").exists()
