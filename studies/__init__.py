"""Studies of mpisim runs: parameter sweeps planned from one TOML file, run here or as SLURM jobs, and
tracked through their run directories (docs/sweeps.md). ``launch/sweep`` is ``python -m studies``.

Layers: ``status`` (what a run directory says: done, running, failed, pending; the manifest) ->
``plan`` (the sweep file resolved into validated runs) -> ``local`` (launching runs here) -> ``slurm``
(sbatch scripts and what a job runs) -> ``cli``. The package never imports MPI: it needs from mpisim only
the config (validation), the checkpoint path, whether an output is finished, and the rank-grid check.
``studies.validation`` holds the physics validation studies, which run the engine in-process.
"""
