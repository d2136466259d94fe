"""The counter-based generator: uniform moments, independence of keys, determinism."""
import numpy as np
import pytest

from mpisim.core import rng
from mpisim.core.rng_arrays import uniforms


def test_uniform_moments_and_range():
    u = uniforms(7, 3, rng.STREAM_PAIR_UNIFORM, np.arange(200_000), 0)
    assert u.min() >= 0.0 and u.max() < 1.0
    n = len(u)
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 5 * np.sqrt(1 / 180 / n)
    counts, _ = np.histogram(u, bins=50, range=(0, 1))
    chi2 = ((counts - n / 50) ** 2 / (n / 50)).sum()
    assert chi2 < 100  # 49 dof: p ~ 3e-5


def test_neighbouring_keys_are_uncorrelated():
    ids = np.arange(100_000)
    a = uniforms(1, 10, rng.STREAM_PAIR_UNIFORM, ids, 0)
    for other in (uniforms(1, 11, rng.STREAM_PAIR_UNIFORM, ids, 0),      # next step
                  uniforms(1, 10, rng.STREAM_PAIR_UNIFORM, ids + 1, 0),  # next id
                  uniforms(2, 10, rng.STREAM_PAIR_UNIFORM, ids, 0),      # next seed
                  uniforms(1, 10, rng.STREAM_PARTICLE_UNIFORM, ids, 0)):  # other stream
        assert abs(np.corrcoef(a, other)[0, 1]) < 5 / np.sqrt(len(ids))


def test_draw_is_a_pure_function_of_its_key():
    assert rng.uniform(3, 4, 1, 5, 6) == rng.uniform(3, 4, 1, 5, 6)
    assert rng.uniform(3, 4, 1, 5, 6) != rng.uniform(3, 4, 1, 6, 5)


@pytest.mark.parametrize("n", [100_000])
def test_normal_moments(n):
    z = np.array([rng.normal(5, 1, rng.STREAM_PAIR_NORMAL, i, 0) for i in range(n)])
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(z ** 4) - 3) < 5 * np.sqrt(96 / n)
    from scipy import stats
    assert stats.kstest(z, "norm").pvalue > 1e-4
    assert z.min() < -4 and z.max() > 4   # the tails are there
