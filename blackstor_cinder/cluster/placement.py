# Copyright 2026 BlackStor developers
#
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""Where replicas go, and how much can still be placed.

Capacity is reported the way placement works: a volume needs ``replicas``
copies on distinct nodes (distinct zones when spread), so the space that can
still be used is neither the sum of the nodes' free space nor the smallest
node's: it is the largest total T such that every node (or zone) holding at
most T of it, the nodes together hold ``replicas * T``.

Creates run concurrently: :class:`InFlight` lists the volumes placed but not
yet on their nodes, so that the next placement counts them as the nodes
will report them once created (provisioned bytes, one more resource).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Collection, Iterable, Mapping, Sequence

from blackstor_cinder.cluster import errors
from blackstor_cinder import protocol

ANY = protocol.ZONE_ANY
SPREAD = protocol.ZONE_SPREAD
ZONE_POLICIES = protocol.ZONE_POLICIES


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A storage node as placement sees it."""

    name: str
    zone: str | None
    total_bytes: int
    free_bytes: int
    provisioned_bytes: int
    resources: int = 0

    def virtual_free(self, over_subscription: float) -> int:
        """Thin space still promised-able on this node."""
        return int(self.total_bytes * over_subscription
                   - self.provisioned_bytes)


class InFlight:
    """Volumes being created: their nodes and size, until the create ends.

    A thin LV takes no data blocks when it is made, so a finished create
    changes a node's provisioned bytes and resource count, not its free
    space; a volume in flight counts the same way. Once a node reports the
    volume's LV (or .res) itself, that part is not counted twice.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._volumes: dict[str, tuple[frozenset[str], int]] = {}

    def add(self, name: str, nodes: Iterable[str], size: int) -> None:
        with self._lock:
            if name in self._volumes:
                raise ValueError(f'{name} is already being created')
            self._volumes[name] = (frozenset(nodes), size)

    def discard(self, name: str) -> None:
        with self._lock:
            self._volumes.pop(name, None)

    def names(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._volumes)

    def apply(self, cand: Candidate, volumes: Collection[str],
              resources: Collection[str]) -> Candidate:
        """``cand`` with what is in flight to it and not yet reported.

        ``volumes`` and ``resources`` are the LV and .res names the node
        reported with the figures of ``cand``.
        """
        extra_bytes = extra_resources = 0
        with self._lock:
            for name, (nodes, size) in self._volumes.items():
                if cand.name not in nodes:
                    continue
                if name not in volumes:
                    extra_bytes += size
                if name not in resources:
                    extra_resources += 1
        if not (extra_bytes or extra_resources):
            return cand
        return dataclasses.replace(
            cand, provisioned_bytes=cand.provisioned_bytes + extra_bytes,
            resources=cand.resources + extra_resources)


def placeable_total(capacities: Iterable[int], replicas: int) -> int:
    """Largest T with sum(min(c, T)) >= replicas * T (bytes).

    ``capacities`` are per failure domain (node, or zone when spread): one
    volume puts at most one replica in each.
    """
    caps = sorted((max(0, int(c)) for c in capacities), reverse=True)
    if replicas < 1 or len(caps) < replicas:
        return 0
    # g(T) = sum(min(c, T)) - replicas*T is concave with g(0) = 0, so the
    # T with g(T) >= 0 form an interval [0, T*]: bisect for T*.
    low, high = 0, sum(caps) // replicas
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(c, mid) for c in caps) >= replicas * mid:
            low = mid
        else:
            high = mid - 1
    return low


def _domains(candidates: Sequence[Candidate], policy: str) -> dict:
    """Failure domain name -> its candidates."""
    domains: dict[str, list[Candidate]] = {}
    for cand in candidates:
        key = (cand.zone or cand.name) if policy == SPREAD else cand.name
        domains.setdefault(key, []).append(cand)
    return domains


def domain_count(candidates: Sequence[Candidate], policy: str) -> int:
    """How many failure domains the candidates make (one replica each)."""
    return len(_domains(candidates, policy))


def capacity(candidates: Sequence[Candidate], replicas: int, policy: str,
             field: str = 'free_bytes') -> int:
    """Bytes that can still be placed with ``replicas`` copies."""
    domains = _domains(candidates, policy)
    return placeable_total(
        (sum(getattr(c, field) for c in members)
         for members in domains.values()), replicas)


def largest_volume(candidates: Sequence[Candidate], replicas: int,
                   policy: str, over_subscription: float) -> int:
    """The largest single volume that fits (bytes), thin-provisioned."""
    best_per_domain = sorted(
        (max(c.virtual_free(over_subscription) for c in members)
         for members in _domains(candidates, policy).values()),
        reverse=True)
    if len(best_per_domain) < replicas:
        return 0
    return max(0, best_per_domain[replicas - 1])


def require_room(candidates: Sequence[Candidate], nodes: Sequence[str],
                 size: int, over_subscription: float,
                 unavailable: Mapping[str, str] | None = None) -> None:
    """Refuse unless each of ``nodes`` can take ``size`` more bytes.

    For replicas whose nodes are given (a volume from a snapshot goes
    where the snapshot is): the test :func:`place` makes of a candidate.
    ``unavailable``: the nodes that are not candidates, and why.
    """
    by_name = {c.name: c for c in candidates}
    problems = []
    for node in nodes:
        cand = by_name.get(node)
        if cand is None:
            problems.append(f'{node} is not available: '
                            f'{(unavailable or {}).get(node, "no inventory")}')
        elif cand.virtual_free(over_subscription) < size:
            problems.append(
                f'{node} has room for '
                f'{max(0, cand.virtual_free(over_subscription))} more bytes '
                f'(max_over_subscription_ratio {over_subscription:g})')
    if problems:
        raise errors.PlacementError(
            f'a volume of {size} bytes does not fit on '
            f'{", ".join(nodes)}: ' + '; '.join(problems))


def place(candidates: Sequence[Candidate], size: int, replicas: int,
          policy: str, over_subscription: float,
          unavailable: Mapping[str, str] | None = None) -> list[str]:
    """Pick ``replicas`` node names for a volume of ``size`` bytes.

    Nodes with the most free physical space and the fewest resources go
    first; with the spread policy no two replicas share a zone.
    ``unavailable``: the storage nodes that are not candidates, and why
    (unreachable, refused); a refusal names them with their reasons.
    """
    if policy not in ZONE_POLICIES:
        raise errors.InvalidRequest(
            f'unknown zone policy {policy!r}; use one of {ZONE_POLICIES}')
    fitting = [c for c in candidates
               if c.virtual_free(over_subscription) >= size]
    ranked = sorted(fitting,
                    key=lambda c: (-c.free_bytes, c.resources, c.name))
    chosen: list[Candidate] = []
    zones: set[str] = set()
    for cand in ranked:
        zone = cand.zone or cand.name
        if policy == SPREAD and zone in zones:
            continue
        chosen.append(cand)
        zones.add(zone)
        if len(chosen) == replicas:
            return [c.name for c in chosen]
    domains = len(_domains(candidates, policy))
    what = 'zones' if policy == SPREAD else 'storage nodes'
    why = ''.join(f'; {node} is not available: {reason}'
                  for node, reason in sorted((unavailable or {}).items()))
    if domains < replicas:
        raise errors.PlacementError(
            f'{replicas} replicas asked but only {domains} {what} are '
            f'available{why}')
    largest = largest_volume(candidates, replicas, policy,
                             over_subscription)
    raise errors.PlacementError(
        f'not enough space for {replicas} replicas of {size} bytes on '
        f'distinct {what}: the largest volume that can be placed now is '
        f'{largest} bytes{why}')
