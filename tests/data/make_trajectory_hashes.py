"""Regression guard: SHA-256 of the final state and the observable series of a fixed set of short runs.

Recorded from the code before the core redesign; tests/test_trajectory_hashes.py re-runs the same cases
(serially, and on 2, 3, 4 MPI ranks: trajectories are bit-identical on any rank count) and compares.
Only the public API is used (``RunConfig``, ``Simulation``, ``Simulation.resume``, ``.snapshot()``,
``.observables``), so the guard survives the package being reorganised.

    python tests/data/make_trajectory_hashes.py      # rewrites tests/data/trajectory_hashes.json

Run it only when a change of the trajectories is intended (and say so in the commit).
"""
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mpisim import RunConfig, Simulation

HASHES = Path(__file__).with_name("trajectory_hashes.json")

N = 400
STEPS = 50
CHECKPOINT_EVERY = 20
CUT = 35                  # resumed runs stop after CUT steps (checkpoint at step 20), then resume

# dynamics section of each scheme variant (every scheme of mpisim.core.schemes.SCHEMES, plus momentum)
DYNAMICS = {
    "bro-pairwise": {"scheme": "bro-pairwise", "kick_size": 0.2},
    "bro-individual": {"scheme": "bro-individual", "kick_size": 0.2},
    "sgd": {"scheme": "sgd", "learning_rate": 0.3, "batch_fraction": 0.5},
    "rcd": {"scheme": "rcd", "learning_rate": 0.3, "batch_fraction": 0.5},
    "gd": {"scheme": "gd", "learning_rate": 0.1},
    "sa-pairwise": {"scheme": "sa-pairwise", "learning_rate": 0.3, "batch_fraction": 0.5},
    "sa-individual": {"scheme": "sa-individual", "learning_rate": 0.3, "batch_fraction": 0.5},
    "pgd-reciprocal": {"scheme": "pgd", "learning_rate": 0.5, "noise_amplitude": 0.05,
                       "temporal_correlation": -0.5, "spatial_correlation": "reciprocal"},
    "pgd-independent": {"scheme": "pgd", "learning_rate": 0.5, "noise_amplitude": 0.05,
                        "temporal_correlation": -0.5, "spatial_correlation": "independent"},
    "spgd": {"scheme": "spgd", "learning_rate": 0.5, "batch_fraction": 0.6, "noise_amplitude": 0.05,
             "temporal_correlation": 0.3, "spatial_correlation": "reciprocal"},
    "langevin": {"scheme": "langevin", "learning_rate": 0.1, "temperature": 0.002},
    "sgd-momentum": {"scheme": "sgd", "learning_rate": 0.3, "batch_fraction": 0.5, "momentum": 0.5},
    "rcd-momentum": {"scheme": "rcd", "learning_rate": 0.3, "batch_fraction": 0.5, "momentum": 0.5},
}

# cases that are also run with a checkpoint/resume in the middle: one 2d and one 3d per family
RESUMED = ("bro-pairwise-2d", "bro-individual-3d", "sgd-momentum-2d", "rcd-momentum-3d",
           "sa-pairwise-2d", "sa-individual-3d", "pgd-reciprocal-2d", "spgd-3d", "langevin-2d")


def _case(dynamics, dim, seed, **system):
    return {"system": {"n": N, "phi": 0.6 if dim == 2 else 0.5, "dim": dim, "seed": seed, **system},
            "dynamics": dict(dynamics),
            "run": {"steps": STEPS, "log_every": 5, "stop_when_absorbed": False, "sort_every": 17,
                    "checkpoint_every": CHECKPOINT_EVERY, "progress_seconds": 0.0},
            "output": {"path": "run.h5", "flush_every": 10}}


def _cases():
    cases = {}
    for k, (label, dyn) in enumerate(DYNAMICS.items()):
        for dim in (2, 3):
            cases[f"{label}-{dim}d"] = _case(dyn, dim, seed=100 + 10 * k + dim)
    cases["sgd-polydisperse-2d"] = _case(DYNAMICS["sgd"], 2, seed=7, polydispersity=0.2)
    cases["bro-pairwise-species-3d"] = _case(DYNAMICS["bro-pairwise"], 3, seed=8, radii=[0.5, 0.7],
                                             fractions=[0.7, 0.3])
    return cases


CASES = _cases()
assert set(RESUMED) <= set(CASES)


def config(name, path):
    """RunConfig of case ``name`` writing to ``path`` (an .h5 file; the same path on every rank)."""
    c = {k: dict(v) for k, v in CASES[name].items()}
    c["output"]["path"] = str(path)
    return RunConfig.from_dict(c)


def digests(sim):
    """{"state": sha256 of id-sorted final positions (float64 (N, d)) then images (int32 (N, d)),
    "observables": sha256 of the activity, energy, msd series (float64)}. Collective (snapshot)."""
    ids, pos, img = sim.snapshot()
    o = np.argsort(ids, kind="stable")
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(pos[o], dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(img[o], dtype="<i4").tobytes())
    obs = sim.observables
    g = hashlib.sha256()
    for key in ("activity", "energy", "msd"):
        g.update(np.ascontiguousarray(obs[key], dtype="<f8").tobytes())
    return {"state": h.hexdigest(), "observables": g.hexdigest()}


def run_straight(name, directory, comm=None, write=True):
    """Run to the end; with write=False no output file (nor checkpoint) is written: same trajectory."""
    path = Path(directory) / f"{name}.h5"
    sim = Simulation(config(name, path), output=str(path), comm=comm, write=write).run()
    out = digests(sim)
    out["final_activity"] = float(sim.observables["activity"][-1])
    sim.close()
    return out


def run_resumed(name, directory, comm=None):
    """Run CUT steps (checkpoint at step CHECKPOINT_EVERY), drop the simulation, resume, run to the end."""
    path = Path(directory) / f"{name}-resumed.h5"
    cfg = config(name, path)
    cut = Simulation(cfg, output=str(path), comm=comm)
    cut.run(steps=CUT)
    cut.close()
    sim = Simulation.resume(cfg, output=str(path), comm=comm)
    assert sim.step == CUT // CHECKPOINT_EVERY * CHECKPOINT_EVERY, (name, sim.step)
    sim.run()
    out = digests(sim)
    sim.close()
    return out


def main():
    cases, problems = {}, []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            t = time.perf_counter()
            d = run_straight(name, tmp)
            active = d.pop("final_activity")
            entry = {"config": CASES[name], **d, "resumed": name in RESUMED}
            if name in RESUMED:
                r = run_resumed(name, tmp)
                if r != d:
                    problems.append(f"{name}: the resumed run differs from the straight run: {r} != {d}")
            if active == 0:
                problems.append(f"{name}: no active particle at the end (a weak case)")
            cases[name] = entry
            print(f"{name:28s} activity {active:6.4f}  {time.perf_counter() - t:6.2f} s", file=sys.stderr)
    print(f"{len(cases)} cases in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if problems:
        sys.exit("not written:\n" + "\n".join(problems))
    doc = {"about": "SHA-256 of short runs recorded before the core redesign; "
                    "tests/data/make_trajectory_hashes.py writes it, tests/test_trajectory_hashes.py checks it. "
                    "state: id-sorted final positions (<f8, (N, d)) then images (<i4, (N, d)); "
                    "observables: activity, energy, msd series (<f8). resumed: also run as "
                    f"run(steps={CUT}) + Simulation.resume (checkpoint_every {CHECKPOINT_EVERY}), "
                    "which must give the same hashes.",
           "cases": cases}
    HASHES.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    print(f"wrote {HASHES}", file=sys.stderr)


if __name__ == "__main__":
    main()
