"""The pipeline: one module per stage (each ends with its contract, ``STAGE``) and the helpers they share."""

from tasks import quiet

quiet.install()
