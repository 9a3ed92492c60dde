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
"""Attach and detach: a volume's clients.

A host without a replica becomes a diskless client (a new host in the
.res of every replica, then the host's own agent brings the device up);
a host that holds a replica (hyperconverged) keeps it. The detach takes
the client out again; removing it from the replicas' .res is the fence of
a host that no longer answers. Both keep ``allow-two-primaries`` on
exactly while two hosts may be Primary (a live migration).
"""

from __future__ import annotations

import logging
from typing import Any

from blackstor_cinder.cluster import allocation
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import reconfigure
from blackstor_cinder.cluster import tiebreaker
from blackstor_cinder.cluster import transport as tp

LOG = logging.getLogger(__name__)


def attach(ctl: core.Core, volume: str, host: str,
           address: str | None = None) -> str:
    """Make the volume usable on ``host``; its device path there.

    A host without a replica becomes a diskless client. A host that
    holds a replica (hyperconverged) keeps it: it only gets the
    current .res and its agent waits until the device is usable
    there. Either way the path comes from the host's agent.

    The host is checked first (reachable, running blackstor-node), so
    an unknown host changes nothing on the storage nodes. When the
    host makes a second possible primary (live migration), every node
    gets ``allow-two-primaries`` first (see :func:`reconfigure.two_primaries`).
    When a replica refuses the new .res or the host's attach fails,
    the replicas get their old .res back (no phantom client); one that
    cannot is left to the repair of divergent .res (stats).
    """
    client = ctl.node(host, address)
    try:
        report = ctl.call(client, {'op': 'inventory'})
        # a snapshot suspends the client too (see create_snapshot)
        ctl.kernel_versions[host] = report.get('drbd_kernel_version')
    except tp.NodeError as exc:
        raise errors.NodeOperationFailed(
            f'attach of {volume}: host {host} cannot be used',
            {host: exc}) from exc
    with ctl.resource_lock(volume):
        found = ctl.require(volume)
        old = found.spec
        _require_free_on(host, report, old)
        hosts = tuple(tiebreaker.as_client(h) if h.name == host else h
                      for h in old.hosts)
        if old.host(host) is None:
            node_id = allocation.next_node_id(h.node_id
                                              for h in old.hosts)
            hosts += (model.ResourceHost(
                name=host, node_id=node_id,
                address=client.replication_address, diskful=False),)
            _check_peer_slots(volume, host, hosts, old.max_peers)
        spec = reconfigure.with_clients(
            old, hosts, reconfigure.two_primaries(found, hosts,
                                                  attaching=host))
        changed = spec != old
        if changed:
            try:
                reconfigure.adjust_storage(ctl, spec, found)
            except errors.ClusterError:
                # the replicas that took the new .res give it back:
                # no phantom client, no allow-two-primaries left on
                reconfigure.adjust_storage(ctl, old, found, quiet=True)
                raise
            reconfigure.adjust_clients(ctl, spec, found, skip=host)
        elif spec.host(host).diskful:
            # The connector there takes the .res only when it is the
            # one the replica already has: make sure it is.
            ctl.each_or_raise('adjust', [client],
                              ctl.res_request('adjust', spec))
        try:
            reply = ctl.call(client, ctl.res_request(
                'attach', spec, timeout=ctl.config.attach_timeout),
                timeout=ctl.config.attach_timeout + 30)
        except tp.NodeError as exc:
            if changed:
                reconfigure.adjust_storage(ctl, old, found, quiet=True)
                reconfigure.adjust_clients(ctl, old, found, skip=host)
            raise errors.NodeOperationFailed(
                f'attach of {volume} on {host}', {host: exc}) from exc
    LOG.info('Attached %(res)s on %(host)s%(how)s',
             {'res': volume, 'host': host,
              'how': ' (local replica)' if spec.host(host).diskful
              else ''})
    return reply['device_path']


