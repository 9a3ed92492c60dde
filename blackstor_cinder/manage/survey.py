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
"""What the nodes say: one inventory per node, and a resource's health."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from oslo_utils import strutils

from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import divergence
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder.manage import config
from blackstor_cinder.node import drbdstatus

GiB = 1 << 30


@dataclasses.dataclass
class Survey:
    """One ``inventory`` per node, in a single parallel round."""

    nodes: tuple[model.Node, ...]
    replies: dict[str, dict]
    failures: dict[str, tp.NodeError]

    @classmethod
    def take(cls, controller: ctl.Controller,
             nodes: Iterable[model.Node]) -> Survey:
        nodes = tuple(nodes)
        replies, failures = controller.each(nodes, {'op': 'inventory'})
        return cls(nodes, replies, failures)

    def require_some(self) -> None:
        for name, exc in sorted(self.failures.items()):
            config.warn(f'node {name} {state_of(exc)}: {clean(exc.message)}')
        if self.nodes and not self.replies:
            raise config.CommandError('no node answered')


def state_of(exc: tp.NodeError) -> str:
    return 'unreachable' if isinstance(exc, tp.NodeUnreachable) else 'error'


def clean(text: Any) -> str:
    return strutils.mask_password(str(text))


def public(value: Any) -> Any:
    """A copy of agent data without anything secret in it."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items()
                if 'secret' not in str(k).lower()}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value


def gib(value: int | None) -> float | None:
    return None if value is None else round(value / GiB, 2)


def hosts(definition: dict | None, diskful: bool) -> list[str]:
    ordered = sorted((definition or {}).get('hosts') or (),
                     key=lambda h: (h.get('node_id') is None,
                                    h.get('node_id') or 0))
    return [h['name'] for h in ordered if bool(h.get('diskful')) == diskful]


def port(definition: dict | None) -> int | None:
    return next((h.get('port') for h in (definition or {}).get('hosts') or ()
                 if h.get('port') is not None), None)


def differences(mine: dict, majority: dict) -> str:
    said = []
    if mine.get('minor') != majority.get('minor'):
        said.append(f'minor {mine.get("minor")} (majority '
                    f'{majority.get("minor")})')
    if port(mine) != port(majority):
        said.append(f'port {port(mine)} (majority {port(majority)})')
    my_hosts = {h.get('name'): divergence.key({'hosts': [h]})[1]
                for h in mine.get('hosts') or ()}
    their_hosts = {h.get('name'): divergence.key({'hosts': [h]})[1]
                   for h in majority.get('hosts') or ()}
    extra = sorted(set(my_hosts) - set(their_hosts), key=str)
    missing = sorted(set(their_hosts) - set(my_hosts), key=str)
    changed = sorted((n for n in set(my_hosts) & set(their_hosts)
                      if my_hosts[n] != their_hosts[n]), key=str)
    for label, names in (('hosts the majority lacks', extra),
                         ('lacks hosts', missing),
                         ('host entries differ', changed)):
        if names:
            said.append(f'{label}: {", ".join(map(str, names))}')
    if divergence.key(mine)[2] != divergence.key(majority)[2]:
        said.append('allow-two-primaries differs')
    my_size, their_size = (inv.definition_size(mine),
                           inv.definition_size(majority))
    if my_size != their_size:
        said.append(f'size {my_size} (repaired to {their_size})')
    return '; '.join(said) or 'differs'


def local_disk(state: dict | None) -> str | None:
    return inv.disk_states(state).get('local')


def out_of_sync(state: dict | None,
                peers: Iterable[str] | None = None) -> int | None:
    """Most bytes this node's bitmap holds for one peer (None: unknown)."""
    most = None
    status = drbdstatus.of(state)
    for peer in status.peers if status is not None else ():
        if peers is not None and peer.name not in peers:
            continue
        if peer.out_of_sync is not None:    # drbdsetup reports KiB
            most = max(most or 0, peer.out_of_sync * 1024)
    return most


@dataclasses.dataclass(frozen=True)
class Trouble:
    """Why a resource is not healthy; ``drbd`` for DRBD-level causes."""

    text: str
    drbd: bool = True

    def __str__(self) -> str:
        return self.text


def health(res: divergence.Resource, survey: Survey,
           storage: set[str]) -> tuple[dict[str, str], int | None,
                                       list[Trouble]]:
    """(disk state per node, out-of-sync bytes, troubles) of a resource."""
    replicas = hosts(res.definition, True)
    disks: dict[str, str] = {}
    troubles: list[Trouble] = []
    oos = None
    for node in replicas + sorted(set(res.entries) - set(replicas)):
        entry = res.entries.get(node)
        if node in survey.failures:
            disks[node] = state_of(survey.failures[node])
            troubles.append(Trouble(f'{node} {disks[node]}', False))
        elif entry is None:
            disks[node] = 'missing' if node in storage else 'unknown'
            troubles.append(Trouble(
                f'{node}: no .res' if node in storage else
                f'{node} is not a configured storage node', False))
        elif entry.get('state') is None:
            disks[node] = 'down'
            if node in replicas:
                troubles.append(Trouble(f'{node}: not running'))
        else:
            state = entry['state']
            disks[node] = local_disk(state) or 'Unknown'
            if node not in replicas:
                continue
            if disks[node] != 'UpToDate':
                troubles.append(Trouble(f'{node}: disk {disks[node]}'))
            status = drbdstatus.of(state)
            for peer in status.peers if status is not None else ():
                if peer.name in replicas and not peer.connected:
                    troubles.append(Trouble(
                        f'{node}: {peer.connection} to {peer.name}'))
            mine = out_of_sync(state, replicas)
            if mine is not None:
                oos = max(oos or 0, mine)
                if mine:
                    troubles.append(Trouble(
                        f'{node}: {mine} bytes out of sync'))
    return disks, oos, troubles


def node_view(entry: dict | None, failure: tp.NodeError | None) -> Any:
    if failure is not None:
        return f'{state_of(failure)}: {clean(failure.message)}'
    if entry is None:
        return 'no .res'
    state = entry.get('state')
    if entry.get('error'):
        return f'unreadable .res: {clean(entry["error"])}'
    if state is None:
        return {'running': False}
    status = drbdstatus.ResourceState.from_json(state)
    connections = {}
    for peer in status.peers:
        view = {'connection': peer.connection, 'peer_disk': peer.disk}
        if peer.out_of_sync is not None:
            view['out_of_sync_bytes'] = peer.out_of_sync * 1024
        connections[peer.name] = view
    suspended = (status.suspended_user if status.suspended_user is not None
                 else status.suspended)
    return {'running': True, 'role': status.role,
            'disk': local_disk(state), 'suspended': suspended,
            'connections': connections}
