"""Progress of long loops over frames and runs (mpisim/core/progress.py): `mpisim sofk` over many
frames, the analysis package's per-run work; and the demo's closing figure (launch/demo)."""
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mpisim.core.progress import ItemProgress, progress

TOP = Path(__file__).resolve().parents[1]


def ticking(times):
    """A clock that returns ``times`` one after the other (the first is the loop's start)."""
    it = iter(times)
    return lambda: next(it)


def test_the_first_item_is_reported_apart_and_left_out_of_rate_and_eta():
    # 10 items: the first takes 30 s (kernel compilation), then 2 s each; a line every 5 s
    out = io.StringIO()
    times = [0.0, 30.0] + [30.0 + 2.0 * i for i in range(1, 10)] + [48.0]
    report = ItemProgress(10, "S(k) frames", seconds=5.0, style="lines", out=out, clock=ticking(times))
    for _ in range(10):
        report.done()
    report.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == ("S(k) frames: the first took 30.0 s (start-up and kernel compilation; not counted in "
                        "the rate and ETA)")
    # at item 4 (t = 36): 3 items in 6 s after the first -> 0.5/s, 6 left -> ETA 12 s
    assert lines[1] == "S(k) frames: 4/10  0.5/s  ETA 0:00:12"
    assert lines[-1] == "S(k) frames: 10/10 done in 48.0 s (the first 30.0 s, then 0.5/s)"


def test_a_short_loop_prints_nothing_and_other_ranks_never_print():
    out = io.StringIO()
    for _ in progress(range(5), "runs", seconds=10.0, style="lines", out=out,
                      clock=ticking([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])):
        pass
    assert out.getvalue() == ""
    report = ItemProgress(3, "runs", seconds=0.0, style="lines", out=out, enabled=False,
                          clock=ticking([0.0]))
    for _ in range(3):
        report.done()
    report.close()
    assert out.getvalue() == ""


def test_not_a_terminal_gets_lines_not_a_bar():
    pytest.importorskip("tqdm")
    out = io.StringIO()          # not a tty, not a notebook: plain lines even with tqdm installed
    report = ItemProgress(2, "runs", seconds=0.0, style="auto", out=out, clock=ticking([0.0, 1.0, 2.0, 3.0]))
    assert report.bar is None
    report.done()
    report.done()
    report.close()
    assert "runs: 2/2 done in 3.0 s" in out.getvalue() and "\r" not in out.getvalue()
    bar = ItemProgress(2, "runs", style="tqdm", out=io.StringIO())
    assert bar.bar is not None
    bar.close()


