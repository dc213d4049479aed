"""The entity hierarchy (city -> district/county -> park -> enterprise -> meter) from the registry.

Entities live on the `entities` registry axis with attributes {name, kind, parent, activity};
a meter joins an entity through its `entity` attribute. An entity may hold meters directly and
child entities at once (a park with its own substation meter and its enterprises).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from storage.metadata import MetadataDB
from storage.products import ENTITIES_AXIS, METERS_AXIS


class EntityTreeError(ValueError):
    """A hierarchy that cannot be rolled up; the message names the entity and the problem."""


@dataclass(frozen=True)
class Activity:
    """What intensity is computed against: e.g. floor area 12,000 m2, output 3.5e5 t/year."""

    measure: str
    value: float
    unit: str


@dataclass(frozen=True)
class EntityNode:
    id: str
    row: int
    name: str
    kind: str
    parent: str | None
    activity: Activity | None

    @classmethod
    def from_attrs(cls, entity_id: str, row: int, attrs: Mapping[str, Any]) -> EntityNode:
        act = attrs.get("activity")
        return cls(
            id=entity_id,
            row=row,
            name=str(attrs.get("name") or entity_id),
            kind=str(attrs.get("kind") or "entity"),
            parent=attrs.get("parent"),
            activity=Activity(str(act["measure"]), float(act["value"]), str(act["unit"]))
            if act
            else None,
        )


def check_hierarchy(parents: Mapping[str, str | None]) -> None:
    """Refuses unknown parents and cycles (entity id -> parent id)."""
    for eid, parent in parents.items():
        if parent is not None and parent not in parents:
            raise EntityTreeError(f"entity {eid!r} has unknown parent {parent!r}")
    for eid in parents:
        seen = {eid}
        p = parents[eid]
        while p is not None:
            if p in seen:
                raise EntityTreeError(f"entity {eid!r} is its own ancestor (cycle through {p!r})")
            seen.add(p)
            p = parents[p]


class EntityTree:
    def __init__(self, nodes: Iterable[EntityNode], meter_entity: Mapping[int, str]) -> None:
        self.nodes = {n.id: n for n in sorted(nodes, key=lambda n: n.row)}
        check_hierarchy({n.id: n.parent for n in self.nodes.values()})
        self.children: dict[str, list[str]] = {eid: [] for eid in self.nodes}
        for n in self.nodes.values():
            if n.parent is not None:
                self.children[n.parent].append(n.id)
        direct: dict[str, list[int]] = {eid: [] for eid in self.nodes}
        self.orphan_meters = 0
        for row, eid in sorted(meter_entity.items()):
            if eid in direct:
                direct[eid].append(row)
            else:
                self.orphan_meters += 1
        self.direct_meters = {eid: np.array(rows, dtype=np.int64) for eid, rows in direct.items()}
        self.depth = {eid: len(self.ancestors(eid)) for eid in self.nodes}
        self._members: dict[str, int] = {}

    @classmethod
    def load(cls, db: MetadataDB) -> EntityTree:
        nodes = [EntityNode.from_attrs(s.id, s.idx, s.attrs) for s in db.streams(ENTITIES_AXIS)]
        meter_entity = {
            s.idx: str(s.attrs["entity"]) for s in db.streams(METERS_AXIS) if s.attrs.get("entity")
        }
        return cls(nodes, meter_entity)

    def ancestors(self, eid: str) -> list[str]:
        """Parents from the nearest up to the root."""
        out = []
        p = self.nodes[eid].parent
        while p is not None:
            out.append(p)
            p = self.nodes[p].parent
        return out

    def entities_of_meters(self, rows: Iterable[int]) -> set[str]:
        """Entities holding any of these meters directly."""
        wanted = set(rows)
        return {eid for eid, r in self.direct_meters.items() if wanted.intersection(r.tolist())}

    def with_ancestors(self, eids: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for e in eids:
            out.add(e)
            out.update(self.ancestors(e))
        return out

    def bottom_up(self, eids: Iterable[str]) -> list[str]:
        """Deepest first, so that children are computed before their parents."""
        return sorted(eids, key=lambda e: (-self.depth[e], self.nodes[e].row))

    def member_count(self, eid: str) -> int:
        """All meters below the entity, directly or through its descendants."""
        if eid not in self._members:
            self._members[eid] = int(self.direct_meters[eid].size) + sum(
                self.member_count(c) for c in self.children[eid]
            )
        return self._members[eid]

    def meter_rows_below(self, eid: str) -> list[int]:
        """Rows of every meter of the entity and its descendants."""
        rows = self.direct_meters[eid].tolist()
        for child in self.children[eid]:
            rows += self.meter_rows_below(child)
        return sorted(rows)

    def rows(self, eids: Sequence[str]) -> npt.NDArray[np.int64]:
        return np.array([self.nodes[e].row for e in eids], dtype=np.int64)
