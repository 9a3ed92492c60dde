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
from typing import Iterable, Mapping, Sequence

from blackstor_cinder.cluster import allocation
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model

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
