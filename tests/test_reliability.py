"""Nothing lost, nothing silently wrong (issue 16): damaged or foreign checkpoints, bad input, numerical
guards, write errors and concurrent writers."""
import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpisim import RunConfig, Simulation
from mpisim.config import ConfigError
from mpisim.io import checkpoint_path, read_checkpoint
from mpisim.io.checkpoint import array_checksum

MPISIM = str(Path(sys.executable).parent / "mpisim")


def small_config(path, seed=7, **run):
    """A small active 2-d run with checkpoints every 20 steps."""
    r = {"steps": 100, "log_every": 5, "stop_when_absorbed": False, "checkpoint_every": 20,
         "progress_seconds": 0.0}
    r.update(run)
    return RunConfig.from_dict({
        "system": {"n": 200, "phi": 0.5, "dim": 2, "seed": seed},
        "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.2},
        "run": r,
        "output": {"path": str(path), "snapshot_every": 20, "flush_every": 10},
    })


def interrupted(path, steps=50, **kw):
    """The config of a run at ``path`` stopped after ``steps`` steps (its checkpoint at step 40)."""
    cfg = small_config(path, **kw)
    Simulation(cfg, output=str(path)).run(steps=steps)
    return cfg


def flip_byte(path, dataset, element, byte=2):
    """Flip every bit of one byte of element ``element`` (row-major) of a contiguous dataset, in the file
    itself (what a bad disk sector or a stray write does)."""
    with h5py.File(path, "r") as f:
        ds = f[dataset]
        offset = ds.id.get_offset() + element * ds.dtype.itemsize + byte
    with open(path, "r+b") as raw:
        raw.seek(offset)
        b = raw.read(1)[0]
        raw.seek(offset)
        raw.write(bytes([b ^ 0xFF]))


# ------------------------------------------------------------------------------------ checkpoints
def test_checksum_detects_any_one_element_change():
    rng = np.random.default_rng(1)
    a = rng.random((50, 3))
    whole = array_checksum(a)
    # Blocks add up mod 2^64: what ranks compute on their own rows.
    assert (array_checksum(a[:20]) + array_checksum(a[20:], 20 * 3)) % 2 ** 64 == whole
    for i in range(a.size):
        for byte in range(8):
            b = a.copy().reshape(-1)
            b.view(np.uint8)[i * 8 + byte] ^= 0x01
            assert array_checksum(b.reshape(a.shape)) != whole


@pytest.mark.serial
@pytest.mark.parametrize("dataset, element", [("state/position", 301), ("state/image", 77),
                                              ("state/radius", 123)])
def test_a_flipped_byte_in_a_checkpoint_is_refused(tmp_path, dataset, element):
    out = tmp_path / "o.h5"
    cfg = interrupted(out)
    ckpt = checkpoint_path(out)
    flip_byte(ckpt, dataset, element)
    with pytest.raises(ConfigError, match=rf"checkpoint {ckpt} cannot be resumed: .*/{dataset} does not match its checksum"):
        Simulation.resume(cfg)
    done = subprocess.run([MPISIM, "resume", str(out), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and ckpt in done.stderr and "checksum" in done.stderr


@pytest.mark.serial
def test_a_damaged_position_without_checksums_is_still_caught(tmp_path):
    """An old checkpoint (no checksums) still resumes; a position it holds outside the box, or radii
    that are not the config's, are refused."""
    out = tmp_path / "o.h5"
    cfg = interrupted(out)
    ckpt = checkpoint_path(out)
    with h5py.File(ckpt, "r+") as f:
        for name in f["state"]:
            del f["state"][name].attrs["sum64"]
        for key in ("observable_rows", "last_row_step", "output_started"):
            del f.attrs[key]
    shutil.copy(ckpt, tmp_path / "old.ckpt")
    assert Simulation.resume(cfg).step == 40
    with h5py.File(ckpt, "r+") as f:
        f["state/position"][5, 0] = 1000.0
        f["state/radius"][7] = 0.51
    with pytest.raises(ConfigError, match=r"1 position coordinate\(s\) outside the box.*1 radii differ"):
        Simulation.resume(cfg)


@pytest.mark.serial
def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    out = tmp_path / "o.h5"
    cfg = interrupted(out)
    # Another seed: its parameters differ from the output's.
    interrupted(tmp_path / "seed8.h5", seed=8, steps=90)
    shutil.copy(checkpoint_path(tmp_path / "seed8.h5"), checkpoint_path(out))
    with pytest.raises(ConfigError, match=r"parameters differ from the output's: system.seed \(checkpoint: 8"):
        Simulation.resume(cfg)
    # The same parameters but further on (a gap of 40 steps): not what this output held.
    twin = tmp_path / "twin.h5"
    interrupted(twin, steps=90)
    shutil.copy(checkpoint_path(twin), checkpoint_path(out))
    with pytest.raises(ConfigError, match=r"taken at step 80 when the output held"):
        Simulation.resume(cfg)


@pytest.mark.serial
def test_a_checkpoint_that_is_no_hdf5_file_is_refused(tmp_path):
    out = tmp_path / "o.h5"
    cfg = interrupted(out)
    Path(checkpoint_path(out)).write_bytes(b"\x00" * 4096)
    with pytest.raises(ConfigError, match=r"cannot be resumed: not a readable HDF5 file"):
        Simulation.resume(cfg)
