"""The Prefect server on PostgreSQL: the pipeline flow and both deployments, and runs at once on both databases.

A throw-away PostgreSQL cluster (flows/postgres.py: Debian's ``postgresql``, which ``make setup``
installs) on a loopback port backs this module's Prefect server. The flow and deployment tests of
tests/flows/test_flow.py are imported here and run again, unchanged, against it: pytest collects an
imported test function with the fixtures of the module it is imported into, so their
``prefect_server`` is the PostgreSQL-backed one below and ``flow_repo`` a repository copy of its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from flows.postgres import Cluster
from flows.server import answers
from tasks import synthetic
from tests.flows.test_flow import (  # noqa: F401  (collected here, with this module's server)
    test_first_run_runs_every_stage_in_order_records_dvc_lock_and_promotes_when_asked,
    test_served_deployments_have_their_crons_and_a_second_retrain_waits_for_the_first,
)
from tests.helpers.prefect_server import Server, free_port, prefect_home

pytestmark = pytest.mark.slow
LOCKED = "database is locked"
RETRYABLE = "Encountered retryable exception"  # the server's log line for each database error it answered 503


@pytest.fixture(scope="module")
def postgres():
    data = Path(tempfile.mkdtemp(prefix="prefect-pg-"))  # under /tmp: as root, the postgres user must reach it
    with Cluster(data, free_port()) as cluster:
        yield cluster
    shutil.rmtree(data)


@pytest.fixture(scope="module")
def prefect_server(postgres, tmp_path_factory):
    """This module's Prefect server keeps its state in PostgreSQL (the session's, tests/helpers, in SQLite)."""
    with Server(tmp_path_factory.mktemp("prefect-home-pg"), database_url=postgres.url) as server:
        yield server


def test_the_runs_read_back_through_the_api_are_the_rows_in_postgresql(postgres, prefect_server):
    api = {r["id"] for r in prefect_server.flow_runs()}
    rows = set(postgres.sql("SELECT id FROM flow_run WHERE start_time IS NOT NULL").split())
    assert len(api) >= 3  # the first run and the two triggered retrains above
    assert api <= rows
    assert "pg_trgm" in postgres.sql("SELECT extname FROM pg_extension").split()
    assert not (Path(prefect_server.env["PREFECT_HOME"]) / "prefect.db").exists()  # no SQLite database beside it


BATCHES = 4


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_flow_runs_and_batch_predictions_at_once(
    database, flow_repo, prefect_server, tmp_path, tmp_path_factory, capsys
):
    """One pipeline run and four batch predictions start together; every one completes.

    On PostgreSQL the server logs no database error at all; on SQLite the count of "database is
    locked" errors (each answered 503, then retried by the client) is printed, not asserted.
    """
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i, (_, _, data) in enumerate(synthetic.generate({"Test": 6}, 0.5, seed=3)):
        (inbox / f"{i}.jpg").write_bytes(data)
    predict = "import sys; from flows.predict import batch_predict; batch_predict([sys.argv[1]], output=sys.argv[2])"
    commands = [[sys.executable, "-m", "flows.pipeline", "--root", str(flow_repo)]] + [
        [sys.executable, "-c", predict, str(inbox), str(tmp_path / f"out-{i}.json")] for i in range(BATCHES)
    ]
    with contextlib.ExitStack() as stack:  # SQLite: a server of its own, stopped at the end
        server = (
            prefect_server
            if database == "postgresql"
            else stack.enter_context(Server(prefect_home(tmp_path_factory, "home")))
        )
        procs = [
            subprocess.Popen(c, cwd=flow_repo, env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for c in commands
        ]
        outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
        for proc, out in zip(procs, outputs):
            assert proc.returncode == 0, out[-3000:]
        for i in range(BATCHES):
            assert (tmp_path / f"out-{i}.json").is_file()
        batch = server.flow_runs("batch-predict")
        assert [r["state"]["type"] for r in batch[:BATCHES]] == ["COMPLETED"] * BATCHES
        assert server.flow_runs()[0]["state"]["type"] == "COMPLETED"
        log = (Path(server.env["PREFECT_HOME"]) / "server.log").read_text()
        if database == "postgresql":
            assert RETRYABLE not in log, log[-3000:]
        with capsys.disabled():
            print(f"\n{database}: {log.count(LOCKED)} '{LOCKED}', {log.count(RETRYABLE)} database errors answered 503")


def test_the_cluster_refuses_a_folder_its_user_cannot_reach(tmp_path):
    """As root, PostgreSQL runs as ``postgres``, which cannot enter pytest's root-only folders."""
    cluster = Cluster(tmp_path / "pg", free_port())
    if not cluster.as_root:
        pytest.skip("only root hands the cluster to the postgres user")
    with pytest.raises(Exception, match=r"pg: the postgres user cannot write there"):
        cluster.start()


def test_make_server_postgres_serves_the_api_from_postgresql_and_stops_both_on_ctrl_c():
    data = Path(tempfile.mkdtemp(prefix="prefect-pg-cli-"))
    port, db_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.postgres", "--data", str(data), "--db-port", str(db_port), "--port", str(port)],
        env={**os.environ, "PREFECT_HOME": str(data / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the whole group: this command and the server it started
    )
    try:
        deadline = time.monotonic() + 120
        while not answers(f"http://127.0.0.1:{port}/api"):
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the server did not answer in 120 s"
            time.sleep(1)
        tables = Cluster(data, db_port).sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_name='flow_run'"
        )
        assert tables.strip() == "1"  # Prefect made its tables in PostgreSQL
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert not (data / "postmaster.pid").exists()  # the cluster stopped with it
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)
