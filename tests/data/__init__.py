"""Data tests: the data stages on the synthetic faces.

download, validate and preprocess run twice in fresh processes write identical bytes; the synthetic faces are
the same bytes on one process or several (blocks drawn in parallel); PSI arithmetic and the drift check (no
reference, the same kind of data passes, brighter data fails); the Great Expectations suite, passing on clean
data and failing, with the file named, on each fault (corrupt, non-image, greyscale, out of bounds, cross-
split duplicate, …); a copy with the same shapes in other colours is not a near-duplicate.
"""
