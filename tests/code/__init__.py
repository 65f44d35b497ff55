"""Code tests: fast, on tiny inline data.

the stage contracts (the committed `dvc.yaml` is the generated one; every project module a stage really
imports is one of its deps; which stages see `tasks/metrics.py`, `tasks/dataset.py`, `tasks/backbones.py`; the
import-closure walker on a made-up package), params (every key listed, code defaults = `params.yaml`),
download sources, the real Kaggle client end to end (progress, `SOURCE.json` from its answers, a dropped
connection and a killed run both resumed with a Range request, 401/404 messages, 429/503 retried),
TensorFlow's quiet start, the plot artifact's size limit, the precision choice and bfloat16 backbone features
against float32 (cosine ≥ 0.999), backbone handles, metrics arithmetic (the gate on constructed metrics,
bootstrap intervals, ECE on a known example, temperature recovery, slices adding up) and face detection/crop
margins on pasted synthetic faces.
"""
