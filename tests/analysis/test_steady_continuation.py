"""launch/steady_continuation.py --in-bracket: which runs of a study it carries on (docs/results.md, Fig. 5b
protocol), on synthetic runs with known absorptions. Carrying a run on is tested with real runs in
tests/test_carry_on.py."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from analysis.synthetic import fcc_positions, write_manifest, write_run

_spec = importlib.util.spec_from_file_location("steady_continuation",
                                               Path(__file__).parents[2] / "launch" / "steady_continuation.py")
steady_continuation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(steady_continuation)

ACTIVE, ABSORBED = np.full(21, 0.2), np.r_[np.full(10, 0.2), 0.0]


def study(root: Path, absorbed: dict, eps: float = 0.05, crystals=()) -> list[Path]:
    """One manifest per N of runs named as launch/sweep names them; absorbed[(n, phi)] = seeds absorbed of 2.
    With ``crystals`` ((n, phi, seed), ...): 256 particles in a box of 4, the crystals' last snapshot an fcc
    lattice, the others' random."""
    x, box = fcc_positions(4)
    rng = np.random.default_rng(1)
    manifests = []
    for n in sorted({n for n, _ in absorbed}):
        paths = []
        for (m, phi), k in sorted(absorbed.items()):
            if m != n:
                continue
            for seed in (1, 2):
                d = root / f"n{n}" / f"n={n}_phi={phi}_seed={seed}"
                d.mkdir(parents=True)
                shape = {}
                if crystals:
                    pos = x + 0.02 * rng.standard_normal(x.shape) if (n, phi, seed) in crystals else \
                        rng.random(x.shape) * box
                    shape = {"positions": pos[None], "box": box}
                paths.append(write_run(d / "run.h5", scheme="bro-individual", kick_size=eps, learning_rate=None,
                                       batch_fraction=None, n=len(x) if crystals else n, phi=phi, seed=seed,
                                       activity=ABSORBED if seed <= k else ACTIVE, **shape))
        manifests.append(write_manifest(root / f"n{n}" / "manifest.tsv", paths))
    return manifests


def names(dirs):
    return sorted(d.name for d in dirs)


def test_the_runs_inside_the_bracket_that_did_not_absorb(tmp_path):
    # every run absorbs at 0.59; none at 0.605 (the bracket [0.59, 0.605]); mixed between
    plan = {(1000, 0.59): 2, (1000, 0.6): 1, (1000, 0.605): 0, (1000, 0.61): 0,
            (2000, 0.59): 2, (2000, 0.6): 2, (2000, 0.605): 0, (2000, 0.61): 0}
    manifests = study(tmp_path / "runs", plan)
    out = tmp_path / "cont"
    out.mkdir()
    chosen, bracket = steady_continuation.runs_in_bracket(manifests, out)
    assert bracket == (0.59, 0.605)
    assert names(chosen) == sorted(["n=1000_phi=0.6_seed=2", "n=1000_phi=0.605_seed=1", "n=1000_phi=0.605_seed=2",
                                    "n=2000_phi=0.605_seed=1", "n=2000_phi=0.605_seed=2"])
    assert [d.name[:6] for d in chosen] == ["n=2000"] * 2 + ["n=1000"] * 3   # the largest first
    # a continuation that absorbs at 0.605 moves the upper end to 0.61: its runs join, and the continued
    # runs stay chosen (their rows are reported)
    continued(out, 2000, 0.605, 1, np.r_[np.full(40, 0.2), 0.0])
    chosen, bracket = steady_continuation.runs_in_bracket(manifests, out)
    assert bracket == (0.59, 0.61)
    assert names(chosen) == sorted(["n=1000_phi=0.6_seed=2", "n=1000_phi=0.605_seed=1", "n=1000_phi=0.605_seed=2",
                                    "n=1000_phi=0.61_seed=1", "n=1000_phi=0.61_seed=2", "n=2000_phi=0.605_seed=1",
                                    "n=2000_phi=0.605_seed=2", "n=2000_phi=0.61_seed=1", "n=2000_phi=0.61_seed=2"])
    assert all(d.parent.parent == tmp_path / "runs" for d in chosen)   # the originals' directories


