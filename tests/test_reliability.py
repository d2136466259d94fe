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
from mpisim.io import checkpoint_path, output_finished, read_checkpoint
from mpisim.io.checkpoint import array_checksum

from .conftest import clean_env, mpirun_command

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
def test_a_flipped_byte_in_a_checkpoint_is_refused(tmp_path, capsys, dataset, element):
    out = tmp_path / "o.h5"
    cfg = interrupted(out)
    ckpt = checkpoint_path(out)
    flip_byte(ckpt, dataset, element)
    with pytest.raises(ConfigError, match=rf"checkpoint {ckpt} cannot be resumed: .*/{dataset} does not match its checksum"):
        Simulation.resume(cfg)
    code, err = run_cli(capsys, "resume", out, "--quiet")
    assert code == 2 and err.count("\n") == 1 and ckpt in err and "checksum" in err, err


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


# ------------------------------------------------------------------------------------ user mistakes
def run_cli(capsys, *argv):
    """(exit status, stderr) of ``mpisim ARGV`` in this process."""
    from mpisim.cli import main
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def write_config(tmp_path):
    return _toml(tmp_path, small_config(tmp_path / "o.h5", steps=10, checkpoint_every=0))


@pytest.mark.serial
@pytest.mark.parametrize("content, message", [
    (b"\x89HDF\r\n\x1a\n\x00\x00\xff\xfe", "is not a UTF-8 text file"),
    ("[system]\nn = 10 # caf\xe9\n".encode("latin-1"), "is not a UTF-8 text file"),
    (None, "is a directory"),
])
def test_unreadable_configs(tmp_path, capsys, content, message):
    path = tmp_path / "c.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    code, err = run_cli(capsys, "run", path)
    assert code == 2 and message in err and str(path) in err and err.count("\n") == 1, err


@pytest.mark.serial
def test_a_config_nobody_may_read(tmp_path, capsys):
    import os
    path = write_config(tmp_path)
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("this user reads files without read permission (root)")
    code, err = run_cli(capsys, "run", path)
    assert code == 2 and "cannot read" in err and err.count("\n") == 1, err


@pytest.mark.serial
@pytest.mark.parametrize("key, value, message", [
    ("system.radii", '["a", "b"]', "system.radii: must be a list of numbers"),
    ("system.fractions", '[0.5, "x"]', "system.fractions: must be a list of numbers"),
    ("system.n", "1e12", "system.n: expected int"),
    ("system.n", "1000000000000", "system.n: 1000000000000 particles need about 4e+05 GB"),
    ("dynamics.kick_size", "inf", "dynamics.kick_size: must be a finite number"),
    ("dynamics.kick_size", "nan", "dynamics.kick_size: must be a finite number"),
    ("system.phi", "-inf", "system.phi: must be a finite number"),
    ("run.skin", "nan", "run.skin: must be a finite number"),
    ("system.radii", "[0.5, inf]", "system.radii: every entry must be a finite number"),
])
def test_bad_values(tmp_path, capsys, key, value, message):
    code, err = run_cli(capsys, "run", write_config(tmp_path), "--set", f"{key}={value}")
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.serial
def test_output_rules(tmp_path, capsys):
    config = write_config(tmp_path)
    before = config.read_bytes()
    code, err = run_cli(capsys, "run", config, "-o", config, "--overwrite")
    assert code == 2 and "-o/--output: must name an .h5" in err and config.read_bytes() == before
    missing = tmp_path / "nowhere" / "o.h5"
    code, err = run_cli(capsys, "run", config, "-o", missing)
    assert code == 2 and "does not exist" in err


@pytest.mark.serial
def test_a_read_only_output_directory(tmp_path, capsys):
    import os
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):
        pytest.skip("this user writes into read-only directories (root)")
    code, err = run_cli(capsys, "run", write_config(tmp_path), "-o", ro / "o.h5")
    assert code == 2 and "is not writable" in err and err.count("\n") == 1, err


