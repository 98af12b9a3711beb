"""A MongoDB wire-protocol server for tests: `nx-27017` (SQLite behind the real protocol) on a free
loopback port, or the real MongoDB at MOXI_TEST_MONGODB_URI when that is set. Never a mock."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moxi_pipeline.settings import load_settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_ping(uri: str, process: subprocess.Popen, log: Path, timeout_s: float = 30.0) -> None:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nx-27017 exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with MongoClient(uri, serverSelectionTimeoutMS=500) as client:
                client.admin.command("ping")
            return
        except PyMongoError:
            time.sleep(0.1)
    raise RuntimeError(f"nx-27017 did not answer a ping within {timeout_s:g}s")


@contextmanager
def mongodb_uri(workdir: Path) -> Iterator[str]:
    """A URI to a server that lives as long as the block: the one in MOXI_TEST_MONGODB_URI, or nx-27017."""
    real = load_settings().test_mongodb_uri
    if real is not None:
        yield real.get_secret_value()
        return
    port = _free_port()
    log = workdir / "nx-27017.log"
    command = [sys.executable, "-m", "nx_27017.nx_27017", "--db", "memory", "--host", "127.0.0.1", "-p", str(port),
               "--log-file", str(log), "--pid-file", str(workdir / "nx-27017.pid")]
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        uri = f"mongodb://127.0.0.1:{port}"
        _wait_for_ping(uri, process, log)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
