"""Model tests: a tiny model trained on synthetic faces (slow).

it learns the synthetic signal (also when trained in bfloat16), names classes right, reloads identically,
computes frozen features once, resumes after an interruption, and is reproducible; the quality report and
model card hold the real figures; a worse candidate fails the gate against the production model,
which the gate never changes.
"""
