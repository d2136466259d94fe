"""The command line: help, exit status 2 and nothing written on bad input, no overwrite by default."""
import subprocess
import sys

import h5py
import pytest

MPISIM = [sys.executable, "-m", "mpisim"]

CONFIG = """
[system]
n = 300
phi = 0.5
dim = 2
[dynamics]
scheme = "bro-pairwise"
kick_size = 0.1
[run]
steps = 30
progress_seconds = 0
"""


def cli(*args, cwd=None):
    return subprocess.run(MPISIM + list(args), capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["info", "--help"]])
def test_help(args):
    out = cli(*args)
    assert out.returncode == 0 and "usage" in out.stdout


def test_version():
    import mpisim
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"mpisim {mpisim.__version__}"


def test_run_then_info(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    out = cli("run", "c.toml", "-o", "out.h5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    with h5py.File(tmp_path / "out.h5") as f:
        assert f["particles/all/position/value"].shape[1:] == (300, 2)
        assert f["observables/activity/step"][-1] == 30
    info = cli("info", "out.h5", cwd=tmp_path)
    assert info.returncode == 0 and "N = 300" in info.stdout and "absorbed" in info.stdout


@pytest.mark.parametrize("extra,message", [
    (["--set", "dynamics.kick_size=-1"], "dynamics.kick_size"),
    (["--set", "system.phi=0"], "system.phi"),
    (["--set", "dynamics.scheme=adam"], "dynamics.scheme"),
    (["--set", "nonsense"], "section.key=value"),
    (["--set", "system.dim=7"], "system.dim: must be one of 2, 3, 4, 5, 6"),
    (["--set", "system.dim=1"], "system.dim: must be one of 2, 3, 4, 5, 6"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, extra, message):
    (tmp_path / "c.toml").write_text(CONFIG)
    out = cli("run", "c.toml", "-o", "out.h5", *extra, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out.h5").exists()


def test_missing_config_and_existing_output(tmp_path):
    out = cli("run", "missing.toml", cwd=tmp_path)
    assert out.returncode == 2 and "missing.toml" in out.stderr
    (tmp_path / "c.toml").write_text(CONFIG)
    (tmp_path / "out.h5").write_bytes(b"precious")
    out = cli("run", "c.toml", "-o", "out.h5", cwd=tmp_path)
    assert out.returncode == 2 and "--overwrite" in out.stderr
    assert (tmp_path / "out.h5").read_bytes() == b"precious"
    assert cli("run", "c.toml", "-o", "out.h5", "--overwrite", cwd=tmp_path).returncode == 0


def test_info_refuses_what_is_not_a_run(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    out = cli("info", "x.h5", cwd=tmp_path)
    assert out.returncode == 2 and "not an HDF5 file" in out.stderr


def test_run_until_steady_says_so(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    sets = ["system.phi=0.78", "system.seed=2", "run.steps=20000", "run.log_every=10",
            "run.stop_when_steady=true", "run.steady_every=500"]
    out = cli("run", "c.toml", "-o", "out.h5", *[a for s in sets for a in ("--set", s)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert ": steady)" in out.stderr
    with h5py.File(tmp_path / "out.h5") as f:
        last = int(f["parameters/provenance"].attrs["last_step"])
        assert f["parameters/provenance"].attrs["stopped"] == "steady" and last < 20000
        assert f["particles/all/position/step"][-1] == last
    info = cli("info", "out.h5", cwd=tmp_path)
    assert f"finished at step {last} (stopped: steady)" in info.stdout
