"""Helpers the tests share.

``data``: tiny datasets and running a stage; ``repo``: copies of the repository and the real ``dvc`` command
line; ``kaggle_fake``: a loopback fake of the Kaggle API for the real client. Fixtures stay in conftest files.
"""
