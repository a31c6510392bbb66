"""sandbox serve: `bulkpatch sandbox` serves on loopback, and says so in one line when it cannot."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
from conftest import CUSTOMER, SUB1


def test_sandbox_command_serves_on_loopback_and_prints_the_url(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bulkpatch",
            "sandbox",
            "--port",
            "0",
            "--db",
            str(tmp_path / "s.db"),
            "--token",
            "secret",
            "--seed",
            "2,3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Sandbox serving on http://127.0.0.1:")
        url = line.split()[3]
        assert httpx.get(f"{url}/_sandbox/stats", timeout=10).status_code == 200
        unknown = httpx.get(
            f"{url}/v1/customers/{CUSTOMER}/subscriptions/{SUB1}",
            timeout=10,
            headers={"Authorization": "Bearer secret"},
        )
        assert unknown.json()["code"] == 20003
    finally:
        process.terminate()
        process.wait(10)


def test_sandbox_command_on_a_busy_port_says_so_in_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bulkpatch",
                "sandbox",
                "--port",
                str(port),
                "--db",
                str(tmp_path / "s.db"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"bulkpatch: cannot listen on 127.0.0.1:{port} (Address "
        "already in use); choose another --port, or --port 0 for "
        "any free one."
    )