@pytest.mark.serial
def test_init_that_is_no_mpisim_output(tmp_path, capsys):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = [1]
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5" * 100)
    for path, message in ((other, "is not an mpisim output"), (junk, "is not an HDF5 file or is damaged")):
        code, err = run_cli(capsys, "run", write_config(tmp_path), "--set", f"system.init=\"{path}\"",
                            "--overwrite")
        assert code == 2 and f"system.init: {path} {message}" in err and err.count("\n") == 1, err


@pytest.mark.serial
def test_damaged_outputs_given_to_info_and_resume(tmp_path, capsys):
    out = tmp_path / "o.h5"
    interrupted(out)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x00" * 10000)
    for path in (junk,):
        for command in ("info", "resume"):
            code, err = run_cli(capsys, command, path)
            assert code == 2 and f"{path} is not an HDF5 file or is damaged" in err and err.count("\n") == 1, err
    # A file whose observables are gone: damaged, named, exit 2.
    with h5py.File(out, "r+") as f:
        del f["observables/activity"]
    for command in ("info", "resume"):
        code, err = run_cli(capsys, command, out)
        assert code == 2 and str(out) in err and err.count("\n") == 1, err


@pytest.mark.serial
def test_a_file_caught_mid_write_by_a_parallel_writer_is_in_use_not_damaged(tmp_path, capsys):
    """A parallel writer takes no HDF5 file lock, so a resume or reader can open its file mid-extension
    ("truncated"): while its job holds OUT.h5.lock the answer is "in use", never "damaged"."""
    from mpisim.io.lock import OutputLock
    out = tmp_path / "o.h5"
    interrupted(out)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) - 4096])
    with OutputLock(out):
        for command in ("info", "resume"):
            code, err = run_cli(capsys, command, out)
            assert code == 2 and f"{out} is in use by another process (pid" in err and err.count("\n") == 1, err
    code, err = run_cli(capsys, "resume", out)
    assert code == 2 and f"{out} is not an HDF5 file or is damaged" in err, err


def test_the_rank_count_message_names_the_real_largest():
    from mpisim.parallel.comm import rank_grid
    with pytest.raises(ValueError, match=r"the largest rank count that fits is 8 \(the nearest below 5: 4\)"):
        rank_grid(5, 2, np.array([4.5, 2.5, 1.0]), 1.0)


# ------------------------------------------------------------------------------------ numerical guard
@pytest.mark.serial
@pytest.mark.parametrize("dynamics, message", [
    ({"scheme": "sgd", "learning_rate": 100.0, "batch_fraction": 0.5}, r"step 0: a particle moved .* in one "
     r"step, more than half the smallest box edge \(8.09\)"),
    ({"scheme": "sgd", "learning_rate": 1e7, "batch_fraction": 0.5}, r"fixed-point displacement sum\(s\) reached 2\^62"),
    ({"scheme": "bro-pairwise", "kick_size": 1e12}, r"fixed-point displacement sum\(s\) reached 2\^62"),
    ({"scheme": "langevin", "learning_rate": 0.1, "temperature": 1e9}, r"more than half the smallest box edge"),
])
def test_a_runaway_dynamics_stops_with_a_message(tmp_path, dynamics, message):
    from mpisim.simulation import NumericalError
    cfg = RunConfig.from_dict({"system": {"n": 200, "phi": 0.6, "dim": 2}, "dynamics": dynamics,
                               "run": {"steps": 20, "progress_seconds": 0.0, "stop_when_absorbed": False}})
    sim = Simulation(cfg, output=str(tmp_path / "o.h5"))
    with pytest.raises(NumericalError, match=message):
        sim.run()
    sim.close()
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert f["parameters/provenance"].attrs["end_time"] == "", "never marked finished"


@pytest.mark.serial
def test_non_finite_positions_are_caught_at_a_logged_step(tmp_path):
    from mpisim.simulation import NumericalError
    cfg = small_config(tmp_path / "o.h5", steps=20, checkpoint_every=0)
    sim = Simulation(cfg, write=False)
    sim.run(steps=5)
    sim.state.pos[3, 0] = np.nan
    sim.compute()
    with pytest.raises(NumericalError, match=r"step 5: 1 position coordinate\(s\) are not finite"):
        sim.measure()


