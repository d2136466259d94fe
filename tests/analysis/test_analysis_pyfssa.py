"""analysis.fss against pyfssa itself (PyPI ``fssa`` 0.7.6, the paper's ref. [58]).

pyfssa does not import on numpy >= 2 / scipy >= 1.12 / setuptools without pkg_resources; the fixture
loads it under a shim that restores only the names it needs (``np.int``, ``np.float``,
``np.asfarray``, ``pkg_resources.get_distribution``, ``scipy.optimize.optimize._status_message`` and
``wrap_function``), undone after the module. A test-only dependency: skipped when it is absent.
"""
import importlib
import importlib.metadata
import importlib.util
import sys
import types
import warnings

import numpy as np
import pytest

from analysis.fss import autoscale, quality, scaledata


def _wrap_function(function, args):
    """scipy < 1.8's ``wrap_function``: count calls in a one-element list."""
    ncalls = [0]

    def wrapper(*wrapper_args):
        ncalls[0] += 1
        return function(*(wrapper_args + args))

    return ncalls, wrapper


@pytest.fixture(scope="module")
def fssa():
    if importlib.util.find_spec("fssa") is None:
        pytest.skip("pyfssa is not installed (pip install fssa, the `test` extra); the reference "
                    "comparison needs it")
    import scipy.optimize._optimize as sopt
    old = types.ModuleType("scipy.optimize.optimize")
    old.OptimizeResult = sopt.OptimizeResult
    old._status_message = sopt._status_message
    old.wrap_function = _wrap_function
    pkg = types.ModuleType("pkg_resources")
    pkg.get_distribution = lambda name: types.SimpleNamespace(version=importlib.metadata.version(name))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(np, "int", int, raising=False)
        mp.setattr(np, "float", float, raising=False)
        mp.setattr(np, "asfarray", lambda a, dtype=np.float64: np.asarray(a, dtype=dtype), raising=False)
        mp.setitem(sys.modules, "scipy.optimize.optimize", old)
        if importlib.util.find_spec("pkg_resources") is None:
            mp.setitem(sys.modules, "pkg_resources", pkg)
        for name in [m for m in sys.modules if m == "fssa" or m.startswith("fssa.")]:
            mp.delitem(sys.modules, name)
        module = importlib.import_module("fssa")
        assert module.__version__ == "0.7.6"
        yield module
        for name in [m for m in sys.modules if m == "fssa" or m.startswith("fssa.")]:
            mp.delitem(sys.modules, name)


def planted(l, rho, rho_c, nu, zeta, noise, seed):
    lm, rm = np.meshgrid(l, rho, indexing="ij")
    a = lm ** (zeta / nu) * (1.0 / (1.0 + np.exp(-lm ** (1 / nu) * (rm - rho_c))) + 0.2)
    da = noise * a * (1.0 + np.random.default_rng(seed + 1).random(a.shape))   # unequal errors
    return a + np.random.default_rng(seed).standard_normal(a.shape) * da, da


CASES = [  # (l, rho, planted rho_c, nu, zeta, relative noise, seed)
    (np.array([10.0, 20.0, 40.0]), np.linspace(0.9, 1.1, 21), 1.0, 2.0, 0.5, 0.01, 1),
    (np.array([8.0, 16.0, 32.0, 64.0]), np.linspace(0.55, 0.70, 16), 0.62, 0.59, -0.84, 0.03, 2),
    (np.array([10.0, 25.0]), np.linspace(0.4, 0.6, 9), 0.5, 1.2, 1.0, 0.05, 3),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_quality_equals_pyfssa(fssa, case):
    l, rho, rc, nu, zeta, noise, seed = CASES[case]
    a, da = planted(l, rho, rc, nu, zeta, noise, seed)
    for trial in [(rc, nu, zeta), (rc + 0.02 * (rho[-1] - rho[0]), 1.1 * nu, 0.9 * zeta),
                  (rho[3], 0.8 * nu, zeta + 0.2)]:
        ours = quality(*scaledata(l, rho, a, da, *trial))
        theirs = fssa.quality(*fssa.scaledata(l, rho, a, da, *trial))
        assert ours == pytest.approx(theirs, rel=1e-10, abs=1e-10)


def test_quality_is_the_mean_over_sizes_of_the_means_within_sizes(fssa):
    """Sizes with different numbers of estimated points: a pooled mean would differ from pyfssa's."""
    l, rho, rc, nu, zeta, noise, seed = CASES[1]
    a, da = planted(l, rho, rc, nu, zeta, noise, seed)
    x, y, dy = scaledata(l, rho, a, da, 0.60, nu, zeta)
    theirs = fssa.quality(x, y, dy)
    assert quality(x, y, dy) == pytest.approx(theirs, rel=1e-10)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_autoscale_equals_pyfssa(fssa, case):
    l, rho, rc, nu, zeta, noise, seed = CASES[case]
    a, da = planted(l, rho, rc, nu, zeta, noise, seed)
    start = (rc - 0.1 * (rho[-1] - rho[0]), 0.9 * nu, zeta + 0.1)
    ours = autoscale(l, rho, a, da, *start)
    with warnings.catch_warnings():   # pyfssa warns whenever rho_c leaves the data range
        warnings.simplefilter("ignore")
        theirs = fssa.autoscale(l, rho, a, da, *start)
    np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-10, atol=1e-12)
    assert ours.fun == pytest.approx(theirs.fun, rel=1e-10)
    np.testing.assert_allclose(ours.errors, theirs.errors, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.varco, theirs.varco, rtol=1e-8, atol=1e-14)
    assert ours.nfev == theirs.nfev

