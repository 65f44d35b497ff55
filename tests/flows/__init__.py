"""Flow tests: a real Prefect server, and the UI in headless Chromium (slow).

the flow against a real `prefect server start` on a free loopback port (temporary `PREFECT_HOME`): task runs
in order and chained in the run graph, skips, artifacts, the DVC invariant both ways, a failing stage, the
lock, the served deployment and the `prefect.yaml` + worker route; and the UI in headless Chromium (Debian's
`chromium` package, which `make test` installs through `make system`): the run, its task runs and the `plots`
artifact, each embedded image loaded (`naturalWidth > 0`); screenshots land in `test-screenshots/`. The same
flow and deployment tests on a server backed by PostgreSQL (Debian's `postgresql`, also installed by
`make system`), and runs started together on both databases. Events and alerts: a promoted model triggers
batch prediction (through `make serve` and through the work pool), a blocked promotion and a failed
retrain each POST one Slack-style notification to a loopback webhook.
"""
