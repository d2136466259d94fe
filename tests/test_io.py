"""H5MD output (mpisim/io/h5md.py, docs/file-format.md): layout, schedule, MDAnalysis, both write paths."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import mpisim
from mpisim import RunConfig, Simulation
from mpisim.config import tomllib
from mpisim.io import h5md, read_frame
from mpisim.core.observables import NAMES
from mpisim.io.format import text

MPISIM = str(Path(sys.executable).parent / "mpisim")


def config(path, dim=3, n=300, system=None, **output):
    out = {"path": str(path), "snapshot_every": 10, "flush_every": 5}
    out.update(output)
    return RunConfig.from_dict({
        "system": {"n": n, "phi": 0.5, "dim": dim, "seed": 3, **(system or {})},
        "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.2},
        "run": {"steps": 30, "log_every": 2, "stop_when_absorbed": False, "progress_seconds": 0.0},
        "output": out,
    })


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.serial
@pytest.mark.parametrize("dim", [2, 3])
def test_layout(tmp_path, dim):
    cfg = config(tmp_path / "o.h5", dim=dim)
    sim = Simulation(cfg).run()
    ids, pos, img = sim.snapshot()
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert text(f["h5md/creator"].attrs["name"]) == "mpisim" and text(f["h5md/author"].attrs["name"])
        assert text(f["h5md/creator"].attrs["version"]) == mpisim.__version__
        part = f["particles/all"]
        box = part["box"]
        assert box.attrs["dimension"] == dim
        assert text(box.attrs["boundary"]) == ["periodic"] * dim
        # H5MD 1.1: author, creator and boundary are fixed-length strings
        for obj, name in ((f["h5md/author"], "name"), (f["h5md/creator"], "name"), (f["h5md/creator"], "version"),
                          (box, "boundary")):
            kind = h5py.h5a.open(obj.id, name.encode()).get_type()
            assert isinstance(kind, h5py.h5t.TypeStringID) and not kind.is_variable_str(), name
        frames = part["position/value"].shape[0]
        assert part["position/value"].shape == (frames, 300, dim) and part["position/value"].dtype == np.float64
        assert part["image/value"].shape == (frames, 300, dim) and part["image/value"].dtype == np.int32
        assert part["box/edges/value"].shape == (frames, dim)
        assert np.array_equal(part["box/edges/value"][-1], sim.box[:dim])
        # step/time shared by position, image and box (hard links, one dataset)
        assert part["image/step"] == part["position/step"] == part["box/edges/step"]
        assert list(part["position/step"][:]) == [0, 10, 20, 30]
        assert np.array_equal(part["position/time"][:], part["position/step"][:].astype(float))
        assert np.array_equal(part["id"][:], np.arange(300))
        assert np.array_equal(part["position/value"][-1], pos) and np.array_equal(part["image/value"][-1], img)
        for name in NAMES:
            g = f[f"observables/{name}"]
            assert np.array_equal(g["step"][:], sim.observables["step"])
            assert np.array_equal(g["value"][:], sim.observables[name])
        params = f["parameters"]
        stored = tomllib.loads(params.attrs["config_toml"])
        assert RunConfig.from_dict(stored) == cfg
        for section, table in cfg.to_dict().items():
            assert set(params[section].attrs) == set(table), section
        prov = params["provenance"].attrs
        for key in ("package_version", "git_commit", "mpi_size", "rank_grid", "host", "start_time", "end_time",
                    "absorbed", "absorbed_step"):
            assert key in prov, key
        assert prov["end_time"] and int(prov["last_step"]) == 30


@pytest.mark.serial
@pytest.mark.parametrize("output, steps", [
    ({"snapshot_every": 7}, 30),
    ({"snapshot_every": 0, "snapshot_per_decade": 3}, 30),
    ({"snapshot_every": 0, "snapshot_steps": [3, 11, 12, 100]}, 30),
    ({"snapshot_every": 0}, 17),
])
def test_snapshot_schedule(tmp_path, output, steps):
    """Frames at the schedule's steps and at the run's last step (run.steps)."""
    cfg = config(tmp_path / "o.h5", **output)
    Simulation(cfg.replace(run=dataclasses.replace(cfg.run, steps=steps))).run()
    expect = {0, steps}
    if output.get("snapshot_every"):
        expect |= {k for k in range(steps + 1) if k % output["snapshot_every"] == 0}
    for k in range(100):
        s = round(10 ** (k / output["snapshot_per_decade"])) if output.get("snapshot_per_decade") else steps + 1
        if s <= steps:
            expect.add(s)
    expect |= {s for s in output.get("snapshot_steps", []) if s <= steps}
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert list(f["particles/all/position/step"][:]) == sorted(expect)


@pytest.mark.serial
def test_species_and_radius(tmp_path):
    cfg = config(tmp_path / "o.h5", dim=2, system={"radii": [0.5, 0.7], "fractions": [0.25, 0.75]})
    Simulation(cfg).run(steps=2)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        sp, rad = f["particles/all/species"][:], f["particles/all/radius"][:]
    assert np.array_equal(np.array([0.5, 0.7])[sp], rad)
    assert np.count_nonzero(sp == 0) == 75


@pytest.mark.serial
def test_mdanalysis_reads_positions_and_box(tmp_path):
    mda = pytest.importorskip("MDAnalysis")
    path = tmp_path / "o.h5"
    Simulation(config(path)).run()
    # Lengths are in particle diameters, which H5MD/MDAnalysis units cannot name: convert_units=False.
    # MDAnalysis infers the atom count only from a group named "trajectory", so it is given (n_atoms).
    u = mda.Universe(str(path), format="H5MD", topology_format="MINIMAL", n_atoms=300, convert_units=False)
    with h5py.File(path, "r") as f:
        pos, edges, steps = (f["particles/all/position/value"][:], f["particles/all/box/edges/value"][:],
                             f["particles/all/position/step"][:])
    assert u.trajectory.n_frames == len(steps)
    for ts in u.trajectory:
        assert np.array_equal(ts.positions, pos[ts.frame].astype(np.float32))
        assert np.array_equal(ts.dimensions, np.r_[edges[ts.frame], 90, 90, 90].astype(np.float32))
        assert ts.data["step"] == steps[ts.frame]
    step, ids, p, img, rad, box = read_frame(path)
    assert step == steps[-1] and np.array_equal(p, pos[-1]) and np.array_equal(box, edges[-1])


@pytest.mark.serial
def test_info_and_overwrite(tmp_path):
    path = tmp_path / "o.h5"
    toml = tmp_path / "c.toml"
    toml.write_text(config(path).to_toml())
    assert subprocess.run([MPISIM, "run", str(toml), "--quiet"], capture_output=True).returncode == 0
    before = path.read_bytes()
    again = subprocess.run([MPISIM, "run", str(toml), "--quiet"], capture_output=True, text=True)
    assert again.returncode == 2 and "--overwrite" in again.stderr and path.read_bytes() == before
    info = subprocess.run([MPISIM, "info", str(path)], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    for needle in ("N = 300", "frames      4", "finished at step 30", "absorbed", "MB", "kick_size = 0.2"):
        assert needle in info.stdout, needle


@pytest.mark.mpi(min_size=2)
def test_collective_and_gathered_identical(tmp_path, monkeypatch):
    """Parallel (mpio) and gathered-to-rank-0 writes give the same datasets."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    if not h5md.parallel_h5py():
        pytest.skip("h5py without MPI: only the gathered path exists")
    base = Path(comm.bcast(str(tmp_path), root=0))
    paths = {}
    for mode in (None, False):
        monkeypatch.setattr(h5md, "COLLECTIVE", mode)
        paths[mode] = base / f"o_{mode}.h5"
        sim = Simulation(config(paths[mode], n=600), comm=comm).run()
    last = sim.snapshot()[1]
    comm.Barrier()
    if comm.rank == 0:
        a, b = datasets(paths[None]), datasets(paths[False])
        assert sorted(a) == sorted(b)
        for name in a:
            assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name
        with h5py.File(paths[None], "r") as f, h5py.File(paths[False], "r") as g:
            assert f["parameters/provenance"].attrs["h5py_mpio"] and not g["parameters/provenance"].attrs["h5py_mpio"]
            assert np.array_equal(f["particles/all/position/value"][-1], last)
