"""Helpers the tests share.

``data``: tiny datasets and running a stage; ``repo``: copies of the repository and the real ``dvc`` command
line; ``kaggle_fake`` and ``hub_fake``: loopback fakes of the Kaggle API and a TF Hub host for the real clients
(``loopback``: what they share); ``tiny_model``: the tiny
pipeline run of the model tests; ``prefect_server``: a real Prefect server. The fixtures of the last two are
registered once, in tests/conftest.py.
"""
