"""The dataflow as a Bytewax cluster: several processes, on one host or several.

Every process runs the same dataflow (`carbonstream flow --process-id I`, or all the processes of
this host under `carbonstream run --cluster`) with the same `[flow.cluster] addresses`; Bytewax
connects them over TCP and spreads the work:

- source partitions (one per journal partition) are spread over all workers; each is read by
  exactly one worker, whose resume state is its offset;
- keyed steps (meters per journal partition, EC per tower, CEMS per site) keep each key's state
  on one worker; records of a key that was read elsewhere are pickled and sent to it;
- Zarr sink partitions (chunk row-blocks mod `flow.sink_partitions`) are each owned by exactly one
  worker in the whole cluster, so the one-writer-per-chunk rule holds across processes and hosts.

Roll-ups are materialised by process 0 only (one writer of the entity products). With
`--stop-at-end`, process 0 waits for every peer to have finished (each writes its end in the
metadata database) before its final roll-up, so it rolls up the peers' last writes too.

This module only describes and checks the cluster; Bytewax itself is imported by the runner.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STATUS_CLUSTER = "flow.cluster"
"""Status component of cluster processes (key: process id): when each last finished."""


class ClusterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    addresses: list[str] = Field(
        description="host:port of every process of the cluster, in process-id order (the same "
        "list on every host). Each process listens on its own entry; the others must reach it.",
        min_length=1,
        max_length=256,
    )
    run_here: list[int] | None = Field(
        None,
        description="Process ids that `carbonstream run --cluster` starts on this host "
        "(default: all of them, i.e. a cluster on one host).",
    )
    peer_wait_s: float = Field(
        600.0,
        gt=0,
        description="With --stop-at-end, how long process 0 waits for its peers to finish "
        "before its final roll-up.",
    )

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for a in v:
            host, _, port = a.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"expected host:port, got {a!r}")
        dup = sorted({a for a in v if v.count(a) > 1})
        if dup:
            raise ValueError(f"address {dup[0]!r} is listed twice")
        return v

    @model_validator(mode="after")
    def _here(self) -> ClusterSettings:
        for i in self.run_here or []:
            if not 0 <= i < len(self.addresses):
                raise ValueError(
                    f"run_here: process {i} is not in addresses (0..{len(self.addresses) - 1})"
                )
        return self

    @property
    def processes(self) -> int:
        return len(self.addresses)

    @property
    def local_processes(self) -> list[int]:
        return list(range(self.processes)) if self.run_here is None else list(self.run_here)


class ClusterError(RuntimeError):
    """The process cannot take its place in the configured cluster."""


def check_process_id(settings: ClusterSettings | None, process_id: int | None) -> None:
    if settings is None:
        if process_id is not None:
            raise ClusterError("--process-id needs [flow.cluster] addresses in the configuration")
        return
    if process_id is None:
        raise ClusterError(
            "[flow.cluster] is configured: start each process with --process-id "
            f"(0..{settings.processes - 1}), or all of this host's with "
            "`carbonstream run --cluster`"
        )
    if not 0 <= process_id < settings.processes:
        raise ClusterError(
            f"--process-id {process_id} is not in [flow.cluster] addresses "
            f"(0..{settings.processes - 1})"
        )


def wait_for_peers(
    status: dict[tuple[str, str], tuple[dict[str, object], int]],
    processes: int,
    since_ns: int,
) -> list[int]:
    """Peers (process ids > 0) not yet finished since `since_ns`, from the cluster status rows."""
    waiting = []
    for p in range(1, processes):
        row = status.get((STATUS_CLUSTER, str(p)))
        finished = row[0].get("finished_ns") if row else None
        if not isinstance(finished, int) or finished < since_ns:
            waiting.append(p)
    return waiting


def now_ns() -> int:
    return time.time_ns()
