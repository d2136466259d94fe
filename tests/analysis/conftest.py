"""Fixtures for the analysis tests: synthetic run files in the simulator's exact layout."""
import numpy as np
import pytest

from analysis.fss import MANNA
from analysis.synthetic import box_length, write_manifest, write_run

# planted phi_c per learning rate, between grid points; below it every run absorbs (as long runs of a
# finite system do), so the runs' absorption bracket holds it (analysis.fss.absorption_bracket)
PHI_C = {0.1: 0.61, 0.2: 0.63}


def planted_activity(n, phi, phi_c, seed, steps=4000, log_every=20, dim=3):
    """f_a(k) whose f_inf follows the Manna finite-size scaling with a planted phi_c."""
    m = MANNA[dim]
    L = n ** (1.0 / dim)
    x = L ** (1 / m.nu_perp) * (phi - phi_c)
    f_inf = L ** (-m.beta / m.nu_perp) * 0.3 * np.log1p(np.exp(2.0 * x))
    # relaxed well inside the first half of the run (tau <= 140 steps at N = 1000), so that every
    # active run is steady by mpisim.core.steady's criterion over the second half
    tau = 2.0 * L ** (m.nu_par / m.nu_perp) / (1.0 + abs(x))
    k = np.arange(0, steps + 1, log_every)
    rng = np.random.default_rng(seed)
    if f_inf * n < 1.0 or phi < phi_c:  # absorbing side: decays to zero at ~ 3 tau
        f = np.clip(1.0 - k / (3.0 * tau), 0.0, None)
        return np.round(f * n) / n
    f = f_inf + (1 - f_inf) * np.exp(-k / tau)
    f = f * (1 + 0.02 * rng.standard_normal(k.size))
    return np.clip(f, 1.0 / n, 1.0)


def random_walk(n, dim, frames, step, seed, box):
    rng = np.random.default_rng(seed)
    start = rng.random((n, dim)) * box
    return start + np.cumsum(np.r_[np.zeros((1, n, dim)), rng.normal(0, step, (frames - 1, n, dim))], axis=0)


def make_sweep(root, sizes=(125, 1000), phis=None, rates=(0.1, 0.2), seeds=(1, 2), frames=6,
               scheme="sgd", batch_fraction=0.5, manifest=True, snapshot_n_max=None):
    """Write a sweep of planted runs under ``root`` and (optionally) its manifest; returns paths."""
    phis = np.round(np.linspace(0.56, 0.68, 7), 3) if phis is None else phis
    paths = []
    for rate in rates:
        for n in sizes:
            for phi in phis:
                for seed in seeds:
                    f = planted_activity(n, phi, PHI_C[rate], seed)
                    box = np.full(3, box_length(n, phi, 3))
                    steps = (f.size - 1) * 20
                    pos = random_walk(n, 3, frames, 0.05, seed, box)
                    p = write_run(root / f"{scheme}_a{rate}_n{n}_phi{phi}_s{seed}.h5", scheme=scheme,
                                  n=n, phi=float(phi), seed=seed, steps=4000, log_every=20,
                                  learning_rate=rate, batch_fraction=batch_fraction, activity=f,
                                  positions=pos, frame_steps=np.linspace(0, steps, frames).astype(int))
                    paths.append(p)
    if manifest:
        write_manifest(root / "manifest.tsv", paths)
    return paths


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory):
    """A planted two-size, two-rate SGD sweep with a manifest (shared by the tests, read-only)."""
    root = tmp_path_factory.mktemp("sweep")
    make_sweep(root)
    return root
