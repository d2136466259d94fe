"""Distributed S(k) (mpisim/parallel/sofk.py): the analysis package and freud as references, a lattice (Bragg
peaks), an ideal gas (S = 1), the NUFFT against the exact sums, exact rank-count independence of the direct
sums (pytest-mpi), the run's on-the-fly measurement, refused k ranges and the ``mpisim sofk`` command."""
import subprocess
import sys

import h5py
import numpy as np
import pytest

from analysis.structure_factor import StructureFactor
from mpisim.core.sofk import AUTO_DIRECT_MAX_K, fixed_to_float, nufft_sums, sofk_sums, sofk_sums_fixed
from mpisim.config import ConfigError, RunConfig
from mpisim.cli import parse_frames, sofk_frames
from mpisim.parallel.sofk import StructureFactorMeasurement

TWO_PI = 2 * np.pi


def gas(n, box, seed):
    return np.random.default_rng(seed).random((n, len(box))) * box


def lattice(cells, spacing, dim, offset):
    g = np.arange(cells) * spacing + offset
    return np.stack(np.meshgrid(*([g] * dim), indexing="ij"), -1).reshape(-1, dim)


def small_config(tmp_path, every=5, **sofk):
    return {"system": {"n": 400, "phi": 0.3, "dim": 2, "seed": 3},
            "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.2},
            "run": {"steps": 10, "log_every": 5, "progress_seconds": 0.0},
            "output": {"path": str(tmp_path / "run.h5"), "snapshot_every": 5},
            "structure_factor": {"every": every, "k_max": 3.0, "bins": 6, **sofk}}


# ------------------------------------------------------------------------------------------ serial
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("octant", [False, True])
def test_direct_equals_analysis_package(dim, octant, serial_comm):
    box = np.array([9.0, 10.0, 11.0][:dim])
    x = gas(3000, box, dim)
    ref = StructureFactor(bins=9, k_max=3.5, k_min=0.2, octant=octant).compute(x, box)
    got = StructureFactorMeasurement(box, dim, len(x), k_max=3.5, bins=9, k_min=0.2, octant=octant,
                                     comm=serial_comm).compute(x)
    np.testing.assert_array_equal(got.counts, ref.k_counts)
    np.testing.assert_allclose(got.k, ref.bin_centers, rtol=1e-14)
    np.testing.assert_allclose(got.S, ref.S_k, rtol=1e-10)


@pytest.mark.parametrize("dim", [2, 3])
def test_fixed_sums_are_exact_under_any_split(dim, serial_comm):
    box = np.full(dim, 8.0)
    x = gas(2000, box, 11)
    _, whole = sofk_sums_fixed(x, box, 4.0)
    _, a = sofk_sums_fixed(x[:777], box, 4.0)
    _, b = sofk_sums_fixed(x[777:], box, 4.0)
    for u, v in zip(fixed_to_float(a + b), fixed_to_float(whole)):   # limbs differ, values do not
        np.testing.assert_array_equal(u, v)
    meas = StructureFactorMeasurement(box, dim, len(x), k_max=4.0, bins=5, comm=serial_comm)
    perm = np.random.default_rng(0).permutation(len(x))
    np.testing.assert_array_equal(meas.compute(x[perm]).S, meas.compute(x).S)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("method", ["direct", "nufft"])
def test_simple_cubic_lattice_bragg_peaks(dim, method, serial_comm):
    cells, a = 12, 1.0
    box = np.full(dim, cells * a)
    x = lattice(cells, a, dim, offset=0.37)
    meas = StructureFactorMeasurement(box, dim, len(x), k_max=7.0, bins=14, method=method, comm=serial_comm)
    got = meas.compute(x)
    # Bragg vectors: every n_a a multiple of the number of cells (k = 2 pi m / a); there S = N
    bragg = np.all(meas.nvecs % cells == 0, axis=1)
    kmag = np.linalg.norm(meas.kvecs, axis=1)
    idx = np.searchsorted(meas.edges, kmag, side="right") - 1
    n_bragg = np.bincount(idx[bragg], minlength=14)
    assert n_bragg.sum() == dim                       # the |k| = 2 pi / a shell, half space
    expect = len(x) * n_bragg / np.maximum(got.counts, 1)
    ok = got.counts > 0
    # nufft: finufft's tolerance is relative to the l2 norm of all modes, here dominated by the peaks
    rtol, atol = (1e-12, 1e-20) if method == "direct" else (1e-5, 1e-5)
    np.testing.assert_allclose(got.S[ok], expect[ok], rtol=rtol, atol=atol)


