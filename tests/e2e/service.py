"""Starting and stopping the real service (`carbonstream run`) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    log_path: Path
    started: float
    cwd: Path
    config: Path | None
    env: dict[str, str]
    _admin: str | None = None

    @classmethod
    def start(
        cls,
        cwd: Path,
        port: int,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> Service:
        cmd = [sys.executable, "-m", "carbonstream", "run", *args]
        if config is not None:
            cmd += ["--config", str(config)]
        log_path = cwd / "service.log"
        # The HJ 212 server gets a port of its own too, so services of several tests can run.
        full_env = {
            **os.environ,
            "CARBONSTREAM_API__PORT": str(port),
            "CARBONSTREAM_CEMS__SERVER__PORT": str(_free_port()),
            **(env or {}),
        }
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=full_env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT
        )
        return cls(
            proc,
            f"http://127.0.0.1:{port}",
            cwd / "data",
            log_path,
            time.monotonic(),
            cwd,
            config,
            full_env,
        )

    def token(self, scopes: str = "admin") -> str:
        """A new API token of the service's data directory (via `carbonstream tokens create`)."""
        cmd = [
            sys.executable,
            "-m",
            "carbonstream",
            "tokens",
            "create",
            "--name",
            "tests",
            "--scopes",
            scopes,
        ]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        out = subprocess.run(
            cmd, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def client(self, token: str | None = None) -> httpx.Client:
        """A client of the service; it writes with an admin token unless given another."""
        if token is None:
            if self._admin is None:
                self._admin = self.token("admin")
            token = self._admin
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, timeout=30.0, headers=headers)

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout_s: float = 30.0) -> T:
        """Polls `probe` until it returns something other than None; connection errors and 503
        (a role not yet reporting on a slow machine) are retried, other HTTP errors are not."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"service exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                result = probe()
            except httpx.TransportError:
                result = None
            except httpx.HTTPStatusError as e:
                if e.response.status_code != 503:
                    raise
                result = None
            if result is not None:
                return result
            time.sleep(0.2)
        raise AssertionError(
            f"timed out after {timeout_s} s waiting for {what}:\n{self.log_tail()}"
        )

    def get_json(self, path: str, **params: Any) -> Any:
        with self.client(token="") as c:  # reads need no token (api.anonymous_read)
            r = c.get(path, params=params)
            r.raise_for_status()
            return r.json()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
