"""Prefect flows: the pipeline, batch prediction and the scheduled deployments."""