@pytest.mark.parametrize("method", ["direct", "nufft"])
def test_ideal_gas_is_one(method, serial_comm):
    box = np.full(3, 16.0)
    x = gas(20000, box, 5)
    got = StructureFactorMeasurement(box, 3, len(x), k_max=3.0, k_min=0.8, bins=6, method=method,
                                     comm=serial_comm).compute(x)
    # S(k) of a Poisson configuration: exponential with mean 1 per +-k pair
    assert np.all(np.abs(got.S - 1) < 5 / np.sqrt(got.counts))


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("octant", [False, True])
@pytest.mark.parametrize("tolerance", [1e-4, 1e-6, 1e-9])
def test_nufft_agrees_with_exact_sums(dim, octant, tolerance):
    """Per wave vector, in a non-cubic box, unwrapped positions of a structured configuration (a lattice
    with displacements of 0.5: S ~ k^2 at small k, a smeared Bragg shell): |S_nufft - S_exact| stays
    within a few times the tolerance (docs/structure-factor.md: measured max 6.6 x tolerance)."""
    box = np.array([13.0, 12.0, 11.0][:dim])
    cells = [13, 12, 11][:dim]
    sites = np.stack(np.meshgrid(*[np.arange(c, dtype=float) for c in cells], indexing="ij"), -1).reshape(-1, dim)
    x = sites + np.random.default_rng(dim).normal(0, 0.5, sites.shape) + 3 * box   # unwrapped
    kv, re, im = sofk_sums(x, box, 4.0, octant)
    kv2, re2, im2 = nufft_sums(x, box, 4.0, octant, tolerance)
    np.testing.assert_array_equal(kv2, kv)
    exact = (re * re + im * im) / len(x)
    err = np.abs((re2 * re2 + im2 * im2) / len(x) - exact)
    assert err.max() < 10 * tolerance, (err.max(), tolerance)
    # and finufft's own guarantee: the l2 error of the amplitudes relative to their l2 norm
    assert np.linalg.norm(np.hypot(re2 - re, im2 - im)) < 10 * tolerance * np.linalg.norm(np.hypot(re, im))


def test_auto_is_direct_for_small_k_sets_and_nufft_beyond(serial_comm):
    box = np.full(3, 20.0)
    small = StructureFactorMeasurement(box, 3, 500, comm=serial_comm)          # k_max = 0: eight shells
    assert small.method == "direct" and len(small.kvecs) <= AUTO_DIRECT_MAX_K[3]
    large = StructureFactorMeasurement(box, 3, 500, k_max=6.3, comm=serial_comm)
    assert large.method == "nufft" and len(large.kvecs) > AUTO_DIRECT_MAX_K[3]
    assert large.attrs()["tolerance"] == 1e-6 and small.attrs()["tolerance"] == 0.0
    x = gas(500, box, 1)
    exact = StructureFactorMeasurement(box, 3, 500, k_max=6.3, method="direct", comm=serial_comm)
    np.testing.assert_allclose(large.values(x), exact.values(x), rtol=0, atol=1e-5)


def test_agrees_with_freud(serial_comm):
    freud = pytest.importorskip("freud")
    L = 10.0
    box = np.full(3, L)
    x = gas(1200, box, 8)
    ref = freud.diffraction.StaticStructureFactorDirect(bins=12, k_max=4.5, k_min=0.3)
    fbox = freud.box.Box.cube(L)
    ref.compute((fbox, fbox.wrap(x - L / 2)))
    got = StructureFactorMeasurement(box, 3, len(x), k_max=4.5, k_min=0.3, bins=12, octant=True,
                                     comm=serial_comm).compute(x)
    ok = np.isfinite(ref.S_k)
    np.testing.assert_array_equal(np.isfinite(got.S), ok)
    np.testing.assert_allclose(got.S[ok], ref.S_k[ok], rtol=2e-4, atol=1e-5)  # freud: single precision


