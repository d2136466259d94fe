#!/bin/sh
# Pair-noise correlation and long-range structure (docs/results.md): bro-correlated in 2d and 3d for
# c = 0 ... 1, S(k) at small k and the number variance; writes docs/figures/pair-correlation{.csv,-sk.csv,.png}.
# About 6 minutes of CPU time (one process). Extra options go to the study (--help).
cd "$(dirname "$0")/../.." || exit 1
exec nice -n 10 "${PYTHON:-python}" -m studies.validation.pair_correlation --out docs/figures/pair-correlation "$@"
