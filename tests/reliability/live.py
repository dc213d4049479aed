"""Helpers for fault tests against the running service: real senders that keep what was not
acknowledged and send it again (as utilities and data loggers do), small filesystems, and the
role processes seen from /proc."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from carbonstream.core import hj212
from connectors.hj212.packets import data_frame

S = 10**9
MINUTE = 60 * S


# -- filesystems -------------------------------------------------------------------------------


@contextmanager
def tmpfs(path: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of `size_bytes` mounted at `path` (root only), unmounted on the way out."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        _umount(path)


def _umount(path: Path) -> None:
    for _ in range(50):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.2)  # a process of the service may still be closing its files
    subprocess.run(["umount", "-l", str(path)], check=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path, leave_bytes: int) -> Path:
    """Writes a filler file in the filesystem of `path` until about `leave_bytes` remain free
    (0: until the disk is full); delete it to give the space back."""
    filler = path / "filler.bin"
    block = b"\0" * (64 << 10)
    with filler.open("wb") as f:
        while free_bytes(path) > leave_bytes + len(block):
            try:
                f.write(block)
                f.flush()
            except OSError:  # ENOSPC: as full as it gets
                break
        if leave_bytes == 0:
            with suppress(OSError):
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
    return filler


@contextmanager
def ext4(path: Path, image: Path, size_bytes: int) -> Iterator[Path]:
    """A fresh ext4 filesystem in `image`, mounted at `path` with errors=remount-ro (the usual
    setting: a filesystem error turns it read-only under the running processes)."""
    if not image.exists():
        with image.open("wb") as f:
            f.truncate(size_bytes)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(path)], check=True)
    try:
        yield path
    finally:
        _umount(path)


def trigger_fs_error(path: Path) -> Path:
    """Makes the kernel record an error on the ext4 filesystem at `path`, as a failing disk
    would; with errors=remount-ro it turns read-only at once, open files and all."""
    device = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    knob = Path("/sys/fs/ext4") / Path(device).name / "trigger_fs_error"
    knob.write_text("carbonstream fault test\n")
    return knob


def fsck(image: Path) -> None:
    """Replays the journal and repairs, as an operator does before mounting it again."""
    done = subprocess.run(["e2fsck", "-f", "-y", str(image)], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: errors corrected


# -- processes -------------------------------------------------------------------------------


def role_pids(supervisor_pid: int) -> dict[str, int]:
    """The role processes (`carbonstream ingest|flow|api`) `carbonstream run` started."""
    out: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid != supervisor_pid:
            continue
        args = [a.decode() for a in cmdline]
        for role in ("ingest", "flow", "api"):
            if "carbonstream" in args and role in args:
                out[role] = int(entry)
    return out


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for {pid}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` in Prometheus text whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric_name, _, label_text = head.partition("{")
        if metric_name != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
    return total


# -- senders ---------------------------------------------------------------------------------


@dataclass
class Refusal:
    status: int
    content_type: str
    body: dict[str, object]
    retry_after: str | None


@dataclass
class MeterSender:
    """Pushes readings over HTTP in order: every meter every `step_ns` (a minute), `per_batch`
    readings per meter in a batch. A batch without a 202 is sent again (after a short pause)
    until it gets one, so the readings stay in time order, as a utility's sender with a buffer
    would do. Reading k of meter i is `value(i, k)`; `keep_rows` keeps each acknowledged one."""

    base_url: str
    token: str
    meters: list[str]
    start_ns: int
    per_batch: int = 10
    step_ns: int = MINUTE
    keep_rows: bool = True
    pause_after_refusal_s: float = 0.2
    acked: dict[tuple[str, int], float] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    batches_acked: int = 0
    next_batch: int = 0
    """The batch to send next: kept across a restart of the sender (or of the service)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @staticmethod
    def value(i: int, k: int) -> float:
        return round(1000.0 * (i + 1) + 0.25 * k * (1 + i % 3), 3)

    def body(self, batch: int) -> tuple[bytes, dict[tuple[str, int], float]]:
        lines = ["meter,ts,value"]
        rows: dict[tuple[str, int], float] = {}
        for j in range(self.per_batch):
            k = batch * self.per_batch + j
            t = self.start_ns + k * self.step_ns
            for i, m in enumerate(self.meters):
                v = self.value(i, k)
                if self.keep_rows:
                    rows[(m, t)] = v
                lines.append(f"{m},{t // S},{v}")
        return ("\n".join(lines) + "\n").encode(), rows

    @property
    def rows_acked(self) -> int:
        return self.next_batch * self.per_batch * len(self.meters)

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meter-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "content-type": "text/csv"}
        with httpx.Client(base_url=self.base_url, timeout=30, headers=headers) as c:
            while not self._stop.is_set():
                body, rows = self.body(self.next_batch)
                try:
                    r = c.post("/v1/ingest/meters", content=body)
                except httpx.TransportError as exc:
                    self.errors.append(f"batch {self.next_batch}: {exc!r}")
                    time.sleep(self.pause_after_refusal_s)
                    continue
                if r.status_code == 202:
                    self.acked.update(rows)
                    self.batches_acked += 1
                    self.next_batch += 1
                    continue
                try:
                    problem = r.json()
                except ValueError:
                    problem = {"text": r.text}
                self.refusals.append(
                    Refusal(
                        r.status_code,
                        r.headers.get("content-type", ""),
                        problem,
                        r.headers.get("retry-after"),
                    )
                )
                time.sleep(self.pause_after_refusal_s)