@pytest.mark.parametrize("k_min,k_max", [(0.0, 0.5), (0.55, 0.6)])
def test_refuses_k_range_without_wave_vectors(k_min, k_max, serial_comm):
    """L = 10: 2 pi / L = 0.628 is the smallest |k|, and none lies in [0.55, 0.6] either."""
    with pytest.raises(ValueError, match=r"k_max: .*2\*pi/L = 0\.6283"):
        StructureFactorMeasurement(np.full(3, 10.0), 3, 10, k_min=k_min, k_max=k_max, comm=serial_comm)


@pytest.mark.parametrize("spec,expect", [("all", [0, 1, 2, 3, 4]), ("0,-1", [0, 4]), ("1:4:2", [1, 3]),
                                         (":2", [0, 1])])
def test_parse_frames(spec, expect):
    assert parse_frames(spec, 5) == expect


@pytest.mark.parametrize("spec", ["5", "-6", "x", "1:2:0", "3:1"])
def test_parse_frames_rejects(spec):
    with pytest.raises(ValueError, match="--frames"):
        parse_frames(spec, 5)


@pytest.mark.parametrize("key,value", [("every", -1), ("bins", 0), ("k_max", -1.0), ("k_min", 5.0),
                                       ("method", "fft"), ("tolerance", 0.0), ("tolerance", 1.5),
                                       ("steps", [3, -2])])
def test_config_rejects(tmp_path, key, value):
    cfg = small_config(tmp_path)
    cfg["structure_factor"][key] = value
    with pytest.raises(ConfigError, match=f"structure_factor.{key}"):
        RunConfig.from_dict(cfg)


@pytest.mark.parametrize("key,value", [("method", "grid"), ("mesh", 360), ("assignment", "cic"),
                                       ("interlace", False)])
def test_config_refuses_the_retired_grid_method_pointing_to_nufft(tmp_path, key, value):
    cfg = small_config(tmp_path)
    cfg["structure_factor"][key] = value
    with pytest.raises(ConfigError, match=f"structure_factor.{key}: .*nufft"):
        RunConfig.from_dict(cfg)


def test_config_of_files_before_the_retirement_still_reads(tmp_path):
    """Files written with the grid method's keys at their defaults (every config before) still load and
    resume; the keys are dropped."""
    cfg = small_config(tmp_path, method="direct", mesh=0, assignment="tsc", interlace=True)
    read = RunConfig.from_dict(cfg)
    assert read.structure_factor.method == "direct" and "mesh" not in read.to_toml()


def test_config_round_trips_and_defaults_off(tmp_path):
    cfg = RunConfig.from_dict(small_config(tmp_path, steps=[3]))
    assert cfg.structure_factor.steps == (3,) and cfg.structure_factor.every == 5
    assert "[structure_factor]" in cfg.to_toml()
    plain = small_config(tmp_path)
    del plain["structure_factor"]
    assert RunConfig.from_dict(plain).structure_factor.every == 0


def test_run_writes_structure_factor(tmp_path, serial_comm):
    from mpisim.simulation import Simulation
    sim = Simulation.from_config(small_config(tmp_path, steps=[7]), comm=serial_comm)
    sim.run()
    assert [r.step for r in sim.structure_factor] == [0, 5, 7, 10]
    with h5py.File(tmp_path / "run.h5", "r") as f:
        g = f["structure_factor"]
        np.testing.assert_array_equal(g["step"][:], [0, 5, 7, 10])
        value, counts, k = g["value"][:], g["count"][:], g["k"][:]
        assert g.attrs["method"] == "direct" and value.shape == (4, 6)
        frames = f["particles/all/position/step"][:]
        pos = f["particles/all/position/value"][:]
        box = f["particles/all/box/edges/value"][0]
    ref = StructureFactor(bins=6, k_max=3.0).compute(pos[list(frames).index(10)], box)
    np.testing.assert_array_equal(counts, ref.k_counts)
    np.testing.assert_allclose(k, ref.bin_centers)
    np.testing.assert_allclose(value[3], ref.S_k, rtol=1e-10)


