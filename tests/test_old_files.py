"""Output files and checkpoints written before the schemes declared their own parameters (commit
557e8d6: one flat [dynamics] table of every key, defaults included) still read, show in `mpisim info`
and resume, and the resumed file equals a run of this code from the start, to the bit
(tests/data/README.md says how the files were made)."""
import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpisim import RunConfig, Simulation
from mpisim.config import ConfigError, tomllib
from mpisim.core.schemes import FLAT_DYNAMICS_DEFAULTS
from mpisim.io import read_parameters

from .conftest import clean_env, mpirun_command

DATA = Path(__file__).resolve().parent / "data"
MPISIM = str(Path(sys.executable).parent / "mpisim")
OLD = ("bro-pairwise-3d", "pgd-reciprocal-2d", "sgd-momentum-2d")
# What a run is: the trajectory and the observables (other datasets may be added to the format).
RUN_DATASETS = ("particles/all/position/value", "particles/all/box/edges/step", "particles/all/image/value",
                "particles/all/id", "particles/all/radius")


def unpack(name, tmp_path):
    """The old output and its checkpoint, byte for byte, in tmp_path; returns the output's path."""
    out = tmp_path / f"{name}.h5"
    for suffix in ("", ".ckpt"):
        with gzip.open(DATA / f"{name}.h5{suffix}.gz", "rb") as src, open(f"{out}{suffix}", "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def stored(path):
    return tomllib.loads(read_parameters(path))


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_trajectory(a, b):
    da, db = datasets(a), datasets(b)
    names = [n for n in da if n in db and (n in RUN_DATASETS or n.startswith("observables/"))]
    assert set(RUN_DATASETS) <= set(names) and any(n.startswith("observables/") for n in names)
    for name in names:
        assert np.array_equal(da[name], db[name]), name


@pytest.mark.parametrize("name", OLD)
def test_old_files_hold_the_flat_table_and_read(name, tmp_path):
    path = unpack(name, tmp_path)
    old = stored(path)
    assert set(FLAT_DYNAMICS_DEFAULTS) <= set(old["dynamics"])      # really the old flat table
    with pytest.raises(ConfigError):
        RunConfig.from_dict(old)                                     # keys of other schemes ...
    config = RunConfig.from_stored(old)                              # ... dropped at their defaults
    assert config.dynamics.scheme == old["dynamics"]["scheme"]
    for key in config.to_dict()["dynamics"]:
        assert config.to_dict()["dynamics"][key] == old["dynamics"][key], key
    info = subprocess.run([MPISIM, "info", str(path)], capture_output=True, text=True, env=clean_env())
    assert info.returncode == 0, info.stderr
    assert "frames      6 (steps 0, 10, 20, 30, 40, 45)" in info.stdout
    assert f'scheme = "{old["dynamics"]["scheme"]}"' in info.stdout


@pytest.mark.serial
@pytest.mark.parametrize("name,command,ranks", [
    ("bro-pairwise-3d", "resume", 1),
    ("pgd-reciprocal-2d", "resume", 2),
    ("sgd-momentum-2d", "run --resume", 1),
])
def test_old_file_resumes_as_a_new_run(name, command, ranks, tmp_path):
    """`mpisim resume OLD.h5` (its stored flat parameters), or `mpisim run NEW.toml --resume -o OLD.h5`
    (a config as written now: only the scheme's keys), continues the old file from its checkpoint."""
    path = unpack(name, tmp_path)
    config = RunConfig.from_stored(stored(path))
    ref = tmp_path / "ref.h5"
    Simulation(config, output=str(ref)).run()
    if command == "resume":
        args = ["resume", str(path), "--quiet"]
    else:
        toml = tmp_path / "new.toml"
        toml.write_text(config.to_toml())
        assert "kick_size" not in toml.read_text()            # sgd's table no longer holds BRO's key
        args = ["run", str(toml), "--resume", "-o", str(path), "--quiet"]
    cmd = (mpirun_command(ranks) if ranks > 1 else []) + [MPISIM, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    with h5py.File(path, "r") as f:
        assert list(f["parameters/provenance"].attrs["resumed_at_step"]) == [40]
    assert_same_trajectory(ref, path)
