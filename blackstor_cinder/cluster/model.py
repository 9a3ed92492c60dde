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
"""Plain data of the controller: nodes, resources, their hosts."""

from __future__ import annotations

import dataclasses
from typing import Mapping


@dataclasses.dataclass(frozen=True)
class Node:
    """A machine running blackstor-node: a storage node or a client."""

    name: str                      # host name as DRBD sees it
    replication_address: str       # IP literal DRBD uses
    ssh_host: str | None = None    # None: local transport
    ssh_port: int = 22
    zone: str | None = None
    storage: bool = True           # holds replicas (else: client only)


@dataclasses.dataclass(frozen=True)
class ResourceHost:
    """One node of a DRBD resource, as written in its ``on`` section."""

    name: str
    node_id: int
    address: str
    diskful: bool
    disk: str | None = None        # /dev/<vg>/<lv> when diskful
    # a diskless peer on a storage node that only gives a two-replica
    # volume its third vote (see ``tiebreaker``); not a client
    tiebreaker: bool = False

    def __post_init__(self) -> None:
        if self.diskful != (self.disk is not None):
            raise ValueError(f'{self.name}: a diskful host needs a disk '
                             'and a diskless one must not have one')
        if self.tiebreaker and self.diskful:
            raise ValueError(f'{self.name}: a tiebreaker is diskless')


@dataclasses.dataclass(frozen=True)
class ResourceSpec:
    """Everything needed to render a resource's .res file.

    The secret is carried for requests to the agents but never rendered:
    the .res text holds ``protocol.SECRET_PLACEHOLDER`` instead.

    ``size`` is the DRBD device's size in bytes, the volume's size: it is
    rendered as ``disk { size ...; }`` so that DRBD exposes exactly that
    much and not all the LV below the metadata (the LV is rounded up to
    the extent). None for resources whose .res has no size (written before
    it was rendered): their device is all the LV minus the metadata.
    """

    name: str
    minor: int
    port: int
    hosts: tuple[ResourceHost, ...]
    secret: str = dataclasses.field(repr=False, default='')
    quorum: str = 'majority'
    on_no_quorum: str = 'io-error'
    allow_two_primaries: bool = False
    net_options: Mapping[str, str] = dataclasses.field(default_factory=dict)
    disk_options: Mapping[str, str] = dataclasses.field(
        default_factory=dict)
    max_peers: int = 7
    size: int | None = None
    # the zone policy its replicas are placed by (the type's
    # blackstor:zones), kept in its .res for heal and evacuate; None:
    # none recorded (a volume created before it was)
    zone_policy: str | None = None

    @property
    def diskful_hosts(self) -> tuple[ResourceHost, ...]:
        return tuple(h for h in self.hosts if h.diskful)

    @property
    def diskless_hosts(self) -> tuple[ResourceHost, ...]:
        """The clients and the tiebreaker: every host without a disk."""
        return tuple(h for h in self.hosts if not h.diskful)

    @property
    def client_hosts(self) -> tuple[ResourceHost, ...]:
        """The diskless hosts that are attachments (not the tiebreaker)."""
        return tuple(h for h in self.hosts
                     if not h.diskful and not h.tiebreaker)

    @property
    def tiebreaker_host(self) -> ResourceHost | None:
        return next((h for h in self.hosts if h.tiebreaker), None)

    def host(self, name: str) -> ResourceHost | None:
        return next((h for h in self.hosts if h.name == name), None)

    def with_hosts(self, hosts: tuple[ResourceHost, ...],
                   **changes) -> ResourceSpec:
        return dataclasses.replace(self, hosts=hosts, **changes)


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """What the controller needs to know, from cinder.conf or elsewhere."""

    storage_nodes: tuple[Node, ...]
    pool: str                                # "<vg>/<thin pool>"
    minors: range
    ports: range
    client_nodes: tuple[Node, ...] = ()
    replicas: int = 3
    zone_policy: str = 'any'
    max_peers: int = 7
    quorum: str = 'majority'
    on_no_quorum: str = 'io-error'
    net_options: Mapping[str, str] = dataclasses.field(default_factory=dict)
    disk_options: Mapping[str, str] = dataclasses.field(
        default_factory=dict)
    attach_timeout: float = 60.0
    connect_timeout: float = 30.0            # peers connecting after create
    io_suspend_timeout: float = 15.0         # each step while I/O is held
    allow_unlisted_clients: bool = True
    over_subscription: float = 20.0

    @property
    def vg(self) -> str:
        return self.pool.split('/')[0]

    def lv_path(self, lv_name: str) -> str:
        return f'/dev/{self.vg}/{lv_name}'

    def node(self, name: str) -> Node | None:
        return next((n for n in self.storage_nodes + self.client_nodes
                     if n.name == name), None)
