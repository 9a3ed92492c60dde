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
"""Replicas whose .res files disagree, from what the nodes report.

A node that was unreachable while a flow rewrote a resource's .res (an
attach, a detach, an extend) keeps its old .res. Each replica's copy is
compared on what every replica must agree on (:func:`key`); the copy most
replicas hold, when more than half of them hold it, is the majority.
A replica that reports a pending zeroing (an extend whose zeroing of
the old metadata area did not finish) needs a repair too.

Clients (diskless hosts) are compared with the majority too, when their
reports are given: a client the majority lists whose .res has another
shape (an old ``allow-two-primaries``: DRBD refuses its next reconnect)
is stale; a client the majority no longer lists (detached while it was
unreachable) is left behind. Used by ``blackstor-manage check`` and by
:mod:`reconcile`.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Iterable, Mapping

from blackstor_cinder.cluster import inventory as inv


def key(definition: dict) -> tuple:
    """What replicas of one resource must agree on, the size included."""
    return shape(definition) + (inv.definition_size(definition),)


def shape(definition: dict) -> tuple:
    """:func:`key` without the device size.

    The majority is decided on the shape; the size to repair to is the
    largest any replica holds: a grow grows every LV first, so a replica
    left at the old size (unreachable or failed half-way) can take it,
    while pushing the old size back would shrink the others.
    """
    hosts = sorted(((h.get('name'), h.get('node_id'), h.get('address'),
                     h.get('port'), bool(h.get('diskful')), h.get('disk'),
                     bool(h.get('tiebreaker')))
                    for h in definition.get('hosts') or ()), key=repr)
    two = (definition.get('net') or {}).get('allow-two-primaries') == 'yes'
    return definition.get('minor'), tuple(hosts), two


def replicas(definition: dict | None) -> list[str]:
    """The diskful hosts a .res lists, by node-id."""
    hosts = sorted((definition or {}).get('hosts') or (),
                   key=lambda h: (h.get('node_id') is None,
                                  h.get('node_id') or 0))
    return [h['name'] for h in hosts if h.get('diskful')]


@dataclasses.dataclass
class Resource:
    """One DRBD resource as the storage nodes hold it."""

    name: str
    entries: dict[str, dict]      # storage node -> inventory entry
    copies: dict[str, dict]       # replica -> its .res (lists it diskful)
    majority: dict | None         # the .res most replicas agree on
    # client -> its .res (lists it diskless), from the clients' reports
    clients: dict[str, dict] = dataclasses.field(default_factory=dict)
    #: the majority is the copy listing the clients DRBD has connected
    #: (no majority of copies: see :func:`_by_connected_clients`)
    by_connected_clients: bool = False

    @property
    def definition(self) -> dict | None:
        if self.majority is not None:
            return self.majority
        for entry in list(self.copies.values()) + [
                e.get('definition') for e in self.entries.values()]:
            if entry:
                return entry
        return None

    @property
    def divergent(self) -> dict[str, dict]:
        """Replicas whose .res is not the majority's (all if no majority)."""
        if len({key(d) for d in self.copies.values()}) < 2:
            return {}
        if self.majority is None:
            return dict(self.copies)
        want = key(self.majority)
        return {n: d for n, d in self.copies.items() if key(d) != want}

    @property
    def stale_clients(self) -> list[str]:
        """Clients the majority lists whose .res has another shape.

        The shape, not the size: DRBD takes a client's size from its
        peers, and the agent's client adjust needs the shape only.
        """
        if self.majority is None:
            return []
        want = shape(self.majority)
        listed = {h.get('name') for h in self.majority.get('hosts') or ()
                  if not h.get('diskful')}
        return sorted(n for n, d in self.clients.items()
                      if n in listed and shape(d) != want)

    @property
    def left_clients(self) -> list[str]:
        """Clients the majority no longer lists, of the same replicas."""
        if self.majority is None:
            return []
        hosts = {h.get('name') for h in self.majority.get('hosts') or ()}
        mine = set(replicas(self.majority))
        return sorted(n for n, d in self.clients.items()
                      if n not in hosts and set(replicas(d)) == mine)

    @property
    def zero_pending(self) -> dict[str, list[int]]:
        """Replicas with a zeroing of an extend still to finish: range.

        Until it is finished the replicas may differ in that range while
        DRBD believes them in sync (see the agent's ``resize``).
        """
        return {node: entry['zero_pending']
                for node, entry in sorted(self.entries.items())
                if entry.get('zero_pending')}

    @property
    def sources(self) -> list[str]:
        """The replicas whose .res has the majority's shape."""
        if self.majority is None:
            return []
        want = shape(self.majority)
        return sorted(n for n, d in self.copies.items() if shape(d) == want)


