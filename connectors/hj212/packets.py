"""Building HJ 212 data packets: for the simulator, tests, and any source that is not a logger
(a Modbus data-acquisition unit polled by carbonstream can journal its readings as the packets a
logger would have sent, so they follow the same path: `journal_frames`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from carbonstream.core import hj212
from storage.journal import JournalEntry
from storage.journal_backend import JournalBackend
from storage.records import HJ212_PACKETS, encode_hj212_packets

Reading = tuple[float, str]
"""(value, data flag letter)."""


def local_time(t_ns: int, offset_minutes: int) -> datetime:
    """The wall-clock time of a logger at `offset_minutes` from UTC."""
    return datetime.fromtimestamp(t_ns / 1e9, UTC) + timedelta(minutes=offset_minutes)


def qn_text(t_ns: int, offset_minutes: int, serial: int = 0) -> str:
    """`QN`: the local time to the millisecond (`serial` ms added, to keep QNs unique)."""
    t = local_time(t_ns + serial * 1_000_000, offset_minutes)
    return t.strftime("%Y%m%d%H%M%S") + f"{t.microsecond // 1000:03d}"


def data_time_text(t_ns: int, offset_minutes: int) -> str:
    return local_time(t_ns, offset_minutes).strftime("%Y%m%d%H%M%S")


def number(v: float) -> str:
    """A value as loggers send it: plain decimal, at most 4 decimals, no exponent."""
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def segment(
    *,
    qn: str,
    st: int,
    cn: int,
    pw: str,
    mn: str,
    flag: int,
    data_time: str | None,
    groups: Sequence[Mapping[str, str]],
) -> str:
    """`QN=..;ST=..;CN=..;PW=..;MN=..;Flag=..;CP=&&DataTime=..;k=v,k=v;...&&`."""
    items = [f"DataTime={data_time}"] if data_time is not None else []
    items += [",".join(f"{k}={v}" for k, v in g.items()) for g in groups if g]
    cp = ";".join(items)
    return f"QN={qn};ST={st};CN={cn};PW={pw};MN={mn};Flag={flag};CP=&&{cp}&&"


def data_frame(
    *,
    cn: int,
    mn: str,
    pw: str,
    t_ns: int,
    offset_minutes: int,
    readings: Mapping[str, Mapping[str, float | str]],
    answer: bool = True,
    serial: int = 0,
    st: int = 31,
) -> bytes:
    """A data packet (2011 real-time, 2051 minute, 2061 hour) for the period starting `t_ns`:
    `readings` maps a code to its suffixed values, e.g. {"a05001": {"Rtd": 11.2, "Flag": "N"}}."""
    groups = [
        {
            f"{code}-{suffix}": (v if isinstance(v, str) else number(v))
            for suffix, v in values.items()
        }
        for code, values in readings.items()
    ]
    seg = segment(
        qn=qn_text(t_ns, offset_minutes, serial),
        st=st,
        cn=cn,
        pw=pw,
        mn=mn,
        flag=5 if answer else 4,
        data_time=data_time_text(t_ns, offset_minutes),
        groups=groups,
    )
    return hj212.encode_frame(seg)


def journal_frames(
    journal: JournalBackend, site: str, mn: str, frames: Sequence[tuple[int, bytes]], peer: str
) -> tuple[int, int]:
    """Journals frames (cn, frame) of one site as the server does; durable on return.
    Returns (partition, offset)."""
    p = journal.partition_for(site)
    payload = encode_hj212_packets(
        [site] * len(frames),
        [mn] * len(frames),
        [cn for cn, _ in frames],
        [int(datetime.now(UTC).timestamp() * 1e9)] * len(frames),
        [peer] * len(frames),
        [f for _, f in frames],
    )
    (offset,) = journal.append(p, [JournalEntry(site, HJ212_PACKETS, payload)])
    return p, offset