@pytest.mark.serial
def test_mpisim_sofk_reports_progress_over_frames(tmp_path):
    from analysis.synthetic import write_run
    rng = np.random.default_rng(3)
    frames, n = 6, 200
    path = write_run(tmp_path / "run.h5", dim=2, n=n, phi=0.4, steps=500, log_every=100,
                     positions=rng.random((frames, n, 2)) * 10.0, frame_steps=np.arange(frames) * 100,
                     box=np.array([10.0, 10.0]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "OPAL_"))}
    done = subprocess.run([sys.executable, "-m", "mpisim", "sofk", str(path), "--k-max", "3", "--bins", "4",
                           "--progress-seconds", "1e-9"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("S(k) frames:")]
    assert any(ln.startswith(f"S(k) frames: {i}/{frames} ") for ln in lines for i in range(2, frames)), lines
    assert lines[-1].startswith(f"S(k) frames: {frames}/{frames} done in ") and "(the first " in lines[-1], lines
    quiet = subprocess.run([sys.executable, "-m", "mpisim", "sofk", str(path), "--k-max", "3", "--bins", "4",
                            "--overwrite", "--progress-seconds", "0"], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0 and "S(k) frames" not in quiet.stderr, quiet.stderr


def test_analysis_reports_progress_over_runs(tmp_path):
    from analysis.cli import main
    from analysis.synthetic import write_run
    paths = [write_run(tmp_path / f"r{i}.h5", dim=2, n=64, phi=0.4, seed=i, steps=200, log_every=10,
                       positions=np.random.default_rng(i).random((2, 64, 2)) * 8.0, frame_steps=[0, 200],
                       box=np.array([8.0, 8.0])) for i in range(3)]
    err = io.StringIO()
    sys_stderr, sys.stderr = sys.stderr, err
    try:
        assert main(["sofk", *map(str, paths), "--k-max", "3", "--bins", "3", "--progress-seconds", "1e-9",
                     "-o", str(tmp_path / "s.csv")]) == 0
    finally:
        sys.stderr = sys_stderr
    assert "sofk: runs: 3/3 done in " in err.getvalue(), err.getvalue()


def test_activity_plot_writes_one_png(tmp_path, capsys):
    from analysis.cli import main
    from analysis.synthetic import write_run
    active = write_run(tmp_path / "a.h5", n=64, steps=1000, log_every=10, activity=np.linspace(0.9, 0.2, 101))
    absorbed = write_run(tmp_path / "b.h5", n=64, seed=1, steps=1000, log_every=10,
                         activity=np.r_[np.linspace(0.5, 0.01, 60), np.zeros(3)])
    png = tmp_path / "act.png"
    assert main(["activity-plot", str(active), str(absorbed), "-o", str(png)]) == 0
    assert capsys.readouterr().out.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["activity-plot", str(active), "-o", str(tmp_path / "act.pdf")]) == 2
    assert "must end in .png" in capsys.readouterr().err


@pytest.mark.serial
def test_demo_ends_with_its_png(tmp_path):
    """launch/demo (its setup skipped; a small system): the last line names the activity PNG, which exists."""
    if not os.access("/usr/bin/mpirun", os.X_OK) and not any(
            os.access(os.path.join(d, "mpirun"), os.X_OK) for d in os.environ.get("PATH", "").split(":")):
        pytest.skip("no mpirun")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "OPAL_"))}
    env["MPISIM_VENV"] = str(Path(sys.executable).parent.parent)
    out = tmp_path / "demo" / "bro3d.h5"
    done = subprocess.run([str(TOP / "launch" / "demo"), "--no-setup", str(out), "--set", "system.n=300",
                           "--set", "run.steps=100", "--set", "run.progress_seconds=0"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    png = tmp_path / "demo" / "bro3d-activity.png"
    assert last == f"demo figure (activity against step): {png}"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_warnings_on_the_command_line_are_one_line_each(capsys):
    """one_line_warnings: PROG: warning: MESSAGE (the category named unless a UserWarning), once per
    place with the "default" action, and the previous way of showing warnings back afterwards."""
    import warnings

    from mpisim.core.progress import one_line_warnings
    before = warnings.showwarning
    with one_line_warnings("prog", "default"):
        for _ in range(2):
            warnings.warn("a user's matter")
        warnings.warn("a number's matter", RuntimeWarning)
    err = capsys.readouterr().err
    assert err.splitlines() == ["prog: warning: a user's matter",
                                "prog: warning: RuntimeWarning: a number's matter"], err
    assert warnings.showwarning is before


def test_analysis_warns_in_one_line(tmp_path, capsys):
    """A run skipped by its manifest status: one line, mpisim-analysis: warning: ..., no source line."""
    from analysis.cli import main
    from analysis.synthetic import write_manifest, write_run
    paths = [write_run(tmp_path / f"r{i}.h5", phi=0.6, seed=i) for i in range(3)]
    write_manifest(tmp_path / "manifest.tsv", paths, ["done", "done", "failed"])
    assert main(["activity", str(tmp_path / "manifest.tsv"), "-o", str(tmp_path / "a.csv")]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln.lower()]
    assert len(lines) == 1 and lines[0].startswith("mpisim-analysis: warning: ") and "skipped 1" in lines[0], lines
