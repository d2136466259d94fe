"""Loading runs, collections, manifests; grouping; errors for files that are not runs."""
import h5py
import numpy as np
import pytest

from analysis.errors import NotComputedError, RunFileError
from analysis.io import group_runs, load_run, load_runs, read_manifest
from analysis.synthetic import write_manifest, write_run


def test_load_run_reads_parameters_and_series(tmp_path):
    f = np.r_[np.linspace(1, 0.3, 10), np.full(40, 0.3)]
    p = write_run(tmp_path / "r.h5", scheme="rcd", n=50, phi=0.61, seed=7, learning_rate=0.05,
                  batch_fraction=0.2, activity=f, log_every=5)
    r = load_run(p)
    assert (r.params.scheme, r.params.n, r.params.phi, r.params.seed) == ("rcd", 50, 0.61, 7)
    assert r.params.step_size == 0.05
    assert r.params.effective_kick == pytest.approx(0.05 * 0.2)
    steps, fa = r.activity()
    np.testing.assert_array_equal(steps, np.arange(50) * 5)
    np.testing.assert_allclose(fa, f)
    assert not r.absorbed and r.absorbed_step is None
    assert r.positions().shape == (50, 3)
    assert np.all((r.positions() >= 0) & (r.positions() < r.box))


def test_unwrapped_positions_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    box = np.full(3, 5.0)
    traj = rng.normal(0, 8.0, (3, 20, 3))  # far outside the box: needs images
    p = write_run(tmp_path / "u.h5", n=20, positions=traj, box=box)
    r = load_run(p)
    np.testing.assert_allclose(r.positions(1, unwrapped=True), traj[1], atol=1e-12)
    steps, x = r.unwrapped_trajectory()
    np.testing.assert_allclose(x, traj, atol=1e-12)


def test_absorbed_run_provenance(tmp_path):
    f = np.r_[np.linspace(0.5, 0.0, 11), np.zeros(5)]
    r = load_run(write_run(tmp_path / "a.h5", activity=f, log_every=10))
    assert r.absorbed and r.absorbed_step == 100
    assert r.activity()[0][-1] == 100


def test_collection_glob_dir_manifest_and_grouping(tmp_path):
    paths = []
    for phi in (0.6, 0.62):
        for seed in (1, 2, 3):
            paths.append(write_run(tmp_path / f"r_{phi}_{seed}.h5", phi=phi, seed=seed))
    assert len(load_runs(str(tmp_path / "*.h5"))) == 6
    assert len(load_runs(tmp_path)) == 6
    write_manifest(tmp_path / "manifest.tsv", paths, ["done"] * 5 + ["failed"])
    with pytest.warns(UserWarning, match="skipped 1"):
        runs = load_runs(tmp_path / "manifest.tsv")
    assert len(runs) == 5
    with pytest.warns(UserWarning):
        assert len(read_manifest(tmp_path / "manifest.tsv", statuses=["failed"])) == 1
    groups = group_runs(load_runs(paths + paths))  # duplicates dropped
    assert [len(v) for v in groups.values()] == [3, 3]
    assert [dict(k)["phi"] for k in groups] == [0.6, 0.62]


@pytest.mark.parametrize("kind", ["missing", "text", "hdf5", "dir-empty"])
def test_not_a_run(tmp_path, kind):
    p = tmp_path / "x.h5"
    if kind == "text":
        p.write_text("hello")
    elif kind == "hdf5":
        with h5py.File(p, "w") as fh:
            fh.create_dataset("a", data=[1])
    elif kind == "dir-empty":
        p = tmp_path / "empty"
        p.mkdir()
    with pytest.raises(RunFileError):
        load_runs(p)


def test_manifest_without_path_column(tmp_path):
    m = tmp_path / "manifest.tsv"
    m.write_text("file\tstatus\nx.h5\tdone\n")
    with pytest.raises(RunFileError, match="path"):
        load_runs(m)


def test_not_computed_raises():
    from analysis import ActivityTable, Collapse, Flatness, MSD, StructureFactor, SteadyState
    for obj, prop in ((SteadyState(), "f_inf"), (ActivityTable(), "rows"), (Collapse(), "phi_c"),
                      (Flatness(), "delta_v"), (MSD(), "msd"), (StructureFactor(4, 2.0), "S_k")):
        with pytest.raises(NotComputedError):
            getattr(obj, prop)


def test_continued_runs_replace_their_originals(tmp_path):
    """load_runs(continued=DIR) reads DIR/<run dir>/<file> in place of a run when it is a finished
    continuation of it (same parameters and seed); other runs stay; a different seed is refused."""
    for d in ("sweep/s1", "sweep/s2", "cont/s1", "cont/s2"):
        (tmp_path / d).mkdir(parents=True)
    originals = [write_run(tmp_path / "sweep" / f"s{seed}" / "run.h5", seed=seed, steps=100) for seed in (1, 2)]
    longer = write_run(tmp_path / "cont" / "s1" / "run.h5", seed=1, steps=500)
    runs = load_runs(originals, continued=tmp_path / "cont")
    assert [r.path for r in runs] == [longer, originals[1]]
    assert runs[0].continues == originals[0] and runs[1].continues is None
    assert runs[0].activity()[0][-1] == 500
    assert [r.path for r in load_runs(originals)] == originals
    write_run(tmp_path / "cont" / "s2" / "run.h5", seed=3, steps=500)
    with pytest.raises(RunFileError, match="not a continuation"):
        load_runs(originals, continued=tmp_path / "cont")
    with pytest.raises(RunFileError, match="no such directory"):
        load_runs(originals, continued=tmp_path / "nowhere")


def test_continuations_of_several_studies(tmp_path):
    """load_runs(continued=[DIR, ...]): run directory names repeat across studies, so each run is read
    from the directory whose same-named continuation has its parameters and seed (another study's is
    passed over); a directory none of whose continuations belongs to the inputs is the wrong one."""
    name = "n=64_phi=0.5_seed=1"
    originals, conts = {}, {}
    for eps in (0.1, 0.05):
        for where, steps in ((f"eps{eps}", 100), (f"cont{eps}", 500)):
            (tmp_path / where / name).mkdir(parents=True)
            p = write_run(tmp_path / where / name / "run.h5", scheme="bro-pairwise", kick_size=eps,
                          learning_rate=None, batch_fraction=None, seed=1, steps=steps)
            (originals if steps == 100 else conts)[eps] = p
    dirs = [tmp_path / "cont0.05", tmp_path / "cont0.1"]
    runs = load_runs([originals[0.1], originals[0.05]], continued=dirs)
    assert [r.path for r in runs] == [conts[0.1], conts[0.05]]
    assert [r.continues for r in runs] == [originals[0.1], originals[0.05]]
    assert load_runs([originals[0.1]], continued=dirs[1])[0].path == conts[0.1]
    with pytest.raises(RunFileError, match="no run of the inputs is continued in"):
        load_runs([originals[0.1]], continued=dirs)
