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
"""One resource's state from ``drbdsetup status --json``, read defensively.

The one model of DRBD's status: the agent reads its own resources
through it, the diskless client (and with it the os-brick connector)
its devices, and ``cluster/`` the ``state`` entries of the agents'
replies (:func:`of`). DRBD versions differ in what they report and how
they name it: every field may be missing, and the older text-status
words ("yes"/"no") are accepted where JSON booleans are expected.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from blackstor_cinder import protocol

UP_TO_DATE = 'UpToDate'
PRIMARY = 'Primary'
CONNECTED = 'Connected'
#: Local disk states of a resource that has no local disk (any more).
NO_DISK = (None, 'Diskless', 'Detaching')


def _first(mapping: dict, *keys: str) -> Any:
    """The value of the first of ``keys`` present in ``mapping``."""
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None


def _as_bool(value: Any) -> bool | None:
    """JSON true/false, or the "yes"/"no" words of the text status."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ('yes', 'true'):
            return True
        if word in ('no', 'false'):
            return False
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _pick_volume(items: Any, volume: int) -> dict | None:
    """The entry of ``items`` for ``volume`` (or the only entry)."""
    entries = [item for item in items or () if isinstance(item, dict)]
    for item in entries:
        if _as_int(item.get('volume')) == volume:
            return item
    unnumbered = [item for item in entries if 'volume' not in item]
    return unnumbered[0] if unnumbered else None


@dataclasses.dataclass
class PeerState:
    """One connection of the resource, as the local node sees it."""

    name: str | None
    node_id: int | None
    connection: str | None
    role: str | None
    disk: str | None
    replication: str | None
    #: the connection reports a peer device of the volume
    has_volume: bool = False
    #: what is still to resync with the peer, as drbdsetup reports it
    #: (KiB, with ``--statistics``); None: not reported
    out_of_sync: int | None = None

    @classmethod
    def from_json(cls, conn: dict, volume: int) -> PeerState:
        peer_devices = _first(conn, 'peer_devices', 'peer-devices')
        peer_dev = _pick_volume(
            peer_devices if isinstance(peer_devices, list) else [], volume)
        has_volume = peer_dev is not None
        peer_dev = peer_dev or {}
        return cls(
            name=_as_str(_first(conn, 'name', 'conn-name')),
            node_id=_as_int(_first(conn, 'peer-node-id', 'peer_node_id')),
            connection=_as_str(_first(conn, 'connection-state',
                                      'connection', 'cstate')),
            role=_as_str(_first(conn, 'peer-role', 'role')),
            disk=_as_str(_first(peer_dev, 'peer-disk-state', 'peer-disk',
                                'pdsk')),
            replication=_as_str(_first(peer_dev, 'replication-state',
                                       'replication', 'repl')),
            has_volume=has_volume,
            out_of_sync=_as_int(peer_dev.get('out-of-sync')))

    @property
    def connected(self) -> bool:
        return self.connection == CONNECTED

    def describe(self) -> str:
        who = self.name or '?'
        if self.node_id is not None:
            who = f'{who} (node-id {self.node_id})'
        return (f'{who}: connection {self.connection or "unknown"}, '
                f'disk {self.disk or "unknown"}, '
                f'replication {self.replication or "unknown"}')