def collect(replies: Mapping[str, dict]) -> dict[str, Resource]:
    """Every resource the storage nodes' .res files define.

    ``replies`` are the nodes' ``inventory`` replies (only their
    ``resources`` are read), by node name.
    """
    found: dict[str, Resource] = {}
    for node in sorted(replies):
        for name, entry in sorted((replies[node].get('resources')
                                   or {}).items()):
            entry = entry or {}
            res = found.setdefault(name, Resource(name, {}, {}, None))
            res.entries[node] = entry
            definition = entry.get('definition')
            me = [h for h in (definition or {}).get('hosts') or ()
                  if h.get('name') == node]
            if me and me[0].get('diskful'):
                res.copies[node] = definition
            elif me:
                res.clients[node] = definition
    for res in found.values():
        counts = collections.Counter(shape(d) for d in res.copies.values())
        if counts:
            top, count = counts.most_common(1)[0]
            if count * 2 > len(res.copies):
                res.majority = _largest(
                    [d for d in res.copies.values() if shape(d) == top],
                    res.copies.values())
            else:
                chosen = _by_connected_clients(res)
                if chosen is not None:
                    res.majority = _largest(chosen, res.copies.values())
                    res.by_connected_clients = True
    return found


def _clients_of(definition: dict) -> frozenset[str]:
    return frozenset(h.get('name') for h in definition.get('hosts') or ()
                     if not h.get('diskful') and not h.get('tiebreaker'))


def _without_clients(definition: dict) -> tuple:
    clients = _clients_of(definition)
    return shape(dict(definition, hosts=[
        h for h in definition.get('hosts') or ()
        if h.get('name') not in clients]))


def _by_connected_clients(res: Resource) -> list[dict] | None:
    """The copies to repair to when the replicas tie: or None.

    A two-replica volume has no majority when one replica missed an
    attach while it was down: its .res lacks the client, so DRBD never
    connects them, and the client loses its disk with the other replica.
    When the copies differ in their clients only, the copy that lists
    exactly the clients DRBD has connected to the replicas (at least
    one: a live attachment) is the one to keep. Anything else stays
    undecided.
    """
    copies = list(res.copies.values())
    if len(copies) < 2 or len({_without_clients(d) for d in copies}) != 1:
        return None
    listed = frozenset().union(*(_clients_of(d) for d in copies))
    connected: set[str] = set()
    for node in res.copies:
        connected.update(inv.connected_peers(
            (res.entries.get(node) or {}).get('state')))
    want = frozenset(connected) & listed
    chosen = [d for d in copies if _clients_of(d) == want]
    if not want or not chosen or len({shape(d) for d in chosen}) != 1:
        return None
    return chosen


def _largest(candidates: list[dict], every: Iterable[dict]) -> dict:
    """The candidate with the largest size, at the largest of ``every``."""
    def size(definition: dict) -> int:
        return inv.definition_size(definition) or 0
    best = max(candidates, key=size)
    top = max(every, key=size)
    if size(top) > size(best):
        best = dict(best, disk=dict(best.get('disk') or {},
                                    size=top['disk']['size']))
    return best


def from_status(name: str, replies: Mapping[str, dict]) -> Resource:
    """One resource from the nodes' ``status`` replies, by node name."""
    inventories = {
        node: {'resources': {name: {'definition': reply.get('definition'),
                                    'state': reply.get('state'),
                                    'zero_pending': reply.get(
                                        'zero_pending')}}}
        for node, reply in replies.items() if reply.get('exists')}
    return collect(inventories).get(name) or Resource(name, {}, {}, None)


def divergent_names(resources: Mapping[str, Mapping[str, Any]]
                    ) -> tuple[str, ...]:
    """Resources whose replicas' .res differ, or with a zeroing pending.

    Or with a stale or left-behind client, among the clients whose
    reports are given. Sorted. ``resources`` is each node's ``resources``
    of its inventory (resource name -> {definition, state,
    zero_pending}), by node name.
    """
    found = collect({node: {'resources': entries}
                     for node, entries in resources.items()})
    return tuple(sorted(n for n, res in found.items()
                        if res.divergent or res.zero_pending
                        or res.stale_clients or res.left_clients))


def confirmed(res: Resource, unknown: Iterable[str] = ()) -> bool:
    """Whether the majority is one of every replica, not only of those read.

    ``unknown``: nodes whose copy could not be read (unreachable). The
    majority counts only when the copies that agree with it are more than
    half of the copies read plus the replicas of ``unknown`` its .res
    lists (any of them may hold another copy). A replica that answered
    without a .res holds no copy and does not count.
    """
    if res.majority is None:
        return False
    unread = set(replicas(res.majority)) & set(unknown)
    if res.by_connected_clients:
        return not unread
    return len(res.sources) * 2 > len(set(res.copies) | unread)
