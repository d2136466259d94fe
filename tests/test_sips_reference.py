"""launch/sips_reference: the driver of the authors' code (docs/reference-sips.md, section 2).

sips is never part of the repository: without a build (SIPS_BUILD unset) the driver must say so and exit 0,
and a wrong path is a user mistake (exit 2, one line). With SIPS_BUILD pointing at a build, the two codes
must see the same system: the same box, radii and starting positions give the same initial activity.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "launch" / "sips_reference.py"


def driver():
    spec = importlib.util.spec_from_file_location("sips_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args, sips_build=None):
    env = {k: v for k, v in os.environ.items() if k != "SIPS_BUILD"}
    if sips_build is not None:
        env["SIPS_BUILD"] = sips_build
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True)


def test_without_a_build_it_skips_and_says_how_to_get_one():
    p = run("time", "--n", "100")
    assert p.returncode == 0
    assert "skipped" in p.stderr and "docs/reference-sips.md" in p.stderr
    assert p.stdout == ""


def test_a_path_without_the_module_is_refused_in_one_line(tmp_path):
    p = run("time", "--sips", str(tmp_path))
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path) in lines[0]


def test_activity_at_reads_logged_values_and_zero_after_absorption():
    d = driver()
    r = {"step": [0, 100, 200], "activity": [0.9, 0.5, 0.1], "absorbed_step": None}
    assert d.activity_at(r, 100) == 0.5
    assert d.activity_at(r, 150) is None
    r["absorbed_step"] = 250
    assert d.activity_at(r, 300) == 0.0 and d.activity_at(r, 200) == 0.1


@pytest.mark.parametrize("step, log_every, seen", [(0, 100, 0), (1201, 100, 1300), (1300, 100, 1300),
                                                   (950, 300, 1000), (1001, 300, 1200), (1001, 1, 1001),
                                                   (2001, 7, 2002)])
def test_absorption_is_seen_at_the_next_checked_step(step, log_every, seen):
    """sips checks f_a at the multiples of n_rec (log_every) and of 1000: mpisim's exact step maps there."""
    assert driver().seen_absorbed(step, log_every) == seen


@pytest.mark.skipif(not os.environ.get("SIPS_BUILD"), reason="no sips build (set SIPS_BUILD; docs/reference-sips.md)")
@pytest.mark.parametrize("dim,phi", [(3, 0.45), (2, 0.6)])
def test_both_codes_see_the_same_system(dim, phi):
    d = driver()
    sips = d.load_sips(os.environ["SIPS_BUILD"])
    _, sips_act, _ = d.run_sips_activity(sips, "bro-pairwise", 400, phi, dim, 0.1, 0, 1, seed=3)
    _, mpisim_act, _ = d.run_mpisim_activity("bro-pairwise", 400, phi, dim, 0.1, 1, 1, seed=3)
    # f_a(0) counts the overlaps of the common start: equal only if box, radii and positions agree
    assert 0.2 < mpisim_act[0] < 1.0
    assert sips_act[0] == mpisim_act[0]
    box, pos = d.start_state(400, phi, dim, 3)
    assert np.isclose(np.prod(box) * phi, 400 * (np.pi / 4 if dim == 2 else np.pi / 6))
