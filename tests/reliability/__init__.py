"""Reliability tests: bad input, interrupted work and safe defaults.

every bad-input, interrupted-work and safe-default case above, each asserting the message and that nothing
else was written or lost (real SIGKILLs for the download, training and flow; a kill after each filesystem step
of blessing a model and 110 kills at random moments; a truncated `dvc.lock` and rwlock repaired by `make
doctor`).
"""
