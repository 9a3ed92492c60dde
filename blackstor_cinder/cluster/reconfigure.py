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
"""Giving a resource's nodes a changed .res: replicas, then clients.

The flows that change a resource's hosts (attach, detach, the tiebreaker's
placement) push the new .res to every reachable replica first, then to the
clients already attached, best effort; a replica or client missed gets it
from the periodic repair of divergent .res (``reconcile``).
"""

from __future__ import annotations

import logging
from typing import Iterable

from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model

LOG = logging.getLogger(__name__)


def forget_peers(ctl: core.Core, spec: model.ResourceSpec,
                 node_ids: Iterable[int],
                 skip: Iterable[str] = ()) -> None:
    """``forget-peer`` departed peers on the replicas; logged.

    A replica keeps a metadata slot for every peer it once connected
    (MDF_NODE_EXISTS) after the peer leaves its .res, and counts a
    diskless one as a missing diskless peer in its quorum: with one
    such slot a tiebreaker alone no longer wins a tie (drbd_state.c,
    __calc_quorum_with_disk and calc_quorum). Best effort: a replica
    that misses it keeps the slot until a host takes that node-id.
    Also a heal's, for the lost replica (see heal). ``skip``: nodes
    known to be unreachable.
    """
    skip = set(skip)
    nodes = [n for n in ctl.nodes(spec.diskful_hosts)
             if n.name not in skip]
    for node_id in node_ids:
        _, failures = ctl.each(nodes, {
            'op': 'forget-peer', 'resource': spec.name,
            'node_id': node_id})
        for node_name, exc in failures.items():
            LOG.warning('forget-peer %(id)s of %(res)s on %(node)s '
                        'failed; a later quorum tie may be lost there: '
                        '%(err)s', {'id': node_id, 'res': spec.name,
                                    'node': node_name, 'err': exc})


def two_primaries(found: core.Found,
                  hosts: Iterable[model.ResourceHost],
                  attaching: str | None = None,
                  leaving: Iterable[str] = ()) -> bool:
    """Whether two of ``hosts`` may be Primary at once.

    Counted: every diskless client (its guest may open the device at
    any time), every replica (or tiebreaker) that is Primary now
    (auto-promote: a guest has the device open there) and the host
    being attached; not the hosts in ``leaving``, nor a tiebreaker
    that is not Primary (it is no user). DRBD refuses to promote a node
    while a peer it is connected to is Primary unless the promoted
    node's net options for that connection allow two primaries
    (drbd_state.c, __is_valid_soft_transition: SS_TWO_PRIMARIES).
    """
    leaving = set(leaving)
    users = {h.name for h in hosts if not h.diskful and not h.tiebreaker}
    users |= {h.name for h in hosts if (h.diskful or h.tiebreaker)
              and inv.is_primary(found.states.get(h.name))}
    if attaching is not None:
        users.add(attaching)
    return len(users - leaving) >= 2


def with_clients(spec: model.ResourceSpec,
                 hosts: tuple[model.ResourceHost, ...],
                 two_primaries: bool) -> model.ResourceSpec:
    return spec.with_hosts(
        tuple(sorted(hosts, key=lambda h: h.node_id)),
        allow_two_primaries=two_primaries)


def adjust_clients(ctl: core.Core, spec: model.ResourceSpec, found: core.Found,
                   skip: str | None = None) -> None:
    """Push a changed .res to the clients already attached; best effort.

    DRBD takes a peer's changed ``allow-two-primaries`` over a live
    connection (receive_protocol on P_PROTOCOL_UPDATE), but a
    connection being established is refused when both ends disagree
    ("incompatible allow-two-primaries settings"): each client's own
    .res must say the same for a reconnect to work. A client missed
    here gets it from the periodic repair (stats find it divergent,
    see ``reconcile``) or on its next attach.
    """
    clients = [n for n in ctl.nodes(
        h for h in spec.diskless_hosts if h.name != skip)]
    if not clients:
        return
    _, failures = ctl.each(clients, ctl.res_request('adjust', spec))
    for node_name, exc in failures.items():
        LOG.warning('Adjust of %(res)s on client %(node)s failed; the '
                    'periodic repair or its next attach gives it the '
                    'new configuration: %(err)s',
                    {'res': spec.name, 'node': node_name, 'err': exc})


def adjust_storage(ctl: core.Core, spec: model.ResourceSpec, found: core.Found,
                   quiet: bool = False) -> None:
    """Push a changed .res to every reachable replica.

    A replica lost since the lookup (its request never reached it) is
    treated as one found unreachable there, as long as another replica
    took the .res: it gets it from the periodic repair. A refusal or a
    timeout (the adjust may have run) fails as before.
    """
    nodes = [n for n in ctl.nodes(spec.diskful_hosts)
             if n.name not in found.unreachable]
    for missing in set(h.name for h in spec.diskful_hosts) - {
            n.name for n in nodes}:
        LOG.warning('Replica %(node)s of %(res)s is unreachable; it '
                    'gets the new configuration on its next adjust',
                    {'node': missing, 'res': spec.name})
    done, failures = ctl.each(nodes, ctl.res_request('adjust', spec))
    if done and failures and all(core.never_reached(exc)
                                 for exc in failures.values()):
        for node_name, exc in failures.items():
            LOG.warning('Replica %(node)s of %(res)s became unreachable '
                        'during the flow; it gets the new configuration '
                        'from the periodic repair: %(err)s',
                        {'node': node_name, 'res': spec.name,
                         'err': exc})
        failures = {}
    if failures and not quiet:
        raise errors.NodeOperationFailed('adjust', failures)
    for node_name, exc in failures.items():
        LOG.error('Adjust of %(res)s on %(node)s failed: %(err)s',
                  {'res': spec.name, 'node': node_name, 'err': exc})
