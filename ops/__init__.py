"""Set-up and operations tooling: what installs or serves the pipeline, never what a stage computes."""