def continued(out: Path, n: int, phi: float, seed: int, activity) -> None:
    (out / f"n={n}_phi={phi}_seed={seed}").mkdir()
    write_run(out / f"n={n}_phi={phi}_seed={seed}" / "run.h5", scheme="bro-individual", kick_size=0.05,
              learning_rate=None, batch_fraction=None, n=n, phi=phi, seed=seed, activity=activity)


def test_a_continued_run_stays_chosen_when_the_bracket_moves_past_it(tmp_path):
    manifests = study(tmp_path / "runs", {(1000, 0.59): 2, (1000, 0.6): 1, (1000, 0.605): 1, (1000, 0.61): 0})
    out = tmp_path / "cont"
    out.mkdir()
    chosen, bracket = steady_continuation.runs_in_bracket(manifests, out)
    at_hi = ["n=1000_phi=0.61_seed=1", "n=1000_phi=0.61_seed=2"]
    assert bracket == (0.59, 0.61)
    assert names(chosen) == sorted(["n=1000_phi=0.6_seed=2", "n=1000_phi=0.605_seed=2"] + at_hi)
    continued(out, 1000, 0.6, 2, np.full(41, 0.2))                  # still active
    continued(out, 1000, 0.605, 2, np.r_[np.full(40, 0.2), 0.0])    # absorbs: every seed at 0.605 did
    chosen, bracket = steady_continuation.runs_in_bracket(manifests, out)
    assert bracket == (0.605, 0.61)      # 0.6 is below it now, but its continuation is still reported
    assert names(chosen) == sorted(["n=1000_phi=0.6_seed=2", "n=1000_phi=0.605_seed=2"] + at_hi)


def test_crystals_are_left_out_of_the_bracket_and_never_carried_on(tmp_path):
    """--max-solid-fraction: the active crystal at 0.6 neither holds the bracket down nor is carried on (as
    phic --max-solid-fraction leaves it out); without it the bracket and the choice are the plain ones."""
    plan = {(256, 0.59): 2, (256, 0.6): 1, (256, 0.605): 0, (256, 0.61): 0}
    manifests = study(tmp_path / "runs", plan, crystals={(256, 0.6, 2)})
    out = tmp_path / "cont"
    out.mkdir()
    chosen, bracket = steady_continuation.runs_in_bracket(manifests, out)
    assert bracket == (0.59, 0.605)
    assert names(chosen) == ["n=256_phi=0.605_seed=1", "n=256_phi=0.605_seed=2", "n=256_phi=0.6_seed=2"]
    chosen, bracket = steady_continuation.runs_in_bracket(manifests, out, max_solid_fraction=0.1)
    assert bracket == (0.6, 0.605)
    assert names(chosen) == ["n=256_phi=0.605_seed=1", "n=256_phi=0.605_seed=2"]


def test_one_study_and_a_bracket_are_needed(tmp_path):
    out = tmp_path / "cont"
    out.mkdir()
    two = study(tmp_path / "a", {(1000, 0.59): 2, (1000, 0.6): 0}) + \
        study(tmp_path / "b", {(1000, 0.59): 2, (1000, 0.6): 0}, eps=0.1)
    with pytest.raises(ValueError, match="one study"):
        steady_continuation.runs_in_bracket(two, out)
    with pytest.raises(ValueError, match="no absorption bracket"):
        steady_continuation.runs_in_bracket(study(tmp_path / "c", {(1000, 0.59): 1, (1000, 0.6): 1}), out)


@pytest.mark.parametrize("argv", [["OUT"], ["OUT", "RUN", "--in-bracket", "M"], ["OUT", "RUN", "--jobs", "0"],
                                  ["OUT", "--in-bracket", "no-such-manifest.tsv"],
                                  ["OUT", "RUN", "--max-solid-fraction", "0.1"],
                                  ["OUT", "--in-bracket", "M", "--max-solid-fraction", "1.5"]])
def test_bad_arguments(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        steady_continuation.main(argv)
    assert exc.value.code == 2 and "error:" in capsys.readouterr().err
