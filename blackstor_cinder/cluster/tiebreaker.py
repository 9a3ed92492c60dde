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
"""The tiebreaker of a two-replica volume: which node, which host entry.

What DRBD does with it (drbd_state.c, ``calc_quorum``, DRBD 9.2.18): only
diskful nodes vote. With ``quorum majority`` and two replicas, a replica
that loses its peer has 1 vote of 2, one short of the majority; because
the voters are an even number and it failed by one vote, it keeps quorum
if it had quorum and is connected to a majority of the resource's
intentionally diskless peers (``disk none``; clients and tiebreakers
alike, those configured but absent counted against it). That rule does
not apply ``quorum-minimum-redundancy``, which BlackStor does not set. So
a diskless peer on a third node, always up, gives a two-replica volume
the third vote the clients give it only while attached.

Clients count in the same majority: with the tiebreaker and one attached
client, a lone replica needs both; a client that is detached but whose
slot DRBD still remembers (a peer once connected keeps ``MDF_NODE_EXISTS``
in the metadata until ``forget-peer``) counts as absent.

The tiebreaker is a storage node that holds no replica of the volume, in
another zone than the replicas where there is one, with the volume's minor
and port free. To DRBD it is an ordinary diskless peer brought up by that
node's agent (``adjust``); its role is ours (``ResourceHost.tiebreaker``,
kept in the .res as a comment, see ``node.resrender``): it is not a user
of the volume for ``allow-two-primaries``, a detach keeps it, and it is
counted in the ``blackstor_max_peers`` hosts like any host. An attach on
its node makes it the client there; the detach that follows makes it the
tiebreaker again (see :func:`kept_on_detach`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from typing import Iterable, Mapping, Sequence

from blackstor_cinder.cluster import allocation
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import reconfigure
from blackstor_cinder.cluster import transport as tp

LOG = logging.getLogger(__name__)

#: replicas a volume has when it gets a tiebreaker
REPLICAS = 2
#: clients a tiebreaker leaves room for: a live migration's two
LIVE_MIGRATION_CLIENTS = 2


def wanted(spec: model.ResourceSpec) -> bool:
    """Whether the volume is one that gets a tiebreaker."""
    return len(spec.diskful_hosts) == REPLICAS


def third_vote(config: model.ClusterConfig,
               spec: model.ResourceSpec) -> model.ResourceHost | None:
    """The diskless host on a storage node that acts as the tiebreaker.

    The tiebreaker itself, or a client on a storage node that was the
    tiebreaker before its node attached the volume (to DRBD the same).
    Not on a node that is no longer a configured storage node.
    """
    return next((h for h in spec.diskless_hosts
                 if _storage_node(config, h.name)), None)


def replaced(config: model.ClusterConfig, spec: model.ResourceSpec,
             lost: Iterable[str]) -> str | None:
    """The node of a tiebreaker to replace: lost, or no storage node now."""
    host = spec.tiebreaker_host
    if host is not None and (host.name in set(lost)
                             or not _storage_node(config, host.name)):
        return host.name
    return None


def missing(config: model.ClusterConfig, spec: model.ResourceSpec) -> bool:
    """A volume that should have a tiebreaker and has none."""
    return wanted(spec) and third_vote(config, spec) is None


def fits(spec: model.ResourceSpec) -> bool:
    """The tiebreaker is within the volume's ``max_peers`` + 1 hosts.

    With room left for the clients of a live migration (two) besides: a
    tiebreaker never takes the place a volume needs to be attached.
    """
    clients = max(len(spec.client_hosts), LIVE_MIGRATION_CLIENTS)
    return len(spec.diskful_hosts) + 1 + clients <= spec.max_peers + 1


def choose(config: model.ClusterConfig, replicas: Sequence[str],
           reports: Mapping[str, inv.NodeInventory],
           exclude: Iterable[str] = ()) -> str | None:
    """The storage node for the tiebreaker of ``replicas``, or None.

    ``reports``: the inventories of the storage nodes that may serve (the
    ones answering and not refused, the volume's minor and port free
    there). Not a replica, not in ``exclude`` (the volume's other hosts,
    nodes lost), an address of the replicas' IP version; a zone none of
    the replicas is in first, then the node with the fewest resources.
    """
    skip = set(exclude) | set(replicas)
    zones = {getattr(config.node(name), 'zone', None) for name in replicas}
    family = ipaddress.ip_address(
        config.node(replicas[0]).replication_address).version
    options = []
    for node in config.storage_nodes:
        report = reports.get(node.name)
        if (report is None or node.name in skip
                or ipaddress.ip_address(node.replication_address).version
                != family):
            continue
        same_zone = node.zone is None or node.zone in zones
        options.append((same_zone, len(report.resources), node.name))
    return min(options)[2] if options else None


def with_tiebreaker(spec: model.ResourceSpec,
                    node: model.Node) -> model.ResourceSpec:
    """``spec`` with a tiebreaker on ``node`` (lowest free node-id)."""
    host = model.ResourceHost(
        name=node.name,
        node_id=allocation.next_node_id(h.node_id for h in spec.hosts),
        address=node.replication_address, diskful=False, tiebreaker=True)
    return spec.with_hosts(tuple(sorted(spec.hosts + (host,),
                                        key=lambda h: h.node_id)))


def without(spec: model.ResourceSpec, name: str) -> model.ResourceSpec:
    """``spec`` without the host ``name``."""
    return spec.with_hosts(tuple(h for h in spec.hosts if h.name != name))


def as_client(host: model.ResourceHost) -> model.ResourceHost:
    """The tiebreaker attached on its own node: a client there."""
    return dataclasses.replace(host, tiebreaker=False)


def kept_on_detach(config: model.ClusterConfig, spec: model.ResourceSpec,
                   leaving: Iterable[model.ResourceHost]) -> set[str]:
    """The leaving clients that stay, as the tiebreaker, and not detached.

    A client on a storage node of a volume that wants a tiebreaker and
    would have none left (the tiebreaker attached on its own node, see
    :func:`as_client`): it stays up, only its role changes back.
    """
    if not wanted(spec) or spec.tiebreaker_host is not None:
        return set()
    for host in leaving:
        if _storage_node(config, host.name):
            return {host.name}
    return set()


def restored(host: model.ResourceHost) -> model.ResourceHost:
    """A client kept by :func:`kept_on_detach`, the tiebreaker again."""
    return dataclasses.replace(host, tiebreaker=True)


def _storage_node(config: model.ClusterConfig, name: str) -> bool:
    node = config.node(name)
    return node is not None and node.storage


# -- the flows: placing and removing tiebreakers on the nodes ----------------

def ensure(ctl: core.Core, name: str, lost: Iterable[str] = (),
           wait: bool = True) -> str:
    """Give a two-replica volume a tiebreaker if it has none; say what.

    ``lost``: nodes that will not come back: a tiebreaker there is
    replaced (or removed from the .res when no node can take it).
    ``wait`` False: 'busy' when another flow holds the volume. A
    tiebreaker that cannot be placed is not an error: the volume
    works without, as before (see the module's docstring).
    """
    lock = ctl.resource_lock(name)
    if not lock.acquire(blocking=wait):
        return 'busy'
    try:
        found = ctl.require(name)
        spec = found.spec
        current = third_vote(ctl.config, spec)
        if not wanted(spec):
            return 'no tiebreaker: not a volume of two replicas'
        if current is not None and current.name not in set(lost):
            return f'tiebreaker on {current.name}'
        new = place(ctl, spec, found, avoid=lost)
    finally:
        lock.release()
    if new == spec:
        return 'unchanged: no tiebreaker could be placed (see the log)'
    placed = new.tiebreaker_host
    return (f'tiebreaker placed on {placed.name}' if placed
            else 'tiebreaker removed: no storage node can take it')


def place(ctl: core.Core, spec: model.ResourceSpec, found: core.Found,
          avoid: Iterable[str] = ()) -> model.ResourceSpec:
    """The volume with a tiebreaker on a node not in ``avoid``.

    A tiebreaker on a node of ``avoid`` is replaced, or removed when
    no node can take its place. Returns the spec the nodes hold.
    """
    avoid = set(avoid)
    base = spec
    lost = replaced(ctl.config, spec, avoid)
    if lost is not None:
        avoid.add(lost)
        base = without(spec, lost)
    if not fits(base):
        return push(ctl, spec, base, found, None)
    reports, _ = ctl.inventories_of(
        n for n in ctl.config.storage_nodes
        if base.host(n.name) is None and n.name not in avoid)
    refused = ctl.refused(reports)
    chosen = choose(
        ctl.config, [h.name for h in base.diskful_hosts],
        {n: r for n, r in reports.items() if n not in refused
         and not r.taken_by_others(spec.name, spec.minor, spec.port)},
        avoid)
    return push(ctl, spec, base, found, chosen)


def choose_at_create(ctl: core.Core, inventories: dict[str, inv.NodeInventory],
                     replicas: list[str]) -> str | None:
    """At a create's decision: the node of its tiebreaker, if any.

    The create's minor and port are reserved free on every node of
    ``inventories``, so they are free on the one chosen.
    """
    if len(replicas) != REPLICAS:
        return None
    refused = ctl.refused(inventories)
    return choose(
        ctl.config, replicas,
        {n: r for n, r in inventories.items() if n not in refused})


def push(ctl: core.Core, old: model.ResourceSpec,
         base: model.ResourceSpec, found: core.Found,
         chosen: str | None) -> model.ResourceSpec:
    """Replicas, then the tiebreaker on ``chosen``, then clients.

    Best effort: when the tiebreaker's node fails, the replicas get
    ``old`` back and the volume stays as it was (the stats list it,
    the periodic repair tries again). Returns the spec the nodes hold.
    """
    new = base
    if not fits(base):
        LOG.warning('%(res)s gets no tiebreaker: blackstor_max_peers '
                    '%(max)s leaves no room for it and the two clients '
                    'of a live migration',
                    {'res': old.name, 'max': old.max_peers})
    elif chosen is None:
        LOG.warning('%(res)s has two replicas and no tiebreaker: no '
                    'other storage node answers with its minor and '
                    'port free; after a replica loss it keeps quorum '
                    'only through its attached clients',
                    {'res': old.name})
    else:
        new = with_tiebreaker(base, ctl.config.node(chosen))
    if new == old:
        return old
    node = new.tiebreaker_host
    try:
        reconfigure.adjust_storage(ctl, new, found)
        if node is not None:
            ctl.each_or_raise('adjust of the tiebreaker',
                              ctl.nodes([node]),
                              ctl.res_request('adjust', new))
    except errors.ClusterError as exc:
        LOG.warning('Tiebreaker of %(res)s not placed on %(node)s, the '
                    'volume keeps its hosts: %(err)s',
                    {'res': old.name, 'node': chosen, 'err': exc})
        reconfigure.adjust_storage(ctl, old, found, quiet=True)
        if node is not None:
            # never an LV: a delete without pool takes a .res down
            ctl.each(ctl.nodes([node]),
                     {'op': 'delete', 'resource': old.name})
        return old
    reconfigure.adjust_clients(ctl, new, found, skip=chosen)
    LOG.info('%(res)s: tiebreaker %(how)s',
             {'res': new.name, 'how': f'on {chosen}' if node
              else 'removed'})
    return new


def remove_orphans(ctl: core.Core, orphans: dict[str, str]
                   ) -> dict[str, str]:
    """Take down tiebreakers whose volume is gone; what happened.

    Under the volume's lock, taken without waiting ('busy'), and only
    while a fresh lookup finds the volume on no replica (a create of
    the same name may have ended since the stats).
    """
    outcomes = {}
    for name, node in sorted(orphans.items()):
        lock = ctl.resource_lock(name)
        if not lock.acquire(blocking=False):
            outcomes[name] = 'busy'
            continue
        try:
            found = ctl.find(name)
            if set(found.states) - {node} or found.unreachable:
                outcomes[name] = 'kept: the volume is not gone'
                continue
            try:
                # no pool: a .res and its DRBD resource, never an LV
                ctl.call(ctl.node(node),
                         {'op': 'delete', 'resource': name})
            except tp.NodeError as exc:
                outcomes[name] = f'left on {node}: {exc.message}'
                continue
        finally:
            lock.release()
        outcomes[name] = f'removed from {node}'
        LOG.info('Removed the tiebreaker of %(res)s from %(node)s: the '
                 'volume was deleted while the node was down',
                 {'res': name, 'node': node})
    return outcomes


def orphaned(inventories: dict[str, inv.NodeInventory]
             ) -> dict[str, str]:
    """Resource -> node: a tiebreaker no other node holds the volume of."""
    found = {}
    for node, report in inventories.items():
        for name, res in report.resources.items():
            definition = (res or {}).get('definition') or {}
            mine = next((h for h in definition.get('hosts') or ()
                         if h.get('name') == node), None)
            if not mine or mine.get('diskful') or not mine.get('tiebreaker'):
                continue
            if any(name in other.resources or name in other.volumes
                   for other_name, other in inventories.items()
                   if other_name != node):
                continue
            found[name] = node
    return found