def detach(ctl: core.Core, volume: str, host: str | None = None,
           force: bool = False) -> None:
    """Remove one client (or every client when host is None).

    A host that holds a replica is never taken down: a detach there
    only drops ``allow-two-primaries`` when it is no longer needed.

    The client's own agent takes its DRBD device down first. A host
    that cannot be reached (dead hypervisor: Nova's evacuate and local
    delete never force) does not stop the detach: removing the client
    from every replica's .res is the fence (the replicas drop its
    connection and refuse it from then on), and ``allow-two-primaries``
    goes off as in any detach; its agent call is reported in the log.
    A host that answers and refuses (device in use) fails the detach
    unless ``force``.
    """
    with ctl.resource_lock(volume):
        found = ctl.find(volume)
        spec = found.spec
        if spec is None:
            if found.unreachable:
                raise errors.NodeOperationFailed(
                    'detach of ' + volume, found.unreachable)
            return
        targets = [h for h in spec.client_hosts
                   if host is None or h.name == host]
        # the tiebreaker attached on its own node stays up, as such
        kept = tiebreaker.kept_on_detach(ctl.config, spec, targets)
        targets = [h for h in targets if h.name not in kept]
        gone = {h.name for h in targets}
        if targets:
            _, failures = ctl.each(
                ctl.nodes(targets),
                {'op': 'detach', 'resource': volume, 'force': force})
            for node_name, exc in list(failures.items()):
                if isinstance(exc, tp.NodeUnreachable):
                    LOG.warning('Detach of %(res)s: host %(node)s is '
                                'unreachable; removing its client from '
                                'the replicas fences it off: %(err)s',
                                {'res': volume, 'node': node_name,
                                 'err': exc})
                    del failures[node_name]
                elif force or exc.code == 'not-found':
                    LOG.warning('Detach of %(res)s on %(node)s failed, '
                                'removing the client anyway: %(err)s',
                                {'res': volume, 'node': node_name,
                                 'err': exc})
                    del failures[node_name]
            if failures:
                raise errors.NodeOperationFailed('detach', failures)
        leaving = gone | kept | ({host} if host is not None else set())
        hosts = tuple(tiebreaker.restored(h) if h.name in kept else h
                      for h in spec.hosts if h.name not in gone)
        new = reconfigure.with_clients(
            spec, hosts, reconfigure.two_primaries(found, hosts,
                                                   leaving=leaving))
        if new == spec:
            return
        reconfigure.adjust_storage(ctl, new, found)
        reconfigure.forget_peers(ctl, new, [h.node_id for h in targets],
                                 skip=found.unreachable)
        reconfigure.adjust_clients(ctl, new, found)
    LOG.info('Detached %(res)s from %(hosts)s',
             {'res': volume, 'hosts': ', '.join(sorted(leaving))})


def _require_free_on(host: str, report: dict[str, Any],
                     spec: model.ResourceSpec) -> None:
    """Refuse an attach whose minor or port ``host`` uses elsewhere.

    Another resource there (of another backend sharing the host) holds
    them; checked before anything changes.
    """
    taken = inv.NodeInventory.from_reply(host, report).taken_by_others(
        spec.name, spec.minor, spec.port)
    if not taken:
        return
    raise errors.AllocationError(
        f'attach of {spec.name} on {host} refused, nothing was changed: '
        + ' and '.join(f'DRBD {kind} {value}' for kind, value in taken)
        + f' of {spec.name} is already used on {host} by another DRBD '
          f'resource (another backend sharing this host?). Backends that '
          f'share hosts need disjoint '
        + ' and '.join(allocation.RANGE_OPTIONS[kind] for kind, _ in taken)
        + f'; {spec.name} can attach on {host} once the other resource '
          f'is gone there')


def _check_peer_slots(volume: str, host: str,
                      hosts: tuple[model.ResourceHost, ...],
                      max_peers: int) -> None:
    """Refuse a new client the DRBD metadata has no bitmap slot for.

    Every replica keeps one bitmap slot per peer (``create-md
    --max-peers``): a resource has at most ``max_peers + 1`` hosts.
    Checked before any node is changed.
    """
    if len(hosts) <= max_peers + 1:
        return
    replicas = sum(1 for h in hosts if h.diskful)
    ties = sum(1 for h in hosts if h.tiebreaker)
    raise errors.InvalidRequest(
        f'attach of {volume} on {host} refused: the volume has {replicas} '
        f'replicas{", a tiebreaker" if ties else ""} and '
        f'{len(hosts) - replicas - ties - 1} clients already, and '
        f'blackstor_max_peers = {max_peers} gives a volume at most '
        f'{max_peers + 1} hosts (replicas, tiebreaker and clients '
        f'together). Detach '
        f'it from another host first; a larger blackstor_max_peers '
        f'applies to volumes created afterwards')
