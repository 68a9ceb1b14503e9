"""The ``parley`` command as an operator runs it: in a fresh directory, as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.servers import query

PARLEY = str(Path(sys.executable).with_name("parley"))


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    environment.update(env)
    return subprocess.run(
        [PARLEY, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )


def test_migrate_creates_the_default_sqlite_database_and_a_private_secret_key(
    tmp_path: Path,
) -> None:
    result = _run(["migrate"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "parley.db").exists()
    key_file = tmp_path / ".parley-secret-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "PARLEY_SECRET_KEY is not set" in result.stderr
    key = key_file.read_text()
    assert key.strip()
    assert key not in result.stderr + result.stdout
    # A second run keeps the same key.
    assert _run(["migrate"], tmp_path).returncode == 0
    assert key_file.read_text() == key


def test_createsuperuser_makes_a_staff_user(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    common = {"PARLEY_DATABASE_URL": url, "PARLEY_SECRET_KEY": "k" * 40}
    assert _run(["migrate"], tmp_path, **common).returncode == 0
    created = _run(
        ["createsuperuser", "--username", "root", "--email", "root@example.com"],
        tmp_path,
        PARLEY_SUPERUSER_PASSWORD="a-strong-password",
        **common,
    )
    assert created.returncode == 0, created.stderr
    assert query(url, "SELECT username, is_staff FROM users") == [("root", True)]
    again = _run(
        ["createsuperuser", "--username", "root", "--email", "root@example.com"],
        tmp_path,
        PARLEY_SUPERUSER_PASSWORD="a-strong-password",
        **common,
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr
    no_password = subprocess.run(
        [PARLEY, "createsuperuser", "--username", "x", "--email", "x@example.com"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")} | common,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert no_password.returncode == 2
    assert "PARLEY_SUPERUSER_PASSWORD" in no_password.stderr


def test_models_lists_the_offline_echo_model(tmp_path: Path) -> None:
    result = _run(["models"], tmp_path, PARLEY_SECRET_KEY="k" * 40)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("echo\t")
    assert "(default)" in result.stdout


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    result = _run(["models"], tmp_path, PARLEY_MAX_ACTIVE_CONVERSATIONS="ten")
    assert result.returncode == 2
    assert "max_active_conversations" in result.stderr


def test_serve_migrates_and_answers_on_the_configured_port(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    environment.update(PARLEY_PORT=str(port), PARLEY_HOST="127.0.0.1")
    process = subprocess.Popen(
        [PARLEY, "serve"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health/", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, "parley serve exited"
                assert time.monotonic() < deadline, "parley serve did not come up"
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    finally:
        process.terminate()
        process.wait(timeout=30)