@dataclass
class LoggerSender:
    """An HJ 212 data logger over a real TCP connection, stop-and-wait: it sends one minute
    packet (2051, Flag=5: answer wanted) and waits `answer_timeout_s` for its 9014; without it
    the same packet is sent again, on a new connection if the old one broke. Every answered
    packet is kept, with the CO2 average it carried."""

    host: str
    port: int
    mn: str
    password: str
    start_ns: int
    pace_s: float = 0.005
    answer_timeout_s: float = 1.0
    answered: dict[int, float] = field(default_factory=dict)
    """minute start (UTC ns) -> CO2 average (%) of each acknowledged packet."""
    unanswered: int = 0
    next_k: int = 0
    """The minute packet to send next: kept across a restart of the logger (or the service)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def frame(self, k: int) -> tuple[int, float, bytes]:
        t = self.start_ns + k * MINUTE
        co2 = round(10.0 + 0.5 * np.sin(k / 30.0), 3)
        readings: dict[str, dict[str, float | str]] = {
            "a05001": {"Avg": co2, "Min": co2, "Max": co2, "Flag": "N"},
        }
        frame = data_frame(
            cn=2051, mn=self.mn, pw=self.password, t_ns=t, offset_minutes=480, readings=readings
        )
        return t, co2, frame

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hj212-logger", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _connect(self) -> socket.socket:
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=5)
                sock.settimeout(self.answer_timeout_s)
                return sock
            except OSError:
                time.sleep(0.2)
        raise InterruptedError

    def _run(self) -> None:
        try:
            sock = self._connect()
        except InterruptedError:
            return
        decoder = hj212.StreamDecoder()
        try:
            while not self._stop.is_set():
                t, co2, frame = self.frame(self.next_k)
                qn = frame.split(b"QN=", 1)[1].split(b";", 1)[0].decode()
                try:
                    sock.sendall(frame)
                    if self._answer(sock, decoder, qn):
                        self.answered[t] = co2
                        self.next_k += 1
                        time.sleep(self.pace_s)
                        continue
                except OSError:
                    sock.close()
                    try:
                        sock = self._connect()
                    except InterruptedError:
                        return
                    decoder = hj212.StreamDecoder()
                self.unanswered += 1
        finally:
            sock.close()

    def _answer(self, sock: socket.socket, decoder: hj212.StreamDecoder, qn: str) -> bool:
        deadline = time.monotonic() + self.answer_timeout_s
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65_536)
            except TimeoutError:
                return False
            if not data:
                raise ConnectionResetError("server closed the connection")
            for item in decoder.feed(data):
                if item[0] == "packet" and hj212.decode(item[1])["packet"]["qn"] == qn:
                    return True
        return False