def test_run_rejects_empty_k_range_before_writing(tmp_path, serial_comm):
    """L = 32.4 (N = 400, phi = 0.3, 2d): no wave vector below 2 pi / L = 0.194."""
    from mpisim.simulation import Simulation
    with pytest.raises(ConfigError, match=r"structure_factor.k_max: .*2\*pi/L = 0\.194"):
        Simulation.from_config(small_config(tmp_path, k_max=0.1), comm=serial_comm)
    assert not (tmp_path / "run.h5").exists()


@pytest.mark.serial
def test_cli_run_refuses_empty_k_range(tmp_path):
    cfg = RunConfig.from_dict(small_config(tmp_path, k_max=0.1, k_min=0.05))
    path = tmp_path / "cfg.toml"
    path.write_text(cfg.to_toml())
    bad = _mpisim("run", path)
    assert bad.returncode == 2 and "structure_factor.k_max" in bad.stderr and "2*pi/L" in bad.stderr, bad.stderr
    assert bad.stderr.count("\n") == 1 and not (tmp_path / "run.h5").exists()


@pytest.mark.serial
def test_resume_truncates_and_remeasures(tmp_path):
    """Rows measured after the checkpoint (step 37 > 25) are dropped on resume and measured again: the
    group equals that of an uninterrupted run."""
    from mpisim.simulation import Simulation

    def cfg(name):
        c = small_config(tmp_path, every=20, steps=[37])
        c["output"]["path"] = str(tmp_path / name)
        c["run"].update(steps=60, checkpoint_every=25, stop_when_absorbed=False)
        c["system"]["phi"] = 0.6
        return RunConfig.from_dict(c)

    Simulation(cfg("ref.h5")).run()
    Simulation(cfg("cut.h5")).run(steps=45)
    with h5py.File(tmp_path / "cut.h5", "r") as f:
        assert list(f["structure_factor/step"][:]) == [0, 20, 37, 40]
    Simulation.resume(cfg("cut.h5")).run()
    with h5py.File(tmp_path / "ref.h5", "r") as f, h5py.File(tmp_path / "cut.h5", "r") as g:
        a, b = f["structure_factor"], g["structure_factor"]
        np.testing.assert_array_equal(b["step"][:], [0, 20, 37, 40, 60])
        for name in ("step", "time", "value", "k", "count"):
            np.testing.assert_array_equal(a[name][:], b[name][:])


def _mpisim(*args):
    return subprocess.run([sys.executable, "-m", "mpisim", *map(str, args)], capture_output=True, text=True)


@pytest.mark.serial
def test_cli_sofk(tmp_path, serial_comm):
    from mpisim.simulation import Simulation
    Simulation.from_config(small_config(tmp_path), comm=serial_comm).run()
    run = tmp_path / "run.h5"
    with h5py.File(run, "r") as f:
        stored = f["structure_factor/value"][:]
    # the group exists: refuse without --overwrite, write nothing
    bad = _mpisim("sofk", run, "--k-max", 3.0, "--bins", 6)
    assert bad.returncode == 2 and "--overwrite" in bad.stderr
    out = tmp_path / "sofk.h5"
    for args in (["--frames", "9"], ["--k-min", "4"], ["--tolerance", "2"]):
        bad = _mpisim("sofk", run, "-o", out, "--k-max", 3.0, *args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and not out.exists(), bad.stderr
    bad = _mpisim("sofk", run, "-o", out, "--k-max", 0.1)       # below 2 pi / L = 0.194
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and not out.exists(), bad.stderr
    assert "--k-max" in bad.stderr and "2*pi/L = 0.194" in bad.stderr
    ok = _mpisim("sofk", run, "-o", out, "--k-max", 3.0, "--bins", 6, "--frames", "0:3")
    assert ok.returncode == 0, ok.stderr
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["structure_factor/value"][:], stored)
        np.testing.assert_array_equal(f["structure_factor/step"][:], [0, 5, 10])
    ok = _mpisim("sofk", run, "--k-max", 2.0, "--bins", 4, "--frames", "-1", "--overwrite")
    assert ok.returncode == 0, ok.stderr
    with h5py.File(run, "r") as f:
        assert f["structure_factor/value"].shape == (1, 4)


