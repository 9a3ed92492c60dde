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
"""Delete: every replica, client and tiebreaker of a volume.

Gone is success. A storage node that does not answer fails the delete
(the volume may live only there: Cinder retries), except the node of the
tiebreaker, which holds no data: its .res goes once it answers again (the
stats list it, ``tiebreaker.remove_orphans`` removes it).

One round trip per node: the delete goes to every storage node at once
(where the volume is not, it changes nothing), each reporting what its
.res said (``report``); the clients those name get theirs next. An agent
that does not know ``report`` (refused by name, nothing changed there)
gets the delete the way it did before: after a ``status`` of the volume
on every storage node.
"""

from __future__ import annotations

import logging

from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)


def delete_volume(ctl: core.Core, name: str) -> None:
    """Remove every replica and client of a volume; gone is success.

    Under the volume's resource lock (the facade's ``core.one_resource``
    takes it): a create of the same name still running (its replicas not
    all written yet) ends first.
    """
    pool = ctl.config.pool
    results, failures = ctl.each(
        ctl.config.storage_nodes,
        {'op': 'delete', 'resource': name, 'pool': pool, 'report': True})
    older = {node for node, exc in failures.items()
             if exc.code == protocol.E_INVALID and exc.field == 'report'}
    hosts = _hosts(results)
    if older:
        _delete_found(ctl, name, {h.name: h for h in hosts.values()
                                  if h.name not in results})
        return
    if not hosts:
        if failures:
            # It may live only on the nodes we cannot reach: retry.
            raise errors.NodeOperationFailed('delete of ' + name, failures)
        return
    for node, exc in list(failures.items()):
        host = hosts.get(node)
        if not isinstance(exc, tp.NodeUnreachable):
            continue
        if host is None:
            # as before: an unreachable node the volume has no host on
            del failures[node]
        elif host.tiebreaker:
            _tiebreaker_unreachable(name, node)
            del failures[node]
    if failures:
        raise errors.NodeOperationFailed('delete', failures)
    storage = {n.name for n in ctl.config.storage_nodes}
    clients = [h for h in hosts.values() if h.name not in storage]
    if clients:
        ctl.each_or_raise('delete', ctl.nodes(clients),
                          {'op': 'delete', 'resource': name})
    LOG.info('Deleted %s', name)


def _hosts(results: dict[str, dict]) -> dict[str, model.ResourceHost]:
    """Every host the storage nodes' .res named, by name.

    A replica's .res first: a diskless storage node (the tiebreaker)
    may hold a copy a flow failed to update.
    """
    hosts: dict[str, model.ResourceHost] = {}
    for node, reply in sorted(results.items(), key=lambda item: (
            not core.holds_replica(item[0], item[1]), item[0])):
        for host in (reply.get('definition') or {}).get('hosts') or ():
            if host.get('name') in hosts:
                continue
            hosts[host['name']] = model.ResourceHost(
                name=host['name'], node_id=int(host['node_id']),
                address=host['address'], diskful=bool(host['diskful']),
                disk=host.get('disk') if host['diskful'] else None,
                tiebreaker=bool(host.get('tiebreaker'))
                and not host['diskful'])
    return hosts


def _tiebreaker_unreachable(name: str, node: str) -> None:
    # no data there: its .res goes once the node answers again
    # (stats: orphan_tiebreakers, remove_orphan_tiebreakers)
    LOG.warning('Deleting %(res)s while its tiebreaker node %(node)s '
                'is unreachable; the periodic repair removes the '
                'tiebreaker there when it answers',
                {'res': name, 'node': node})


def _delete_found(ctl: core.Core, name: str,
                  known: dict[str, model.ResourceHost]) -> None:
    """The delete of agents before ``report``: ``status`` first.

    ``known``: hosts the agents that did report named and had not
    deleted yet (their clients).
    """
    found = ctl.find(name)
    spec = found.spec
    hosts = dict(known)
    if spec is not None:
        hosts.update((h.name, h) for h in spec.hosts)
    if not hosts:
        if found.unreachable:
            # It may live only on the nodes we cannot reach: retry.
            raise errors.NodeOperationFailed('delete of ' + name,
                                             found.unreachable)
        return
    targets = {n.name: n for n in ctl.nodes(hosts.values())}
    held = spec.tiebreaker_host if spec is not None else None
    if held is not None and held.name in found.unreachable:
        _tiebreaker_unreachable(name, held.name)
        del targets[held.name]
    for node in ctl.config.storage_nodes:
        if node.name not in found.unreachable:
            targets.setdefault(node.name, node)
    ctl.each_or_raise('delete', targets.values(),
                      lambda n: {'op': 'delete', 'resource': name,
                                 'pool': ctl.config.pool}
                      if n.storage else
                      {'op': 'delete', 'resource': name})
    LOG.info('Deleted %s', name)
