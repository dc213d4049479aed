"""The real service (`carbonstream run --config FILE`) as a benchmark drives it: one fresh data
directory per run, its process tree, tokens, health and metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningService:
    proc: subprocess.Popen[bytes]
    base_url: str
    config_path: Path
    data_dir: Path
    log_path: Path

    @classmethod
    def start(cls, workdir: Path, config_toml: str, api_port: int | None = None) -> RunningService:
        """Writes the configuration (the caller's text, with [storage] and [api] added here)
        and starts `carbonstream run` on it."""
        workdir.mkdir(parents=True, exist_ok=True)
        data_dir = workdir / "data"
        port = api_port or free_port()
        config_path = workdir / "carbonstream.toml"
        config_path.write_text(
            f'[storage]\ndata_dir = "{data_dir}"\n[api]\nport = {port}\n' + config_toml
        )
        log_path = workdir / "service.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONSTREAM_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "carbonstream", "run", "--config", str(config_path)],
            cwd=workdir,
            env=env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        return cls(proc, f"http://127.0.0.1:{port}", config_path, data_dir, log_path)

    def token(self, scopes: str) -> str:
        """A new API token (the same store `carbonstream tokens create` writes)."""
        from carbonstream.config import load_config
        from storage.tokens import TokenStore

        layout = load_config(self.config_path, environ={}).storage.layout
        layout.create()
        store = TokenStore(layout.metadata_db)
        try:
            return store.create("bench", scopes.split(","))
        finally:
            store.close()

    def health(self) -> dict[str, Any] | None:
        """/health's body (200 or 503), None while the API does not answer."""
        try:
            r = httpx.get(f"{self.base_url}/health", timeout=10.0)
        except httpx.TransportError:
            return None
        body: dict[str, Any] = r.json()
        return body

    def wait_ready(self, timeout_s: float = 120.0) -> dict[str, Any]:
        """Waits until every role reports alive (a loaded machine starts them slowly)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"service exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            h = self.health()
            if h is not None and all(r.get("alive") for r in h["roles"].values()):
                return h
            time.sleep(0.5)
        raise RuntimeError(f"service not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def metrics_text(self) -> str:
        r = httpx.get(f"{self.base_url}/metrics", timeout=30.0)
        r.raise_for_status()
        return r.text

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples (exposition text) whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total
