"""``python -m ops.s3_local [--port N] [--bucket NAME]`` (``make s3-local``): an S3 API server on loopback, for trials.

moto's server mode (as dvc-s3's own tests use it) holds buckets in memory until it stops. It prints the
commands that make it the project's DVC remote; the credentials are moto's test ones, given through the
usual AWS variables, never written to ``.dvc/config``. A real bucket takes the same commands with its own
endpoint (or none, for AWS itself) and your credentials (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from collections.abc import Iterator

BUCKET = "dvc-team"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def s3_server(port: int = 0, bucket: str = BUCKET) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (``port`` 0: a free one) with ``bucket`` created; its endpoint URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, bound = server.get_host_and_port()
        url = f"http://{host}:{bound}"
        client = boto3.client("s3", endpoint_url=url, **_client_credentials())
        client.create_bucket(Bucket=bucket)
        yield url
    finally:
        server.stop()


def _client_credentials() -> dict[str, str]:
    """boto3's arguments for the test credentials (the AWS variables win where set)."""
    env = {k: os.environ.get(k, v) for k, v in CREDENTIALS.items()}
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


def instructions(url: str, bucket: str) -> str:
    """What to type to use the server as the team remote."""
    exports = " ".join(f"{k}={v}" for k, v in CREDENTIALS.items())
    return (
        f"S3 API on {url}, bucket {bucket} (in memory: gone when this stops; Ctrl-C stops it)\n"
        f"  export {exports}\n"
        f"  .venv/bin/dvc remote add -d team s3://{bucket}/dvc\n"
        f"  .venv/bin/dvc remote modify team endpointurl {url}\n"
        "  .venv/bin/dvc push"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--port", type=int, default=5555, help="port on 127.0.0.1 (default: %(default)s)")
    parser.add_argument("--bucket", default=BUCKET, help="the bucket to create (default: %(default)s)")
    args = parser.parse_args(argv)
    with s3_server(args.port, args.bucket) as url:
        print(instructions(url, args.bucket), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
