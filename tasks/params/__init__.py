"""Typed parameters: one module per params.yaml section, so that a stage's code deps are its own sections.

``tasks.params.config`` loads the whole file (``load``, ``Params``); ``tasks.params.fields`` builds and
checks a section; each other module is one section (``tasks.params.train.TrainParams``). This file
imports nothing: it is in every stage's code deps.
"""