@dataclasses.dataclass
class ResourceState:
    """The parts of one resource's ``drbdsetup status --json`` we use.

    DRBD versions differ in what they report: every field may be None
    (not reported). ``quorum`` None means the kernel does not report quorum
    (DRBD before 9.0.7); ``open`` None means it does not report whether the
    device is open (drbd-utils before 9.1 style status).
    """

    name: str
    role: str | None
    suspended: bool | None
    minor: int | None
    disk: str | None
    client: bool | None
    quorum: bool | None
    open: bool | None
    peers: list[PeerState]
    #: this node's node-id in the resource
    node_id: int | None = None
    #: bytes of the device (drbdsetup says KiB, with --statistics)
    size: int | None = None
    #: the minor of every volume's device (of other backends' too)
    minors: tuple[int, ...] = ()
    #: ``suspended-user``: I/O suspended by suspend-io (None: not said)
    suspended_user: bool | None = None
    #: every ``suspended*`` key that is set (user, no-data, quorum, ...)
    suspended_reasons: tuple[str, ...] = ()
    #: the status has a device entry of the volume
    has_volume: bool = False

    @classmethod
    def from_json(cls, res: dict, volume: int = protocol.VOLUME_NUMBER
                  ) -> ResourceState:
        devices = res.get('devices')
        devices = devices if isinstance(devices, list) else []
        device = _pick_volume(devices, volume)
        has_volume = device is not None
        device = device or {}
        size = _as_int(device.get('size'))
        minors = (_as_int(d.get('minor')) for d in devices
                  if isinstance(d, dict))
        connections = res.get('connections')
        peers = [PeerState.from_json(conn, volume)
                 for conn in (connections
                              if isinstance(connections, list) else [])
                 if isinstance(conn, dict)]
        return cls(
            name=str(res.get('name')),
            role=_as_str(res.get('role')),
            suspended=_as_bool(res.get('suspended')),
            minor=_as_int(device.get('minor')),
            disk=_as_str(_first(device, 'disk-state', 'disk')),
            client=_as_bool(device.get('client')),
            quorum=_as_bool(device.get('quorum')),
            open=_as_bool(_first(device, 'open', 'opened')),
            peers=peers,
            node_id=_as_int(res.get('node-id')),
            size=size * 1024 if size is not None else None,
            minors=tuple(m for m in minors if m is not None),
            suspended_user=_as_bool(res.get('suspended-user')),
            suspended_reasons=tuple(
                key for key, value in res.items()
                if key.startswith('suspended') and _as_bool(value)),
            has_volume=has_volume)

    @property
    def attached(self) -> bool:
        """The resource has its local disk here (not diskless)."""
        return self.disk not in NO_DISK

    @property
    def user_suspended(self) -> bool:
        """I/O suspended by the user (suspend-io), as far as DRBD says.

        Versions without ``suspended-user`` count as suspended unless
        ``suspended`` says no, so a resume is never skipped.
        """
        if self.suspended_user is not None:
            return self.suspended_user
        return self.suspended is not False

    @property
    def primary(self) -> bool:
        """This node is Primary (a user has the device open for writing)."""
        return self.role == PRIMARY

    @property
    def peers_connected(self) -> bool:
        """Every configured peer is connected (true without peers)."""
        return all(peer.connected for peer in self.peers)

    @property
    def connected_peers(self) -> tuple[str, ...]:
        """The names of the peers connected now, as reported."""
        return tuple(peer.name for peer in self.peers
                     if peer.connected and peer.name is not None)

    def peer(self, name: str) -> PeerState | None:
        """The connection to the peer ``name``; None: none reported."""
        return next((peer for peer in self.peers if peer.name == name),
                    None)

    def disk_states(self) -> dict[str, str]:
        """{'local': ..., '<peer>': ...}: the disk states of the volume.

        A side whose device is not reported is left out; one reported
        without a state is ``Unknown`` (local) or ``DUnknown`` (peer).
        """
        result = {}
        if self.has_volume:
            result['local'] = self.disk or 'Unknown'
        for peer in self.peers:
            if peer.has_volume:
                result[peer.name or str(peer.node_id)] = (peer.disk
                                                          or 'DUnknown')
        return result

    @property
    def up_to_date_peers(self) -> list[PeerState]:
        return [peer for peer in self.peers if peer.disk == UP_TO_DATE]

    @property
    def has_quorum(self) -> bool:
        """Quorum held, or not reported by this DRBD version."""
        return self.quorum is not False

    @property
    def has_usable_disk(self) -> bool:
        return self.disk == UP_TO_DATE or bool(self.up_to_date_peers)

    @property
    def in_use(self) -> bool:
        """The device is open here, or this node is Primary.

        With auto-promote, opening the device for writing makes the node
        Primary, so Primary catches openers on versions that do not report
        ``open``.
        """
        return bool(self.open) or self.primary

    def describe(self) -> str:
        quorum = {True: 'yes', False: 'no', None: 'not reported'}
        parts = [f'role {self.role or "unknown"}',
                 f'disk {self.disk or "unknown"}',
                 f'quorum {quorum[self.quorum]}']
        if self.open is not None:
            parts.append(f'open {"yes" if self.open else "no"}')
        if self.suspended:
            parts.append('I/O suspended')
        peers = '; '.join(peer.describe() for peer in self.peers)
        parts.append(f'peers: {peers or "none"}')
        return ', '.join(parts)