# ---------------------------------------------------------------------------------------------- MPI
@pytest.mark.mpi
@pytest.mark.parametrize("dim", [2, 3])
def test_rank_count_independent(dim):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    box = np.full(dim, 12.0)
    x = gas(5000, box, 21)
    mine = x[comm.rank::comm.size]                     # any split, any order
    kw = dict(k_max=4.0, bins=8, method="direct")
    par = StructureFactorMeasurement(box, dim, len(x), comm=comm, **kw).compute(mine[::-1])
    ser = StructureFactorMeasurement(box, dim, len(x), comm=MPI.COMM_SELF, **kw).compute(x)
    np.testing.assert_array_equal(par.S, ser.S)
    np.testing.assert_array_equal(par.counts, ser.counts)


@pytest.mark.mpi
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("tolerance", [1e-6, 1e-9])
def test_nufft_on_ranks_agrees_with_exact_sums(dim, tolerance):
    """Each rank's NUFFT amplitudes, summed over ranks: within the tolerance of the exact sums, and equal
    to one rank's result up to rounding (docs/structure-factor.md: 1.4e-12 measured at N = 1e5)."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    box = np.full(dim, 12.0)
    x = gas(5000, box, 22)
    mine = x[comm.rank::comm.size]
    kw = dict(k_max=4.0, bins=8, tolerance=tolerance)
    par = StructureFactorMeasurement(box, dim, len(x), comm=comm, method="nufft", **kw).values(mine)
    one = StructureFactorMeasurement(box, dim, len(x), comm=MPI.COMM_SELF, method="nufft", **kw).values(x)
    exact = StructureFactorMeasurement(box, dim, len(x), comm=comm, method="direct", **kw).values(mine)
    assert np.abs(par - exact).max() < 10 * tolerance
    np.testing.assert_allclose(par, one, rtol=0, atol=1e-11)
    np.testing.assert_array_equal(comm.bcast(par, root=0), par)    # the same on every rank


@pytest.mark.mpi
def test_mpi_run_and_file_equal_serial(tmp_path_factory):
    from mpi4py import MPI
    from mpisim.simulation import Simulation
    comm = MPI.COMM_WORLD
    tmp = comm.bcast(str(tmp_path_factory.mktemp("sofk")) if comm.rank == 0 else None, root=0)
    from pathlib import Path
    cfg = small_config(Path(tmp))
    par = Simulation.from_config(cfg, comm=comm).run()
    ser = Simulation.from_config(cfg, comm=MPI.COMM_SELF, write=False).run()
    assert [r.step for r in par.structure_factor] == [r.step for r in ser.structure_factor]
    for a, b in zip(par.structure_factor, ser.structure_factor):
        np.testing.assert_array_equal(a.S, b.S)
    # saved frames, collective reads of rank blocks, equal to the on-the-fly values
    _, res = sofk_frames(cfg["output"]["path"], [0, 1, 2], comm=comm, k_max=3.0, bins=6)
    for a, b in zip(res, ser.structure_factor):
        assert a.step == b.step
        np.testing.assert_array_equal(a.S, b.S)


# ---------------------------------------------------------------------------------------- d = 4 to 6
@pytest.mark.parametrize("dim", [4, 5, 6])
@pytest.mark.parametrize("octant", [False, True])
def test_wave_vectors_in_higher_dimensions(dim, octant):
    """The k set of d > 3: the half space is every +-k pair of the ball 0 < |k| <= k_max once (the first
    non-zero n_a positive); the octant every n with all n_a >= 0."""
    from mpisim.core.sofk import wave_vectors
    box = np.array([3.0, 3.5, 4.0, 3.2, 3.7, 3.3][:dim])
    k_max = 4.5
    kvecs, nvecs = wave_vectors(box, k_max, octant)
    m = np.floor(k_max * box / TWO_PI).astype(int)
    grid = np.stack(np.meshgrid(*[np.arange(-q, q + 1) for q in m], indexing="ij"), -1).reshape(-1, dim)
    k2 = np.sum((grid * TWO_PI / box) ** 2, axis=1)
    ball = {tuple(n) for n in grid[(k2 > 0) & (k2 <= k_max ** 2 * (1 + 1e-12))]}
    got = [tuple(n) for n in nvecs]
    assert len(set(got)) == len(got) > 20
    np.testing.assert_allclose(kvecs, nvecs * TWO_PI / box, rtol=1e-15)
    if octant:
        assert set(got) == {n for n in ball if min(n) >= 0}
    else:
        assert set(got) | {tuple(-np.array(n)) for n in got} == ball
        assert all(n[np.flatnonzero(n)[0]] > 0 for n in map(np.array, got))


@pytest.mark.parametrize("dim", [4, 5])
def test_sums_in_higher_dimensions_equal_brute_force(dim):
    """Float and exact sums against sum_j exp(i k . x_j) evaluated directly; the exact sums do not depend
    on how the particles are split."""
    box = np.array([3.0, 3.5, 4.0, 3.2, 3.7][:dim])
    x = gas(300, box, dim)
    kvecs, re, im = sofk_sums(x, box, 4.0)
    ref = np.exp(1j * x @ kvecs.T).sum(axis=0)
    np.testing.assert_allclose(re, ref.real, atol=1e-9)
    np.testing.assert_allclose(im, ref.imag, atol=1e-9)
    _, whole = sofk_sums_fixed(x, box, 4.0)
    fre, fim = fixed_to_float(whole)
    np.testing.assert_allclose(fre, ref.real, atol=1e-9)
    np.testing.assert_allclose(fim, ref.imag, atol=1e-9)
    _, a = sofk_sums_fixed(x[:123], box, 4.0)
    _, b = sofk_sums_fixed(x[123:], box, 4.0)
    for u, v in zip(fixed_to_float(a + b), (fre, fim)):
        np.testing.assert_array_equal(u, v)


def test_lattice_bragg_peaks_in_four_dimensions(serial_comm):
    cells, a, dim = 6, 1.0, 4
    box = np.full(dim, cells * a)
    x = lattice(cells, a, dim, offset=0.37)
    meas = StructureFactorMeasurement(box, dim, len(x), k_max=7.0, bins=14, comm=serial_comm)
    assert meas.method == "direct"
    got = meas.compute(x)
    values = meas.values(x)
    bragg = np.all(meas.nvecs % cells == 0, axis=1)
    assert bragg.sum() == dim                          # the |k| = 2 pi / a shell, half space
    np.testing.assert_allclose(values[bragg], len(x), rtol=1e-12)
    np.testing.assert_allclose(values[~bragg], 0.0, atol=1e-18)
    assert np.nansum(got.S * got.counts) == pytest.approx(len(x) * dim, rel=1e-12)


def test_nufft_is_refused_above_three_dimensions(serial_comm):
    box = np.full(4, 6.0)
    with pytest.raises(ValueError, match="nufft needs d <= 3"):
        StructureFactorMeasurement(box, 4, 100, k_max=3.0, method="nufft", comm=serial_comm)
    assert StructureFactorMeasurement(box, 4, 100, k_max=3.0, method="auto", comm=serial_comm).method == "direct"
    assert StructureFactor(bins=4, k_max=3.0).compute(gas(100, box, 1), box).method_used == "direct"


@pytest.mark.mpi
@pytest.mark.parametrize("dim", [4, 5])
def test_rank_count_independent_in_higher_dimensions(dim):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    box = np.full(dim, 7.0)
    x = gas(3000, box, 21)
    mine = x[comm.rank::comm.size]
    kw = dict(k_max=3.0, bins=6, method="direct")
    par = StructureFactorMeasurement(box, dim, len(x), comm=comm, **kw).compute(mine[::-1])
    ser = StructureFactorMeasurement(box, dim, len(x), comm=MPI.COMM_SELF, **kw).compute(x)
    np.testing.assert_array_equal(par.S, ser.S)
    np.testing.assert_array_equal(par.counts, ser.counts)
