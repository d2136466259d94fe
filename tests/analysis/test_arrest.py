"""launch/arrest.py on synthetic runs with planted MSD growth (docs/results.md, "Why the data ...", point 4)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from analysis.io import load_run
from analysis.synthetic import write_run

_spec = importlib.util.spec_from_file_location("arrest", Path(__file__).parents[2] / "launch" / "arrest.py")
arrest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(arrest)


def test_mobility_of_a_random_walk_and_of_a_frozen_run(tmp_path):
    eps, f, log_every, n_log = 0.05, 0.4, 100, 201        # steps 0..20000, second half 10000..20000
    steps = np.arange(n_log) * log_every
    walk = f * eps ** 2 / 3.0 * steps                   # the free scale: mobility 1
    frozen = np.minimum(steps, 1000) * 1e-5             # grows, then stops before the second half
    rows = {}
    for name, msd in (("walk", walk), ("frozen", frozen)):
        p = write_run(tmp_path / f"{name}.h5", scheme="bro-pairwise", kick_size=eps, learning_rate=None,
                      steps=int(steps[-1]), log_every=log_every, activity=np.full(n_log, f), msd=msd,
                      absorbed=False)
        rows[name] = arrest.arrest_row(load_run(p))
    assert rows["walk"]["mobility"] == pytest.approx(1.0, rel=1e-12)
    assert rows["walk"]["rms_kicks"] == pytest.approx(np.sqrt(walk[-1] - walk[100]) / eps, rel=1e-12)
    assert rows["frozen"]["mobility"] == 0.0 and rows["frozen"]["f_drift"] == 0.0
    assert rows["frozen"]["f_last"] == pytest.approx(f)


def test_absorbed_runs_have_no_row(tmp_path):
    p = write_run(tmp_path / "a.h5", scheme="bro-pairwise", kick_size=0.1, learning_rate=None,
                  activity=np.r_[np.linspace(0.5, 0.1, 10), 0.0])
    assert arrest.arrest_row(load_run(p)) is None