def of(entry: dict | None) -> ResourceState | None:
    """The model of one ``drbdsetup status --json`` entry; None: down.

    The entry as the agent's replies carry it (``state``).
    """
    if not isinstance(entry, dict) or not entry:
        return None
    return ResourceState.from_json(entry)


#: The keys :meth:`ResourceState.from_json` reads, at each level (every
#: spelling of each); :func:`compact` keeps these and nothing else.
_RESOURCE_KEYS = ('name', 'role', 'suspended', 'node-id', 'suspended-user')
_DEVICE_KEYS = ('volume', 'minor', 'disk-state', 'disk', 'client',
                'quorum', 'open', 'opened', 'size')
_CONNECTION_KEYS = ('name', 'conn-name', 'peer-node-id', 'peer_node_id',
                    'connection-state', 'connection', 'cstate',
                    'peer-role', 'role')
_PEER_DEVICE_KEYS = ('volume', 'peer-disk-state', 'peer-disk', 'pdsk',
                     'replication-state', 'replication', 'repl',
                     'out-of-sync')


def _keep(mapping: dict, keys: tuple[str, ...]) -> dict:
    return {key: mapping[key] for key in keys if key in mapping}


def compact(entry: dict | None) -> dict | None:
    """A status entry with only what the model reads: ``of`` is the same.

    ``--statistics`` counters, paths, per-connection flags and suspension
    reasons that are not set are dropped: about a third of the entry's
    size, for replies that carry every resource (the stats' inventory).
    """
    if not isinstance(entry, dict) or not entry:
        return entry
    # in the entry's order: suspended_reasons is in that order
    out = {key: value for key, value in entry.items()
           if key in _RESOURCE_KEYS
           or key.startswith('suspended') and _as_bool(value)}
    devices = entry.get('devices')
    if isinstance(devices, list):
        out['devices'] = [_keep(d, _DEVICE_KEYS) for d in devices
                          if isinstance(d, dict)]
    connections = entry.get('connections')
    if isinstance(connections, list):
        out['connections'] = [_compact_connection(c) for c in connections
                              if isinstance(c, dict)]
    return out


def _compact_connection(conn: dict) -> dict:
    out = _keep(conn, _CONNECTION_KEYS)
    for key in ('peer_devices', 'peer-devices'):
        if key in conn:
            value = conn[key]
            out[key] = ([_keep(p, _PEER_DEVICE_KEYS) for p in value
                         if isinstance(p, dict)]
                        if isinstance(value, list) else value)
            break
    return out


def device_size(entry: dict | None) -> int | None:
    """Bytes of the running device; None when down or not reported."""
    state = of(entry)
    return state.size if state is not None else None


def parse_status(text: str) -> dict[str, ResourceState]:
    """Parse ``drbdsetup status --json``; ValueError if it is not that."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f'drbdsetup status output is not JSON: {exc}')
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError('drbdsetup status output is not a list of '
                         'resources')
    states = {}
    for res in data:
        if isinstance(res, dict) and isinstance(res.get('name'), str):
            states[res['name']] = ResourceState.from_json(res)
    return states
