"""A PostgreSQL database for the Prefect server: ``python -m flows.postgres`` (``make server-postgres``).

Prefect's server keeps its state in SQLite unless ``PREFECT_SERVER_DATABASE_CONNECTION_URL`` names
another database. SQLite suits one person's machine; a team server with several workers and
scheduled runs at once wants PostgreSQL (Prefect's docs: 14.9 or newer, with the ``pg_trgm``
extension). :class:`Cluster` runs Debian's PostgreSQL (``apt-get install postgresql``; ``make setup``
installs it) on a loopback port with its data in a folder of its own, makes the ``prefect``
database with ``pg_trgm``, and gives the connection URL. The command line starts that cluster and
``prefect server start`` on it, and stops both on Ctrl-C; the data folder
(``$PREFECT_HOME/postgres``, default ``~/.prefect/postgres``) keeps the runs between starts.

PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` user the Debian
package creates (through ``runuser``), and its data folder belongs to that user.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tasks.errors import StageError

DATABASE = "prefect"
USER = "prefect"
SYSTEM_USER = "postgres"  # the Debian package's user, for a cluster started as root


def bin_dir() -> Path:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl, ...), newest version first."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)):
        if (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    raise StageError("PostgreSQL is not installed (no pg_ctl): run `make setup`, or apt-get install postgresql")


class Cluster:
    """A PostgreSQL cluster in ``data_dir`` serving 127.0.0.1:``port``; made on first start."""

    def __init__(self, data_dir: Path, port: int):
        self.data_dir, self.port = Path(data_dir).resolve(), port
        self.bin = bin_dir()
        self.as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        """The connection URL for ``PREFECT_SERVER_DATABASE_CONNECTION_URL``."""
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, program: str, *args: str) -> str:
        cmd = [str(self.bin / program), *args]
        if self.as_root:
            cmd = ["runuser", "-u", SYSTEM_USER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            raise StageError(f"{program} {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return done.stdout

    def sql(self, statement: str, database: str = DATABASE) -> str:
        """Run one SQL statement with psql; its rows, one per line."""
        return self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database, "-qAtc", statement
        )

    def start(self) -> Cluster:
        fresh = not (self.data_dir / "PG_VERSION").is_file()
        if fresh:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.as_root:
                shutil.chown(self.data_dir, SYSTEM_USER, SYSTEM_USER)
        if (
            self.as_root
            and subprocess.run(["runuser", "-u", SYSTEM_USER, "--", "test", "-w", str(self.data_dir)]).returncode
        ):
            raise StageError(
                f"{self.data_dir}: the {SYSTEM_USER} user cannot write there (PostgreSQL will not run as root); "
                "pass --data a folder it can reach, e.g. /var/lib/postgresql/prefect"
            )
        if fresh:
            # trust on loopback only: the cluster listens on 127.0.0.1 and nowhere else
            self._run("initdb", "-D", str(self.data_dir), "-U", USER, "-A", "trust", "-E", "UTF8", "--locale", "C")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.data_dir}"
        log = self.data_dir / "server.log"
        self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
        if fresh:
            self.sql(f"CREATE DATABASE {DATABASE}", database="postgres")
            self.sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))
    parser = argparse.ArgumentParser(description="Start the Prefect server on a PostgreSQL database.")
    parser.add_argument("--data", type=Path, default=home / "postgres", help="the cluster's folder (%(default)s)")
    parser.add_argument("--db-port", type=int, default=5433, help="PostgreSQL's loopback port (%(default)s)")
    parser.add_argument("--port", type=int, default=4200, help="the Prefect server's port (%(default)s)")
    args = parser.parse_args(argv)
    with Cluster(args.data, args.db_port) as cluster:
        print(
            f"PostgreSQL in {cluster.data_dir} on 127.0.0.1:{cluster.port}; Prefect UI at http://127.0.0.1:{args.port}"
        )
        env = {**os.environ, "PREFECT_SERVER_DATABASE_CONNECTION_URL": cluster.url}
        server = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(args.port)]
        try:
            return subprocess.run(server, env=env).returncode
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    from tasks.cli import run_cli

    run_cli(lambda: sys.exit(main()))
