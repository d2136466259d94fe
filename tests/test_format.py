"""One file format (mpisim/io/format.py, docs/file-format.md): the serial and the parallel writer lay a
file out alike, files of the old layout read and resume, MDAnalysis opens the files (its own recipe, and
the one-call helper in 2d and 3d), and ``mpisim export --format gsd`` reads back with gsd.hoomd."""
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from mpisim import RunConfig, Simulation
from mpisim.io import format as fmt
from mpisim.io.h5md import SERIES

MPISIM = str(Path(sys.executable).parent / "mpisim")


def config(path, dim=3, n=120, steps=30, log_every=2, snapshot_every=5, sofk_every=0, species=False, **run):
    system = {"n": n, "phi": 0.5, "dim": dim, "seed": 4}
    if species:
        system.update(radii=[0.5, 0.6], fractions=[0.5, 0.5])
    return RunConfig.from_dict({
        "system": system,
        "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.2},
        "run": {"steps": steps, "log_every": log_every, "stop_when_absorbed": False, "progress_seconds": 0.0,
                **run},
        "output": {"path": str(path), "snapshot_every": snapshot_every, "flush_every": 5},
        "structure_factor": {"every": sofk_every, "k_max": 3.0, "bins": 5},
    })


def layout(path):
    """{path: (kind, shape, dtype, attribute names)} of every object of a file."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            kind = "dataset" if isinstance(obj, h5py.Dataset) else "group"
            out[name] = (kind, getattr(obj, "shape", None), getattr(obj, "dtype", None), sorted(obj.attrs))
        f.visititems(visit)
    return out


def make_legacy(path):
    """Turn a file into the layout written before the format module: variable-length strings in /h5md and
    box/boundary, S(k) under /observables. (Those are the only differences of the old writer's files.)"""
    with h5py.File(path, "r+") as f:
        for obj, name in ((f["h5md/author"], "name"), (f["h5md/creator"], "name"), (f["h5md/creator"], "version")):
            obj.attrs[name] = fmt.text(obj.attrs[name])      # a str attribute: variable-length
        box = f[fmt.BOX]
        box.attrs["boundary"] = np.array(fmt.text(box.attrs["boundary"]), dtype=h5py.string_dtype())
        if fmt.STRUCTURE_FACTOR in f:
            f.move(fmt.STRUCTURE_FACTOR, fmt.LEGACY_STRUCTURE_FACTOR)


# ----------------------------------------------------------------------------------------- one layout
@pytest.mark.serial
@pytest.mark.parametrize("dim, species", [(2, True), (3, False)])
def test_serial_writer_lays_out_like_the_engine(tmp_path, dim, species):
    """The same run written by the simulation (parallel writer) and by SerialWriter (what the synthetic
    files use): the same objects, shapes, dtypes and attribute names, and equal data."""
    path = tmp_path / "engine.h5"
    cfg = config(path, dim=dim, species=species, sofk_every=10)
    Simulation(cfg).run()
    with h5py.File(path, "r") as f:
        part = f[fmt.PARTICLES]
        frames = [(s, part["position/value"][i], part["image/value"][i]) for i, s in enumerate(fmt.frame_steps(f))]
        series = {name: fmt.read_series(f, name) for name in SERIES}
        sk = fmt.read_structure_factor(f)
        static = part["radius"][()], (part["species"][()] if species else None)
        provenance = dict(f[fmt.PROVENANCE].attrs)
        box = fmt.read_box(f)
    copy = tmp_path / "serial.h5"
    with fmt.SerialWriter(copy, cfg.system.n, dim, box, series=SERIES, config_toml=cfg.to_toml(),
                          sections=cfg.to_dict(), provenance=provenance, with_species=species) as out:
        out.write_static(*static)
        for step, x, image in frames:
            out.append_frame(step, x, image)
        out.append_series(series["activity"][0], {name: v for name, (_, v) in series.items()})
        for i, step in enumerate(sk["step"]):
            row = SimpleNamespace(step=step, S=sk["S"][i], k=sk["k"], k_mean=sk["k_mean"], counts=sk["count"])
            out.append_structure_factor(row, sk["attrs"])
    a, b = layout(path), layout(copy)
    assert a == b
    with h5py.File(path, "r") as f, h5py.File(copy, "r") as g:
        for name, (kind, *_) in a.items():
            if kind == "dataset":
                np.testing.assert_array_equal(f[name][()], g[name][()], err_msg=name)
        assert f[f"{fmt.IMAGE}/step"] == f[f"{fmt.EDGES}/step"] == f[f"{fmt.POSITION}/step"]
        assert g[f"{fmt.IMAGE}/step"] == g[f"{fmt.EDGES}/step"] == g[f"{fmt.POSITION}/step"]
        assert fmt.text(g["h5md/creator"].attrs["name"]) == "mpisim"


def test_format_and_viewers_need_no_mpi():
    """analysis imports these (tests/test_layers.py allows mpisim.io): they must not reach the MPI layer."""
    from tests.test_layers import TOP, imports_of
    for name in ("format.py", "viewers.py"):
        names = imports_of(TOP / "mpisim" / "io" / name)
        assert not {n for n in names if n.split(".")[0] == "mpi4py" or n.startswith(("mpisim.parallel",
                                                                                       "mpisim.io.h5md"))}, name


def test_synthetic_files_use_the_layout(tmp_path):
    from analysis.synthetic import write_run
    p = write_run(tmp_path / "s.h5", n=30, dim=2, positions=np.random.default_rng(1).random((3, 30, 2)) * 5,
                  box=np.full(2, 5.0))
    with h5py.File(p, "r") as f:
        assert fmt.is_output(f) and fmt.dimension(f) == 2 and fmt.frame_count(f) == 3
        assert fmt.text(f[fmt.BOX].attrs["boundary"]) == ["periodic", "periodic"]
        assert f[f"{fmt.EDGES}/value"].shape == (3, 2) and f[f"{fmt.IMAGE}/step"] == f[f"{fmt.POSITION}/step"]
        assert fmt.series_names(f) == ["active_pairs", "activity", "energy", "msd"]
        assert f[fmt.observable_path("active_pairs")]["value"].dtype == np.int64


@pytest.mark.parametrize("spec, expect", [("all", [0, 1, 2, 3, 4]), ("0,-1", [0, 4]), ("1:4:2", [1, 3])])
def test_parse_frames(spec, expect):
    assert fmt.parse_frames(spec, 5) == expect


@pytest.mark.parametrize("spec", ["5", "x", "::0", "3:1"])
def test_parse_frames_refuses(spec):
    with pytest.raises(ValueError, match="--frames"):
        fmt.parse_frames(spec, 5)


# ------------------------------------------------------------------------------------- older files
@pytest.mark.serial
def test_old_layout_reads_and_resumes(tmp_path):
    """A run of the old layout (S(k) under /observables, variable-length strings) killed after a checkpoint
    reads with analysis and resumes; the resumed file equals an uninterrupted run's, S(k) now at the root."""
    from analysis.io import load_run

    def cfg(name):
        return config(tmp_path / name, dim=2, steps=60, log_every=5, snapshot_every=10, sofk_every=20,
                      checkpoint_every=25)

    Simulation(cfg("ref.h5")).run()
    Simulation(cfg("cut.h5")).run(steps=45)
    make_legacy(tmp_path / "cut.h5")
    run = load_run(tmp_path / "cut.h5")
    assert "structure_factor" not in run.observables and run.has_structure_factor
    assert list(run.structure_factor()["step"]) == [0, 20, 40]
    assert run.provenance["package_version"] and run.frame_steps[0] == 0
    Simulation.resume(cfg("cut.h5")).run()
    with h5py.File(tmp_path / "ref.h5", "r") as f, h5py.File(tmp_path / "cut.h5", "r") as g:
        assert fmt.LEGACY_STRUCTURE_FACTOR not in g and list(g[f"{fmt.STRUCTURE_FACTOR}/step"]) == [0, 20, 40, 60]
        for name in ("structure_factor/value", f"{fmt.POSITION}/value", f"{fmt.IMAGE}/value",
                     fmt.observable_path("energy") + "/value"):
            np.testing.assert_array_equal(f[name][()], g[name][()], err_msg=name)
        assert fmt.text(g["h5md/author"].attrs["name"]) == fmt.text(f["h5md/author"].attrs["name"])


@pytest.mark.mpi(min_size=2)
def test_old_layout_resumes_in_parallel(tmp_path):
    """The old layout's S(k) group is moved by every writing rank (collective metadata on mpio) on resume."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    base = Path(comm.bcast(str(tmp_path), root=0))

    def cfg(name):
        return config(base / name, dim=3, n=300, steps=60, log_every=5, snapshot_every=10, sofk_every=20,
                      checkpoint_every=25)

    Simulation(cfg("ref.h5"), comm=comm).run()
    Simulation(cfg("cut.h5"), comm=comm).run(steps=45)
    if comm.rank == 0:
        make_legacy(base / "cut.h5")
    comm.Barrier()
    Simulation.resume(cfg("cut.h5"), comm=comm).run()
    comm.Barrier()
    if comm.rank == 0:
        with h5py.File(base / "ref.h5", "r") as f, h5py.File(base / "cut.h5", "r") as g:
            assert fmt.LEGACY_STRUCTURE_FACTOR not in g
            for name in ("structure_factor/step", "structure_factor/value", f"{fmt.POSITION}/value"):
                np.testing.assert_array_equal(f[name][()], g[name][()], err_msg=name)


@pytest.mark.serial
def test_sofk_command_replaces_an_old_layout_group(tmp_path):
    path = tmp_path / "o.h5"
    Simulation(config(path, sofk_every=10)).run()
    make_legacy(path)
    refused = subprocess.run([MPISIM, "sofk", str(path), "--k-max", "3", "--bins", "4"], capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "observables/structure_factor" in refused.stderr
    done = subprocess.run([MPISIM, "sofk", str(path), "--k-max", "3", "--bins", "4", "--frames", "0,-1",
                           "--overwrite"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with h5py.File(path, "r") as f:
        assert fmt.LEGACY_STRUCTURE_FACTOR not in f and f[f"{fmt.STRUCTURE_FACTOR}/value"].shape == (2, 4)


# ------------------------------------------------------------------------------------------ MDAnalysis
@pytest.mark.serial
def test_mdanalysis_recipe_on_a_file_with_structure_factor(tmp_path):
    """MDAnalysis's documented H5MD recipe on a file whose S(k) has fewer rows than there are frames:
    S(k) lives outside /observables, which MDAnalysis indexes by frame number."""
    mda = pytest.importorskip("MDAnalysis")
    path = tmp_path / "o.h5"
    Simulation(config(path, sofk_every=15)).run()
    with h5py.File(path, "r") as f:
        pos, steps = f[f"{fmt.POSITION}/value"][()], fmt.frame_steps(f)
        assert len(fmt.read_structure_factor(f)["step"]) < len(steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # MINIMAL topology: nothing to guess masses from
        u = mda.Universe(str(path), format="H5MD", topology_format="MINIMAL", n_atoms=120, convert_units=False)
    assert u.trajectory.n_frames == len(steps) == 7
    for ts in u.trajectory:
        assert np.array_equal(ts.positions, pos[ts.frame].astype(np.float32))
        assert ts.data["step"] == steps[ts.frame] and "structure_factor" not in ts.data


@pytest.mark.serial
@pytest.mark.parametrize("dim", [2, 3])
def test_universe_helper(tmp_path, dim):
    """analysis.io.universe on files that MDAnalysis's recipe cannot read: 2d, and more frames than rows of
    the observables (logged every 10 steps, frames every 5); S(k) stored too."""
    pytest.importorskip("MDAnalysis")
    from analysis.io import universe
    path = tmp_path / "o.h5"
    Simulation(config(path, dim=dim, log_every=10, snapshot_every=5, sofk_every=15, species=True)).run()
    with h5py.File(path, "r") as f:
        pos, steps, box = f[f"{fmt.POSITION}/value"][()], fmt.frame_steps(f), fmt.read_box(f)
        radius, species = f[fmt.RADIUS][()], f[fmt.SPECIES][()]
        assert len(fmt.read_series(f, "activity")[0]) < len(steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        u = universe(path)
    assert u.trajectory.n_frames == len(steps) == 7 and u.atoms.n_atoms == 120
    np.testing.assert_array_equal(u.atoms.radii, radius)
    np.testing.assert_array_equal(u.atoms.types, np.array(["A", "B"])[species])
    expect_box = np.r_[box, [1.0] * (3 - dim), 90, 90, 90].astype(np.float32)
    for ts in u.trajectory:
        want = np.zeros((120, 3), dtype=np.float32)
        want[:, :dim] = pos[ts.frame]
        assert np.array_equal(ts.positions, want)
        assert np.array_equal(ts.dimensions, expect_box) and ts.data["step"] == steps[ts.frame]
    u.trajectory[3]
    assert u.trajectory.ts.data["step"] == steps[3]


# --------------------------------------------------------------------------------------------- export
@pytest.mark.serial
@pytest.mark.parametrize("dim", [2, 3])
def test_export_gsd_reads_back(tmp_path, dim):
    gsd_hoomd = pytest.importorskip("gsd.hoomd")
    path = tmp_path / "o.h5"
    Simulation(config(path, dim=dim, species=True)).run()
    done = subprocess.run([MPISIM, "export", str(path), "--format", "gsd", "--frames", "0,2:"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    with h5py.File(path, "r") as f:
        steps, box = fmt.frame_steps(f), fmt.read_box(f)
        pos, img = f[f"{fmt.POSITION}/value"][()], f[f"{fmt.IMAGE}/value"][()]
        radius, species = f[fmt.RADIUS][()], f[fmt.SPECIES][()]
    chosen = [0, 2, 3, 4, 5, 6]
    with gsd_hoomd.open(str(tmp_path / "o.gsd"), "r") as traj:
        assert len(traj) == len(chosen)
        for frame, fr in zip(traj, chosen):
            c, p = frame.configuration, frame.particles
            assert c.step == steps[fr] and c.dimensions == dim
            np.testing.assert_array_equal(c.box, np.float32(np.r_[box, [0.0] * (3 - dim), 0, 0, 0]))
            assert p.N == 120 and p.types == ["A", "B"]
            np.testing.assert_array_equal(p.typeid, species)
            np.testing.assert_array_equal(p.diameter, (2 * radius).astype(np.float32))
            L = np.float32(box)
            assert np.all(p.position[:, :dim] >= -L / 2) and np.all(p.position[:, :dim] < L / 2)
            if dim == 2:
                assert np.all(p.position[:, 2] == 0) and np.all(p.image[:, 2] == 0)
            # the same unwrapped positions, shifted by half a box (HOOMD's box is centred on the origin)
            unwrapped = p.position[:, :dim] + p.image[:, :dim] * box + box / 2
            np.testing.assert_allclose(unwrapped, pos[fr] + img[fr] * box, atol=1e-5 * box.max())


def test_hoomd_frame_keeps_rounded_coordinates_in_the_box():
    pytest.importorskip("gsd.hoomd")
    from mpisim.io.viewers import hoomd_frame
    box = np.array([10.0, 3.0])
    x = np.array([[np.nextafter(10.0, 0.0), 1.0], [0.0, 2.0]])     # x - L/2 rounds to +L/2 in float32
    frame = hoomd_frame(7, box, x, np.array([[2, 0], [0, 0]]), [1.0, 1.0], [0, 0], ["A"])
    assert frame.particles.position[0, 0] == np.float32(-5.0) and frame.particles.image[0, 0] == 3
    assert frame.particles.position[1, 0] == np.float32(-5.0) and frame.particles.image[1, 0] == 0
    assert frame.configuration.box[2] == 0 and frame.configuration.dimensions == 2


@pytest.mark.serial
def test_export_refuses_bad_requests(tmp_path):
    path = tmp_path / "o.h5"
    Simulation(config(path, steps=10)).run()
    (tmp_path / "taken.gsd").write_text("keep")
    for args, needle in ((["--frames", "7"], "--frames"), (["-o", str(tmp_path / "taken.gsd")], "--overwrite"),
                         (["-o", str(tmp_path / "no" / "x.gsd")], "does not exist"),
                         (["-o", str(path)], "input file")):
        bad = subprocess.run([MPISIM, "export", str(path), "--format", "gsd", *args], capture_output=True,
                             text=True)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and needle in bad.stderr, bad.stderr
    bad = subprocess.run([MPISIM, "export", str(tmp_path / "none.h5"), "--format", "gsd"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "none.h5" in bad.stderr
    assert (tmp_path / "taken.gsd").read_text() == "keep" and not (tmp_path / "o.gsd").exists()
