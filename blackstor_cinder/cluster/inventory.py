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
"""What the nodes report: the agent's inventory and resource definitions."""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

from blackstor_cinder.cluster import model
from blackstor_cinder.node import drbd
from blackstor_cinder.node import drbdstatus
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

# drbdsetup's numbers (drbd-utils' new_strtoll): digits and an optional
# unit; the ``size`` option's default unit is the 512-byte sector.
_VERSION_RE = re.compile(r'^(\d+)\.(\d+)\.(\d+)')

#: The oldest DRBD kernel module a storage node may run: from 9.2.14 on
#: ``suspend-io`` lets the writes in flight drain before it returns (DRBD
#: commit e9d4b48d1); before, a snapshot taken while I/O is "suspended"
#: can miss a write one replica has and another has not.
MIN_DRBD_KERNEL = (9, 2, 14)


@dataclasses.dataclass(frozen=True)
class PoolInfo:
    name: str
    total_bytes: int
    free_bytes: int
    provisioned_bytes: int
    # LVM zeroes a thin block on first use (lvs -o zero); None: not told
    zero_new_blocks: bool | None = None


@dataclasses.dataclass(frozen=True)
class NodeInventory:
    """One node's ``inventory`` reply, typed."""

    node: str
    hostname: str
    drbd_utils_version: str | None
    drbd_kernel_version: str | None
    pools: dict[str, PoolInfo]
    resources: dict[str, dict]
    volumes: dict[str, int]          # volume LV name -> bytes
    snapshots: dict[str, int]        # snapshot LV name -> bytes
    used_minors: frozenset[int]
    used_ports: frozenset[int]
    protocol_version: int | None = None  # None: an agent before 2
    # thin LVs of the pools that are not ours, by name (manage)
    bare_lvs: dict[str, dict] = dataclasses.field(default_factory=dict)
    # volume LV name -> the create_ids its create requests tagged it with
    volume_create_ids: dict[str, tuple[str, ...]] = dataclasses.field(
        default_factory=dict)
    # snapshot LV name -> the volume it is a snapshot of (when known)
    snapshot_origins: dict[str, str] = dataclasses.field(
        default_factory=dict)

    @classmethod
    def from_reply(cls, node: str, reply: dict[str, Any]) -> NodeInventory:
        pools = {}
        for pool in reply.get('pools') or []:
            pools[pool['name']] = PoolInfo(
                pool['name'], int(pool.get('total_bytes') or 0),
                int(pool.get('free_bytes') or 0),
                int(pool.get('provisioned_bytes') or 0),
                _flag(pool.get('zero_new_blocks')))
        return cls(
            node=node,
            hostname=reply.get('hostname') or node,
            drbd_utils_version=reply.get('drbd_utils_version'),
            drbd_kernel_version=reply.get('drbd_kernel_version'),
            pools=pools,
            resources=dict(reply.get('resources') or {}),
            volumes=_sizes(reply.get('volumes')),
            snapshots=_sizes(reply.get('snapshots')),
            used_minors=frozenset(reply.get('used_minors') or ()),
            used_ports=frozenset(reply.get('used_ports') or ()),
            protocol_version=reply.get('protocol_version'),
            bare_lvs={e['name']: e for e in reply.get('bare_lvs') or ()
                      if isinstance(e, dict) and 'name' in e},
            volume_create_ids={
                v['name']: tuple(v.get('create_ids') or ())
                for v in reply.get('volumes') or ()
                if isinstance(v, dict) and v.get('name')},
            snapshot_origins={
                s['name']: s['origin'] for s in reply.get('snapshots') or ()
                if isinstance(s, dict) and s.get('name')
                and s.get('origin')})

    def problem(self, pool: str) -> str | None:
        """Why this node cannot hold replicas of ``pool``, or None."""
        if self.hostname != self.node:
            return (f'the agent says its DRBD host name is {self.hostname}, '
                    f'not {self.node}')
        if self.protocol_version != protocol.PROTOCOL_VERSION:
            # An older agent would refuse every resource request.
            return (f'the agent speaks protocol version '
                    f'{self.protocol_version or 1}, this driver '
                    f'{protocol.PROTOCOL_VERSION}: install the same '
                    'blackstor-cinder version on the node')
        old = kernel_too_old(self.drbd_kernel_version)
        if old:
            return old
        info = self.pools.get(pool)
        if info is None:
            return (f'thin pool {pool} not configured or not found on the '
                    f'node')
        if info.zero_new_blocks is False:
            return (f'thin pool {pool} does not zero new blocks (lvs -o '
                    f'zero); volumes skip their initial sync on the '
                    f'promise that unwritten blocks read as zeros on every '
                    f'replica: run lvchange --zero y {pool}')
        return None

    def taken_by_others(self, resource: str, minor: int, port: int
                        ) -> list[tuple[str, int]]:
        """The values of ``resource`` another resource uses here.

        [('minor', n), ('port', p)] or fewer: what the node reports used
        (another backend's resource, say). Nothing when the node already
        has ``resource``: its values are then that resource's own.
        """
        if resource in self.resources:
            return []
        return [(kind, value) for kind, value, used in (
            ('minor', minor, self.used_minors),
            ('port', port, self.used_ports)) if value in used]

    def device_sizes(self) -> dict[str, int]:
        """Resource name -> the device size its .res sets, in bytes.

        Resources whose .res sets no size (written before sizes were
        rendered) or could not be read are left out.
        """
        sizes = {}
        for name, entry in self.resources.items():
            size = definition_size((entry or {}).get('definition'))
            if size is not None:
                sizes[name] = size
        return sizes


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """(9, 2, 18) of '9.2.18' (or '9.2.18-rc.1'); None if not a version."""
    match = _VERSION_RE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def kernel_too_old(version: str | None) -> str | None:
    """Why a node's DRBD kernel version cannot serve, or None."""
    parsed = parse_version(version)
    if parsed is None:
        return ('the DRBD kernel module version is unknown '
                f'({version!r}); BlackStor needs DRBD '
                f'{_dotted(MIN_DRBD_KERNEL)} or later')
    if parsed < MIN_DRBD_KERNEL:
        return (f'DRBD kernel module {version} is older than '
                f'{_dotted(MIN_DRBD_KERNEL)}: its suspend-io does not let '
                f'writes in flight drain, so snapshots could differ between '
                f'replicas; upgrade the module')
    return None


