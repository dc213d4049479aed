"""What every fuzz test shares: a bounded hypothesis profile and byte/text mutations of valid input.

The profile keeps the whole `tests/fuzz` folder under a minute on a loaded 2-core machine:
examples are bounded, deadlines are off (a busy machine makes single examples slow, which is not
a bug), and the example database is kept out of the tree. A failure prints the reproducing
example; pin it as an explicit regression test next to the property that found it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
"""Profile of the fuzz properties (override `max_examples` per test where a case is costly)."""

PROTOCOL_BYTES = b'#0123456789;,=&-\r\n "\t.:TZ+NaEe'
"""Separators, digits and markers where parsers make their decisions."""


def protocol_bytes(max_size: int) -> st.SearchStrategy[bytes]:
    """Bytes biased toward `PROTOCOL_BYTES`, but able to be anything."""
    byte = st.one_of(st.sampled_from(PROTOCOL_BYTES), st.integers(0, 255))
    return st.lists(byte, max_size=max_size).map(bytes)


@st.composite
def mutated(draw: st.DrawFn, original: bytes, max_mutations: int = 5) -> bytes:
    """`original` with a few bytes flipped, replaced, inserted, deleted or duplicated: input that
    is almost right, which is where parsers break."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, max_mutations))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert" or not data:
            data[at:at] = bytes([draw(st.sampled_from(PROTOCOL_BYTES))])
            continue
        at = min(at, len(data) - 1)
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at] = draw(st.one_of(st.sampled_from(PROTOCOL_BYTES), st.integers(0, 255)))
        else:
            n = draw(st.integers(1, 40))
            piece = data[at : at + n]
            if op == "delete":
                del data[at : at + n]
            else:
                data[at:at] = piece
    return bytes(data)
