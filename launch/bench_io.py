"""Output benchmark: seconds and MB/s of one H5MD snapshot and one checkpoint of N particles, and the share
of a run that snapshots every K steps (docs/performance.md, "Output").

Run through ``launch/bench --io`` (mpirun on the requested ranks). Prints one JSON line on rank 0.
"""
import argparse
import json
import os
import time


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=float, default=1e6)
    p.add_argument("--phi", type=float, default=0.6)
    p.add_argument("--kick", type=float, default=0.002)
    p.add_argument("--steps", type=int, default=5, help="steps timed for the cost of one step")
    p.add_argument("--every", type=int, default=1000, help="snapshot interval K of the reference run")
    p.add_argument("--repeat", type=int, default=3, help="snapshots written per write path")
    p.add_argument("--dir", default="bench-out", help="where the (deleted) files go")
    a = p.parse_args()

    from mpisim import Simulation
    from mpisim.parallel.comm import world
    from mpisim.io import H5MDWriter, checkpoint_path, write_checkpoint
    comm = world()
    n = int(a.n)
    cfg = {"system": {"n": n, "phi": a.phi, "dim": 3, "seed": 1},
           "dynamics": {"scheme": "bro-pairwise", "kick_size": a.kick},
           "run": {"steps": 10 ** 9, "log_every": 100, "progress_seconds": 0.0, "stop_when_absorbed": False}}
    sim = Simulation.from_config(cfg, write=False, comm=comm)
    sim.run(steps=2)
    comm.Barrier()
    t0 = time.perf_counter()
    sim.run(steps=a.steps)
    comm.Barrier()
    step_s = (time.perf_counter() - t0) / a.steps

    os.makedirs(a.dir, exist_ok=True)
    path = os.path.join(a.dir, f"bench_io_{comm.size}.h5")
    st = sim.state
    mb = n * 3 * (8 + 4) / 1e6  # positions float64 + images int32, per frame
    out = {"n": n, "ranks": comm.size, "step_s": step_s, "frame_MB": mb}
    for label, collective in (("collective", None), ("gathered", False)):
        w = H5MDWriter(path, sim.config, comm, 3, n, sim.box, sim.domain.grid, collective=collective)
        w.write_static(st.ids[:st.n_own].copy(), st.radius[:st.n_own].copy())
        times = []
        for k in range(a.repeat):
            comm.Barrier()
            t0 = time.perf_counter()
            w.write_snapshot(k, st.ids[:st.n_own].copy(), st.pos[:st.n_own], st.image[:st.n_own])
            w.flush()
            comm.Barrier()
            times.append(time.perf_counter() - t0)
        w.close()
        best = min(times)
        out[f"{label}_s"] = best
        out[f"{label}_MB_per_s"] = mb / best
        out[f"{label}_share_every_{a.every}"] = best / (best + a.every * step_s)
        out[f"{label}_mpio"] = w.collective
    comm.Barrier()
    t0 = time.perf_counter()
    write_checkpoint(checkpoint_path(path), comm, st, 3, n, sim.config.to_toml(),
                     {"step": 0, "absorbed_step": -1, "disp_sums": sim.disp_sums, "max_disp": 0.0})
    out["checkpoint_s"] = time.perf_counter() - t0
    if comm.rank == 0:
        for f in (path, checkpoint_path(path)):
            os.remove(f)
        print(json.dumps(out))


if __name__ == "__main__":
    main()
