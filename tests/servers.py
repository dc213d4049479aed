"""Real servers on loopback for the scale-out tests, started once per test session.

- PostgreSQL: Debian's server binaries (`make test` installs the `postgresql` package when they
  are missing), a throw-away cluster made by `initdb` in a temporary directory, on a free port.
  PostgreSQL refuses to run as root, so under root it runs as the `postgres` system user.
- Kafka: a single-node broker in KRaft mode (broker and controller in one JVM). Its jars come
  from Maven Central through Maven (tests/kafka-broker.pom.xml, cached under ~/.cache; `make test`
  installs Debian's `maven` package where Java is present), run by the machine's Java 17.
  Where Java is absent the Kafka tests are skipped, saying so.
- S3: moto's server mode (`python -m moto.server`) in its own process on a free port.

Each fixture yields an address and stops its server at the end of the session. Nothing listens
on anything but 127.0.0.1.
"""

from __future__ import annotations

import base64
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

KAFKA_VERSION = "3.9.1"
POM = Path(__file__).with_name("kafka-broker.pom.xml")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "carbonstream-test"


def cluster_addresses(n: int) -> list[str]:
    """n loopback addresses for the processes of a Bytewax cluster.

    Unlike `free_port`, the ports are drawn below the kernel's ephemeral range: a cluster's
    addresses are chosen before its processes bind them (and reused across restarts), and in
    the ephemeral range the kernel may meanwhile hand the port to someone's outgoing
    connection or `bind(0)`, which makes a cluster process fail to listen."""
    import random

    lo, _ = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    out: list[str] = []
    while len(out) < n:
        port = random.randrange(max(1024, lo - 12_000), lo)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if f"127.0.0.1:{port}" not in out:
            out.append(f"127.0.0.1:{port}")
    return out


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- PostgreSQL ---------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: install Debian's `postgresql` package "
        "(`make test` does it)"
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server; yields a URL to its `postgres` database (create your own in it)."""
    bindir = postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="carbonstream-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            *as_user,
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(sock),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",  # a test cluster: durability is the server's business, not ours
            "-c",
            "max_connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(root / "postgres.log").open("wb"),
    )
    try:
        _wait_port(port, 30, proc, "postgres")
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait_accepting(url, proc)
        yield url
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _wait_accepting(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Listening is not enough: connections are refused while the server starts up."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def new_database(server_url: str) -> str:
    """A fresh empty database on the server; returns its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name


# -- Kafka --------------------------------------------------------------------------------------


def kafka_jars() -> Path:
    """The broker's jars, fetched from Maven Central with Maven on first use."""
    libs = CACHE / f"kafka-{KAFKA_VERSION}" / "libs"
    if (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return libs
    if shutil.which("mvn") is None:
        raise RuntimeError(
            "Maven (`mvn`) is needed to fetch the Kafka broker's jars: `make test-servers` "
            "installs it (Debian package `maven`)"
        )
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ],
        check=True,
    )
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    return libs


_LOG4J = """log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """A single-node KRaft broker; yields its bootstrap address."""
    java = shutil.which("java")
    if java is None:
        pytest.skip("Kafka tests need Java (17+) to run a real broker; `java` is not installed")
    libs = kafka_jars()
    root = Path(tempfile.mkdtemp(prefix="carbonstream-kafka-"))
    port, controller = free_port(), free_port()
    props = root / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={root / 'data'}",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "",
            ]
        )
    )
    (root / "log4j.properties").write_text(_LOG4J)
    cp = f"{libs}/*"
    log4j = f"-Dlog4j.configuration=file:{root / 'log4j.properties'}"
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    storage_tool = [java, "-cp", cp, log4j, "kafka.tools.StorageTool"]
    subprocess.run(
        [*storage_tool, "format", f"--cluster-id={cluster_id}", "-c", str(props)],
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [java, "-Xmx512m", "-XX:+UseSerialGC", "-cp", cp, log4j, "kafka.Kafka", str(props)],
        stdout=subprocess.DEVNULL,
        stderr=(root / "kafka.log").open("wb"),
    )
    try:
        _wait_port(port, 60, proc, "kafka")
        yield f"127.0.0.1:{port}"
    finally:
        # A throw-away broker: its orderly shutdown (~10 s of leader hand-over and log closing)
        # buys nothing, so it is killed.
        proc.kill()
        proc.wait()
        shutil.rmtree(root, ignore_errors=True)


# -- S3 (moto server mode) ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server; yields its endpoint URL (any access key is accepted)."""
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="carbonstream-moto-"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=(root / "moto.log").open("wb"),
    )
    try:
        _wait_port(port, 30, proc, "moto server")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def new_bucket(endpoint: str) -> str:
    import boto3

    name = f"t-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=name)
    return name
