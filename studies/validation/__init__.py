"""Physics validation studies: each module runs the engine in-process (under mpirun or on one rank),
prints a table that docs/algorithms.md or docs/analysis.md quotes, and has a ``--validate`` test
(tests/test_validation.py) that checks the documented behaviour. Run one with
``python -m studies.validation.<name> --help`` (launch/validate_* wrap the documented commands)."""
