"""The pipeline: one module per stage (each ends with its contract, ``STAGE``) and the helpers they share.

Importing it does nothing: the entry points call ``tasks.cli.setup()``.
"""
