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
"""Waiting for the replicas of a resource to reach a DRBD state.

The checks take a resource's spec, a node and that node's DRBD state (the
agent's ``status``) and return True (holds), False (not yet) or None (can
no longer hold): :func:`wait_replicas` polls every replica until one
holds everywhere.
"""

from __future__ import annotations

import time
from typing import Callable

from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.node import drbdstatus

#: replication states of a peer device that is resynchronising
_RESYNC = ('SyncSource', 'SyncTarget', 'PausedSyncS', 'PausedSyncT',
           'StartingSyncS', 'StartingSyncT', 'WFBitMapS', 'WFBitMapT',
           'WFSyncUUID')
#: replication states of a peer taking a sync from the holder
_SYNCING = ('SyncSource', 'PausedSyncS', 'WFBitMapS', 'StartingSyncS')


def wait_replicas(ctl: core.Core, spec: model.ResourceSpec,
                  nodes: list[model.Node],
                  check: Callable[[model.ResourceSpec, str,
                                   dict | None], bool | None],
                  what: str) -> None:
    """Poll every replica until ``check`` holds on all of them.

    ``check`` returns True (holds), False (not yet) or None (can no
    longer hold: fail now).
    """
    deadline = time.monotonic() + ctl.config.connect_timeout
    while True:
        results = ctl.each_or_raise(
            'status', nodes, {'op': 'status', 'resource': spec.name})
        states = {name: reply.get('state')
                  for name, reply in results.items()}
        verdicts = {name: check(spec, name, state)
                    for name, state in states.items()}
        if all(verdicts.values()):
            return
        broken = [name for name, v in verdicts.items() if v is None]
        if broken or time.monotonic() > deadline:
            brief = '; '.join(f'{name}: {_brief(states[name])}'
                              for name in sorted(states))
            why = ('went wrong on ' + ', '.join(sorted(broken))
                   if broken else
                   f'not reached within '
                   f'{ctl.config.connect_timeout:.0f}s')
            raise errors.ClusterError(
                f'replicas of {spec.name} not {what}: {why}; DRBD '
                f'state: {brief}')
        time.sleep(ctl.poll_interval)


def wait_connected(ctl: core.Core, spec: model.ResourceSpec,
                   node: model.Node) -> dict:
    """Poll ``node`` until its peers are connected; its DRBD state."""
    deadline = time.monotonic() + ctl.config.connect_timeout
    while True:
        state = ctl.each_or_raise(
            f'waiting for the replicas of {spec.name} to connect',
            [node], {'op': 'status', 'resource': spec.name}
        )[node.name].get('state')
        status = drbdstatus.of(state)
        if status is not None and status.peers and status.peers_connected:
            return state
        if time.monotonic() > deadline:
            raise errors.ClusterError(
                f'replicas of {spec.name} did not connect within '
                f'{ctl.config.connect_timeout:.0f}s; DRBD state on '
                f'{node.name}: {_brief(state)}')
        time.sleep(ctl.poll_interval)


def peer_devices(spec: model.ResourceSpec, node: str, state: dict | None
                 ) -> dict[str, drbdstatus.PeerState] | None:
    """Volume 0 towards every other replica of ``node``, if connected.

    None while a replica peer has no connection in ``state`` or it is not
    Connected.
    """
    status = drbdstatus.of(state)
    found = {}
    for host in spec.diskful_hosts:
        if host.name == node:
            continue
        peer = status.peer(host.name) if status is not None else None
        if peer is None or not peer.connected:
            return None
        found[host.name] = peer
    return found


def ready_to_skip_sync(spec: model.ResourceSpec, node: str,
                       state: dict | None) -> bool | None:
    """Connected to every replica, all Established and Inconsistent."""
    if inv.disk_states(state).get('local') != 'Inconsistent':
        # anything else on a just-created disk: not ours to skip
        return False if inv.disk_states(state).get('local') in (
            None, 'Attaching', 'Negotiating', 'DUnknown') else None
    peers = peer_devices(spec, node, state)
    if peers is None:
        return False
    # a replication state not reported is taken as Established
    return all(peer.replication in (None, 'Established')
               and peer.disk == 'Inconsistent'
               for peer in peers.values())


def in_sync(spec: model.ResourceSpec, node: str,
            state: dict | None) -> bool | None:
    """UpToDate here and towards every replica, no resync, none to do."""
    peers = peer_devices(spec, node, state)
    if any(peer.replication in _RESYNC for peer in (peers or {}).values()):
        return None
    if inv.disk_states(state).get('local') != 'UpToDate' or peers is None:
        return False
    return all(peer.disk == drbdstatus.UP_TO_DATE and not peer.out_of_sync
               for peer in peers.values())


def sync_started(spec: model.ResourceSpec, node: str,
                 state: dict | None) -> bool:
    """The holder UpToDate, every peer synced or taking the sync."""
    peers = peer_devices(spec, node, state)
    return (inv.disk_states(state).get('local') == 'UpToDate'
            and peers is not None
            and all(peer.replication in _SYNCING
                    or peer.disk == drbdstatus.UP_TO_DATE
                    for peer in peers.values()))


def _brief(state: dict | None) -> str:
    """One line of DRBD state for error messages."""
    status = drbdstatus.of(state)
    if status is None:
        return 'not running'
    conns = ', '.join(f'{peer.name}={peer.connection}'
                      for peer in status.peers)
    disks = ', '.join(f'{k}={v}' for k, v in inv.disk_states(state).items())
    return f'connections [{conns}] disks [{disks}]'
