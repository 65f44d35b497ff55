"""The tests. Their index is ``pytest --collect-only -q``; each package and module docstring says what it covers
(see docs/testing.md for how they are organised)."""
