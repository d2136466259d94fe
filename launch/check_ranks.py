"""Under mpirun: run every scheme in 2d and 3d and write one H5MD file each into OUTDIR/P<size>/.
launch/check_ranks runs this for several rank counts and compares the files with the 1-rank ones."""
import sys
from pathlib import Path

from mpisim import Simulation
from mpisim.parallel.comm import world
from mpisim.core.schemes import SCHEMES

# A value for the parameters a scheme may take (Scheme.keys; the others keep their defaults).
VALUES = {"kick_size": 0.08, "learning_rate": 0.15, "batch_fraction": 0.5, "noise_amplitude": 0.02,
          "temperature": 0.002, "pair_correlation": 0.5}


def main(outdir):
    comm = world()
    out = Path(outdir) / f"P{comm.size}"
    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    comm.Barrier()
    for dim in (2, 3):
        for name, spec in sorted(SCHEMES.items()):
            dyn = {"scheme": name, **{k: VALUES[k] for k in spec.keys if k in VALUES}}
            cfg = {"system": {"n": 2000 if dim == 3 else 1500, "phi": 0.68, "dim": dim, "seed": 3},
                   "dynamics": dyn,
                   "run": {"steps": 60, "log_every": 4, "progress_seconds": 0.0, "sort_every": 13},
                   "output": {"snapshot_every": 20}}
            Simulation.from_config(cfg, output=str(out / f"{name}-{dim}d.h5"), comm=comm, overwrite=True).run()


if __name__ == "__main__":
    main(sys.argv[1])
