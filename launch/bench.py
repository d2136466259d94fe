"""Benchmark: particle-steps per second per scheme, communication share, parallel efficiency, memory.

Run through launch/bench (which calls mpirun for each rank count). One invocation here measures one
(scheme, N, kick) point on the ranks it was started with and prints one JSON line on rank 0.
"""
import argparse
import json
import os
import time

import numpy as np


def measure(scheme, n, phi, dim, kick, steps, warmup, seed=1, noise=(), step_kind="auto"):
    from mpisim import Simulation
    from mpisim.core.schemes import SCHEMES
    from mpisim.parallel.comm import world
    comm = world()
    spec = SCHEMES[scheme]
    dyn = {"scheme": scheme}
    if spec.step_size_key == "kick_size":
        dyn["kick_size"] = kick
    else:
        # The paper's matching: alpha = eps / b_f with b_f = 3/4 (gd: alpha = eps).
        dyn["learning_rate"] = kick if scheme == "gd" else 4 * kick / 3
        if "batch_fraction" in spec.keys:
            dyn["batch_fraction"] = 0.75
        dyn.update({k: v for k, v in dict(noise).items() if k in spec.keys})
    cfg = {"system": {"n": n, "phi": phi, "dim": dim, "seed": seed}, "dynamics": dyn,
           "run": {"steps": warmup + steps, "log_every": 100, "progress_seconds": 0.0,
                   "stop_when_absorbed": False, "step_kind": step_kind}}
    t0 = time.perf_counter()
    sim = Simulation.from_config(cfg, write=False, comm=comm)
    sim.run(steps=warmup)
    setup = time.perf_counter() - t0
    comm.Barrier() if hasattr(comm, "Barrier") else None
    sim.domain.comm_seconds = 0.0
    rebuilds = sim.rebuilds
    c0, t0 = time.process_time(), time.perf_counter()
    sim.run(steps=steps)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    walls = comm.allgather(wall) if comm.size > 1 else [wall]
    comms = comm.allgather(sim.domain.comm_seconds) if comm.size > 1 else [sim.domain.comm_seconds]
    nbytes = sim.state.nbytes + sim.nlist.nbytes
    total_bytes = comm.allreduce(nbytes) if comm.size > 1 else nbytes
    wall = max(walls)
    return {"scheme": scheme, "n": n, "phi": phi, "dim": dim, "kick": kick, "ranks": comm.size,
            "grid": [int(g) for g in sim.domain.grid[:dim]], "steps": steps,
            "seconds": wall, "cpu_seconds": cpu, "particle_steps_per_s": n * steps / wall,
            "comm_share": float(np.mean(comms)) / wall, "rebuilds_per_step": (sim.rebuilds - rebuilds) / steps,
            "bytes_per_particle": total_bytes / n, "setup_s": setup,
            "activity": float(sim.observables["activity"][-1]), "step_kind": step_kind,
            "loadavg": os.getloadavg()}, comm.rank


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--scheme", default="bro-pairwise")
    p.add_argument("--n", type=float, default=1e5)
    p.add_argument("--phi", type=float, default=0.6)
    p.add_argument("--dim", type=int, default=3)
    p.add_argument("--kick", type=float, default=0.002, help="eps (alpha = 4 eps / 3 for sgd-like schemes)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--step-kind", default="auto", help="run.step_kind: auto, dense or sparse")
    p.add_argument("--noise-amplitude", type=float, default=0.3, help="pgd/spgd: sigma")
    p.add_argument("--temporal-correlation", type=float, default=-0.5, help="pgd/spgd: c_t")
    p.add_argument("--spatial-correlation", default="reciprocal", help="pgd/spgd: independent or reciprocal")
    p.add_argument("--temperature", type=float, default=0.002, help="langevin: T")
    a = p.parse_args()
    noise = {"noise_amplitude": a.noise_amplitude, "temporal_correlation": a.temporal_correlation,
             "spatial_correlation": a.spatial_correlation, "temperature": a.temperature}
    result, rank = measure(a.scheme, int(a.n), a.phi, a.dim, a.kick, a.steps, a.warmup, noise=noise,
                           step_kind=a.step_kind)
    if rank == 0:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