@pytest.mark.serial
def test_a_k_range_that_cannot_fit_is_refused(tmp_path, capsys):
    code, err = run_cli(capsys, "run", write_config(tmp_path), "--set", "structure_factor.k_max=1e6",
                        "--set", "structure_factor.every=10")
    assert code == 2 and "structure_factor.k_max: 1e+06 spans" in err and "bytes per mode" in err, err
    assert err.count("\n") == 1


# ------------------------------------------------------------------------- one writer, write errors
def _start_long_run(tmp_path, out, ranks=1):
    """A run that stays alive (10^7 steps), started in the background once its checkpoint exists."""
    import time
    cfg = small_config(out, steps=10 ** 7, checkpoint_every=5)
    toml = tmp_path / f"{Path(out).stem}.toml"
    toml.write_text(cfg.to_toml())
    prefix = mpirun_command(ranks) if ranks > 1 else []
    proc = subprocess.Popen(prefix + [MPISIM, "run", str(toml), "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=clean_env(), start_new_session=True)
    deadline = time.monotonic() + 120
    while not Path(checkpoint_path(out)).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    return proc, toml


def _stop(proc):
    """SIGKILL to the job's process group: mpirun and its ranks."""
    import os
    import signal
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


@pytest.mark.serial
@pytest.mark.parametrize("ranks", [1, 2])
def test_one_writer_per_output(tmp_path, ranks):
    """While a run (on 1 or 2 ranks) is alive, --overwrite, --resume, a second run and a reader are told
    the output is in use by its pid; nothing of the running job is touched (its checkpoint stays)."""
    out = tmp_path / "o.h5"
    proc, toml = _start_long_run(tmp_path, out, ranks)
    try:
        ckpt = Path(checkpoint_path(out))
        for argv in (["run", toml, "--overwrite"], ["run", toml, "--resume"], ["resume", out]):
            done = subprocess.run([MPISIM, *map(str, argv), "--quiet"], capture_output=True, text=True,
                                  env=clean_env())
            assert done.returncode == 2, done.stderr
            assert "in use by another process (pid" in done.stderr and done.stderr.count("\n") == 1, done.stderr
            assert ckpt.exists() and proc.poll() is None
        if ranks == 1:   # serial HDF5 locks the file for its writer: a reader is told who has it
            info = subprocess.run([MPISIM, "info", str(out)], capture_output=True, text=True, env=clean_env())
            assert info.returncode == 2 and f"{out} is in use by another process (pid" in info.stderr, info.stderr
    finally:
        _stop(proc)
    # Killed: its lock goes with it (the kernel releases a flock with its process).
    import time
    from mpisim.io.lock import OutputInUse, OutputLock
    deadline = time.monotonic() + 30
    while True:
        try:
            OutputLock(out).acquire().release()
            break
        except OutputInUse:
            assert time.monotonic() < deadline, "the lock outlived its job"
            time.sleep(0.1)


@pytest.mark.serial
def test_overwrite_replaces_a_file_a_reader_has_open(tmp_path, capsys):
    out = tmp_path / "o.h5"
    interrupted(out, steps=30)
    toml = tmp_path / "c.toml"
    toml.write_text(small_config(out, steps=10, checkpoint_every=0).to_toml())
    with h5py.File(out, "r", locking=False) as reader:
        before = reader["observables/activity/step"][:]
        code, err = run_cli(capsys, "run", toml, "--overwrite", "--quiet")
        assert code == 0, err
        assert np.array_equal(reader["observables/activity/step"][:], before), "the reader's file is intact"
    with h5py.File(out, "r") as f:
        assert f["parameters/provenance"].attrs["end_time"] and f["observables/activity/step"][-1] == 10
    assert _kept_step(out) == 10 and not Path(f"{out}.new").exists()


# `mpisim ARGV` whose files may not grow past LIMIT bytes (EFBIG instead of SIGXFSZ): a full disk for one
# process, without root. The limit is set after MPI's start-up, which needs to write its own files.
LIMITED = """
import resource, signal, sys
from mpisim.parallel.comm import world
world()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from mpisim.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.serial
@pytest.mark.parametrize("checkpoint_every", [0, 40])
def test_a_failed_write_stops_the_run_loudly(tmp_path, checkpoint_every):
    """Files capped at 200 kB (RLIMIT_FSIZE) while the frames need more: exit 1 with one line naming the
    file and the OS error, no crash, and the output never marked finished."""
    out = tmp_path / "o.h5"
    cfg = small_config(out, steps=400, checkpoint_every=checkpoint_every)
    cfg = cfg.replace(output=dataclasses.replace(cfg.output, snapshot_every=5))
    toml = tmp_path / "c.toml"
    toml.write_text(cfg.to_toml())
    done = subprocess.run([sys.executable, "-c", LIMITED, "200000", "run", str(toml), "--quiet"],
                          capture_output=True, text=True, env=clean_env())
    assert done.returncode == 1, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("mpisim")]
    assert len(lines) == 1 and "write failed: [Errno 27] File too large" in lines[0], done.stderr[-3000:]
    assert str(out) in lines[0] or checkpoint_path(out) in lines[0]
    try:
        with h5py.File(out, "r") as f:
            assert f["parameters/provenance"].attrs["end_time"] == ""
    except (OSError, KeyError):
        pass    # HDF5 could not write its metadata either: unreadable, and certainly not finished


def _small_filesystem(path, size):
    """Mount a tmpfs of ``size`` at ``path`` (root only), or skip."""
    import os
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


def _unmount(path):
    """Unmount a tmpfs of _small_filesystem; a job's processes may still hold files there for a moment
    after it ended (then retried, and at last detached lazily)."""
    import time
    for _ in range(50):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _run_on_a_full_disk(tmp_path, disk, **run):
    """`mpisim run` of small_config(**run) without snapshots, its output on ``disk`` (2 MB) with 800 kB of it
    taken: (output path, the finished process)."""
    out = disk / "o.h5"
    cfg = small_config(out, **run)
    cfg = cfg.replace(output=dataclasses.replace(cfg.output, snapshot_every=0))
    toml = tmp_path / "c.toml"
    toml.write_text(cfg.to_toml())
    (disk / "filler").write_bytes(b"\0" * 800_000)
    return out, subprocess.run([MPISIM, "run", str(toml), "--quiet"], capture_output=True, text=True,
                               env=clean_env())


@pytest.mark.serial
def test_no_checkpoint_without_room(tmp_path):
    """On a 2 MB file system (1.2 MB of it free) whose output leaves no room for a checkpoint: the run stops before
    writing one, naming the sizes, and the previous checkpoint is kept."""
    disk = tmp_path / "disk"
    _small_filesystem(disk, "2m")
    try:
        out, done = _run_on_a_full_disk(tmp_path, disk, steps=400, checkpoint_every=20)
        assert done.returncode == 1, done.stderr[-3000:]
        lines = [line for line in done.stderr.splitlines() if line.startswith("mpisim")]
        assert len(lines) == 1 and "no room for the checkpoint" in lines[0], done.stderr[-3000:]
        assert not Path(checkpoint_path(out) + ".tmp").exists()
    finally:
        _unmount(disk)


@pytest.mark.serial
def test_a_complete_run_without_room_for_its_last_state_still_finishes(tmp_path):
    """The same disk, no checkpoints on the way: at the end there is no room to keep the last state
    (run.keep_checkpoint). The run is complete all the same: exit 0, the file finished, a warning that
    says what is lost, no checkpoint file."""
    disk = tmp_path / "disk"
    _small_filesystem(disk, "2m")
    try:
        out, done = _run_on_a_full_disk(tmp_path, disk, steps=60, checkpoint_every=0)
        assert done.returncode == 0, done.stderr[-3000:]
        warning = done.stderr.splitlines()[0]     # one line, as the errors (not Python's source line)
        assert warning.startswith("mpisim: warning: ") and "no room for the checkpoint" in warning \
            and warning.endswith("the run's last state is not kept (it cannot be carried on)"), done.stderr[-3000:]
        assert output_finished(out) and not Path(checkpoint_path(out)).exists()
        assert not Path(checkpoint_path(out) + ".tmp").exists()
    finally:
        _unmount(disk)


# ------------------------------------------------------------------------------- --overwrite (item 2)
def _datasets(path, prefixes=("particles", "observables")):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) and
                     n.startswith(prefixes) else None)
    return out


@pytest.mark.serial
def test_overwrite_keeps_the_old_run_until_the_new_one_is_complete(tmp_path):
    """The new run writes OUT.h5.new; OUT.h5 and the old run's checkpoint stay as they were (and readable)
    until the new run is complete, then the new file replaces OUT.h5 and the old checkpoint goes."""
    from mpisim.operations import At
    out = tmp_path / "o.h5"
    interrupted(out)                                   # the old run: seed 7, stopped at 50, checkpoint at 40
    old, old_ckpt = out.read_bytes(), Path(checkpoint_path(out)).read_bytes()
    seen = []

    def look(sim):
        assert sim.output_path == f"{out}.new" and Path(f"{out}.new").is_file()
        seen.append((out.read_bytes() == old, Path(checkpoint_path(out)).read_bytes() == old_ckpt))
    sim = Simulation(small_config(out, seed=8), output=str(out), overwrite=True)
    sim.add(look, At([30, 90]))
    sim.run()
    assert seen == [(True, True), (True, True)]
    assert not Path(f"{out}.new").exists() and _kept_step(out) == 100    # the new run's last state
    assert not Path(checkpoint_path(f"{out}.new")).exists()
    with h5py.File(out, "r") as f:
        assert f["parameters/provenance"].attrs["end_time"] and "seed = 8" in f["parameters"].attrs["config_toml"]


@pytest.mark.serial
@pytest.mark.parametrize("how", ["resume", "run --resume"])
def test_an_interrupted_overwrite_resumes_in_its_new_file(tmp_path, capsys, how):
    """An --overwrite stopped at step 50 (checkpoint at 40) leaves OUT.h5 as it was and OUT.h5.new with its
    checkpoint; `mpisim info` says so; `mpisim resume OUT.h5` (or `run --resume`) continues the new file,
    which then replaces OUT.h5, equal to an uninterrupted run of the new parameters."""
    out = tmp_path / "o.h5"
    interrupted(out)
    old = out.read_bytes()
    new = small_config(out, seed=8)
    Simulation(new, output=str(out), overwrite=True).run(steps=50)
    assert out.read_bytes() == old and Path(checkpoint_path(out)).is_file()
    assert Path(checkpoint_path(f"{out}.new")).is_file()
    from mpisim.cli import main
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "replacement o.h5.new: an --overwrite of this file" in info and "checkpoint at step 40" in info, info
    toml = tmp_path / "new.toml"
    toml.write_text(new.to_toml())
    argv = ["resume", out] if how == "resume" else ["run", toml, "-o", out, "--resume"]
    code, err = run_cli(capsys, *argv, "--quiet")
    assert code == 0, err
    assert not Path(f"{out}.new").exists() and _kept_step(out) == 100
    ref = tmp_path / "ref.h5"
    Simulation(small_config(ref, seed=8), output=str(ref)).run()
    a, b = _datasets(ref), _datasets(out)
    assert sorted(a) == sorted(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


@pytest.mark.serial
def test_an_overwrite_stopped_before_its_first_checkpoint_is_refused_by_name(tmp_path, capsys):
    out = tmp_path / "o.h5"
    interrupted(out)
    Simulation(small_config(out, seed=8), output=str(out), overwrite=True).run(steps=10)
    code, err = run_cli(capsys, "resume", out, "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert f"{out}.new, the new file of an --overwrite of {out}, has no checkpoint" in err
    assert "start again with --overwrite" in err and Path(checkpoint_path(out)).is_file()
    # starting it again replaces the stale new file and completes
    code, err = run_cli(capsys, "run", _toml(tmp_path, small_config(out, seed=8)), "--overwrite", "--quiet")
    assert code == 0, err
    assert not Path(f"{out}.new").exists() and _kept_step(out) == 100


def _kept_step(out):
    """The step of OUT.h5.ckpt: a complete run's kept last state (run.keep_checkpoint)."""
    return int(read_checkpoint(checkpoint_path(out))[0]["step"])


def _toml(tmp_path, cfg):
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    return path


# ------------------------------------------------------------------------------ a full disk, 2 ranks
@pytest.mark.serial
@pytest.mark.parametrize("limit", ["tmpfs", "file size"])
def test_a_full_disk_stops_a_2_rank_run_loudly(tmp_path, limit):
    """2 ranks writing (collectively) frames that need about 4 MB: on a 2 MB tmpfs (root only) or with
    files capped at 1 MB (RLIMIT_FSIZE), the job ends with exit 1, the error names the file and the OS
    error, and the output is never marked finished."""
    mpirun = mpirun_command(2)
    where = tmp_path
    if limit == "tmpfs":
        where = tmp_path / "disk"
        _small_filesystem(where, "2m")
    try:
        out = where / "o.h5"
        cfg = small_config(out, steps=400, checkpoint_every=0)
        cfg = cfg.replace(system=dataclasses.replace(cfg.system, n=2000),
                          output=dataclasses.replace(cfg.output, snapshot_every=5))
        toml = _toml(tmp_path, cfg)
        program = [MPISIM] if limit == "tmpfs" else [sys.executable, "-c", LIMITED, "1000000"]
        done = subprocess.run([*mpirun, *program, "run", str(toml), "--quiet"],
                              capture_output=True, text=True, env=clean_env())
        assert done.returncode == 1, done.stderr[-3000:]
        errno = "[Errno 28] No space left on device" if limit == "tmpfs" else "[Errno 27] File too large"
        lines = [line for line in done.stderr.splitlines() if line.startswith("mpisim")]
        assert lines and all(f"{out}: write failed: {errno}" in line for line in lines), done.stderr[-3000:]
        try:
            with h5py.File(out, "r") as f:
                assert f["parameters/provenance"].attrs["end_time"] == ""
        except (OSError, KeyError):
            pass    # HDF5 could not write its metadata either: unreadable, and certainly not finished
    finally:
        if limit == "tmpfs":
            _unmount(where)


# A SIGTERM that reaches `mpisim run` during its set-up (before the run installs its handlers): what a
# batch system's time-limit warning does on a loaded node, where start-up takes tens of seconds.
EARLY_SIGTERM = """
import os, signal, sys
import mpisim.simulation as simulation
setup = simulation.Simulation.__init__
def init(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    setup(self, *args, **kwargs)
simulation.Simulation.__init__ = init
from mpisim.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.serial
def test_a_signal_during_start_up_still_ends_in_a_checkpoint(tmp_path):
    out = tmp_path / "o.h5"
    toml = _toml(tmp_path, small_config(out))
    done = subprocess.run([sys.executable, "-c", EARLY_SIGTERM, "run", str(toml), "--quiet"],
                          capture_output=True, text=True, env=clean_env())
    assert done.returncode == 128 + 15, done.stderr[-2000:]
    assert f"mpisim: stopped by SIGTERM at step 0; checkpoint written, continue with: mpisim resume {out}" \
        in done.stderr
    resumed = subprocess.run([MPISIM, "resume", str(out), "--quiet"], capture_output=True, text=True,
                             env=clean_env())
    assert resumed.returncode == 0, resumed.stderr
    with h5py.File(out, "r") as f:
        assert list(f["parameters/provenance"].attrs["resumed_at_step"]) == [0]
        assert f["observables/activity/step"][-1] == 100