def _dotted(version: tuple[int, ...]) -> str:
    return '.'.join(str(part) for part in version)


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _sizes(items: Any) -> dict[str, int]:
    """[{name, size_bytes}] (or {name: {size_bytes}}) -> {name: bytes}."""
    if isinstance(items, dict):
        items = [dict(v, name=k) for k, v in items.items()]
    return {i['name']: int(i.get('size_bytes') or i.get('size') or 0)
            for i in items or ()}


def definition_size(definition: dict[str, Any] | None) -> int | None:
    """The device size a parsed .res sets (``disk { size }``), or None."""
    value = ((definition or {}).get('disk') or {}).get('size')
    if value is None:
        return None
    try:
        size = drbd.size_bytes(value)
    except ValueError:
        LOG.warning('Resource %(res)s: size %(value)r in its .res is not '
                    'understood; taken as not set',
                    {'res': (definition or {}).get('name'), 'value': value})
        return None
    if size == 0:
        return None                 # DRBD's default: no size set
    return size


def spec_from_definition(definition: dict[str, Any],
                         config: model.ClusterConfig,
                         secret: str | None = None) -> model.ResourceSpec:
    """Rebuild a ResourceSpec from a node's parsed .res.

    Identities (minor, port, node-ids, addresses, secret), the device
    size and the volume's zone policy (``zones``, its type's) come from
    the node; policies (quorum, options) from the current configuration,
    so a configuration change reaches a resource at its next adjust.
    """
    hosts = []
    port = None
    for host in definition['hosts']:
        hosts.append(model.ResourceHost(
            name=host['name'], node_id=int(host['node_id']),
            address=host['address'], diskful=bool(host['diskful']),
            disk=host.get('disk') if host['diskful'] else None,
            tiebreaker=bool(host.get('tiebreaker')) and not host['diskful']))
        port = port or int(host['port'])
    net = definition.get('net') or {}
    return model.ResourceSpec(
        name=definition['name'], minor=int(definition['minor']),
        port=port, hosts=tuple(sorted(hosts, key=lambda h: h.node_id)),
        secret=secret or definition.get('secret') or '',
        quorum=config.quorum, on_no_quorum=config.on_no_quorum,
        allow_two_primaries=net.get('allow-two-primaries') == 'yes',
        net_options=dict(config.net_options),
        disk_options=dict(config.disk_options),
        max_peers=config.max_peers, size=definition_size(definition),
        zone_policy=zone_policy(definition))


def zone_policy(definition: dict[str, Any] | None) -> str | None:
    """The zone policy a parsed .res records, or None (none recorded)."""
    value = (definition or {}).get('zones')
    return value if value in protocol.ZONE_POLICIES else None


def peers_connected(state: dict[str, Any] | None) -> bool:
    """All configured peers of a ``drbdsetup status --json`` entry are up."""
    model = drbdstatus.of(state)
    return model is not None and model.peers_connected


def is_primary(state: dict[str, Any] | None) -> bool:
    """The node of a ``drbdsetup status --json`` entry is Primary."""
    model = drbdstatus.of(state)
    return model is not None and model.primary


def connected_peers(state: dict[str, Any] | None) -> tuple[str, ...]:
    """The peers a ``drbdsetup status --json`` entry is connected to."""
    model = drbdstatus.of(state)
    return model.connected_peers if model is not None else ()


def disk_states(state: dict[str, Any] | None) -> dict[str, str]:
    """{'local': ..., '<peer>': ...} disk states of volume 0."""
    model = drbdstatus.of(state)
    return model.disk_states() if model is not None else {}


def by_name(items: Any) -> dict[str, dict]:
    """An inventory's ``volumes`` / ``snapshots`` entries by name."""
    if isinstance(items, dict):
        return {k: dict(v or {}, name=k) for k, v in items.items()}
    return {i['name']: i for i in items or ()
            if isinstance(i, dict) and i.get('name')}


def lv_families(volumes: dict[str, dict], snapshots: dict[str, dict]
                ) -> dict[str, set[str]] | None:
    """LV name -> the LVs linked to it by origin (None: origins unknown).

    ``volumes`` / ``snapshots``: an inventory's entries by name. A revert
    makes the volume a snapshot of the snapshot, a clone a snapshot of a
    temporary snapshot: a family is what is linked either way.
    """
    lvs = {**volumes, **snapshots}
    if any('origin' not in lv for lv in lvs.values()):
        return None
    parent = {name: name for name in lvs}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for name, lv in lvs.items():
        origin = lv.get('origin')
        if origin in parent:
            parent[root(name)] = root(origin)
    groups: dict[str, set[str]] = {}
    for name in lvs:
        groups.setdefault(root(name), set()).add(name)
    return {name: groups[root(name)] for name in lvs}
