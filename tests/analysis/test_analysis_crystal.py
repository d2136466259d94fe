"""The crystallinity measure (analysis/crystal.py): lattices are solid, random points are not, the counts
equal freud's SolidLiquid with the same neighbours, and the command line writes its table."""
import numpy as np
import pytest

from analysis.cli import main
from analysis.crystal import Crystallinity
from analysis.errors import AnalysisError
from analysis.synthetic import fcc_positions, write_run


def test_fcc_is_solid_even_shaken():
    x, box = fcc_positions(6, 1.5)
    rng = np.random.default_rng(3)
    for shake in (0.0, 0.05):
        c = Crystallinity().compute(x + shake * rng.standard_normal(x.shape), box)
        assert c.solid_fraction == 1.0 and c.largest_cluster_size == len(x)
        assert np.all(c.num_connections == 12)


def test_random_points_are_not_solid():
    rng = np.random.default_rng(4)
    box = np.full(3, 12.0)
    c = Crystallinity().compute(rng.random((2000, 3)) * box, box)
    assert c.solid_fraction < 0.02 and c.largest_cluster_size < 10


def test_a_crystal_in_a_liquid():
    """A crystalline slab (half the box) in random points: about half the particles are solid-like,
    in one cluster."""
    x, box = fcc_positions(8, 1.5)
    rng = np.random.default_rng(5)
    liquid = x[:, 0] >= box[0] / 2
    x[liquid] = rng.random((liquid.sum(), 3)) * [box[0] / 2, box[1], box[2]] + [box[0] / 2, 0, 0]
    c = Crystallinity().compute(x, box)
    assert 0.35 < c.solid_fraction < 0.55
    assert c.largest_cluster_size > 0.9 * c.solid.sum()
    assert c.solid[~liquid].mean() > 0.7 and c.solid[liquid].mean() < 0.05


def test_equals_freud_solid_liquid():
    freud = pytest.importorskip("freud", reason="freud (test dependency) not installed")
    x, box = fcc_positions(7, 1.5)
    x = x + 0.13 * np.random.default_rng(6).standard_normal(x.shape)   # partly disordered: mixed counts
    c = Crystallinity().compute(x, box)
    assert 0.1 < c.solid_fraction < 0.9
    fbox = freud.box.Box(*box)
    ref = freud.order.SolidLiquid(l=6, q_threshold=0.7, solid_threshold=6)
    ref.compute((fbox, fbox.wrap(x - box / 2)), neighbors={"num_neighbors": 12})
    np.testing.assert_array_equal(c.num_connections, ref.num_connections)
    assert c.largest_cluster_size == ref.largest_cluster_size


def test_bad_input():
    with pytest.raises(AnalysisError, match="positions"):
        Crystallinity().compute(np.zeros((5, 3)), np.ones(3))
    with pytest.raises(AnalysisError, match=">= 1"):
        Crystallinity(num_neighbors=0)


def test_command_line_table(tmp_path):
    x, box = fcc_positions(5, 1.5)
    run = write_run(tmp_path / "run.h5", n=len(x), positions=x[None], box=box)
    out = tmp_path / "crystal.csv"
    assert main(["crystal", str(run), "-o", str(out), "--progress-seconds", "0"]) == 0
    header, row = out.read_text().splitlines()[:2]
    cols = dict(zip(header.split(","), row.split(",")))
    assert float(cols["solid_fraction"]) == 1.0 and int(cols["largest_cluster"]) == len(x)
