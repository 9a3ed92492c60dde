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
"""From a backend section of cinder.conf to a running controller's inputs.

Shared by the driver and the admin CLI; imports no Cinder code, so the CLI
can read cinder.conf on a host without Cinder's services.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from typing import Any, Callable, Iterable

from blackstor_cinder.cluster import allocation
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import resspec
from blackstor_cinder.cluster import tiebreaker
from blackstor_cinder.cluster import transport
from blackstor_cinder import protocol

LOCAL = 'local'
#: Rendered unless ``blackstor_net_options`` sets them: without a
#: verify-alg, ``drbdadm verify`` (the online check that replicas hold the
#: same bytes) is refused. crc32c: cheap, and only compares blocks.
DEFAULT_NET_OPTIONS = {'verify-alg': 'crc32c'}

#: The lowest port a backend may use: DRBD accepts any TCP port, but the
#: privileged ones belong to the host's services.
PORT_LOW = 1024

#: Clients a volume has at once in a live migration (the source and the
#: destination hypervisor): every volume needs room for them.
LIVE_MIGRATION_CLIENTS = 2


def cluster_config(conf: Any, over_subscription: float
                   ) -> model.ClusterConfig:
    """ClusterConfig from the ``blackstor_*`` options of a backend.

    Raises InvalidRequest naming the option at fault.
    """
    pool = conf.blackstor_pool
    try:
        protocol.check_pool('blackstor_pool', pool)
    except protocol.ProtocolError as exc:
        raise errors.InvalidRequest(str(exc)) from None
    storage = tuple(_node(conf, name, storage=True)
                    for name in conf.blackstor_storage_nodes)
    if not storage:
        raise errors.InvalidRequest(
            'blackstor_storage_nodes lists no storage node')
    families = {ipaddress.ip_address(n.replication_address).version
                for n in storage}
    if len(families) > 1:
        raise errors.InvalidRequest(
            'storage nodes replicate over both IPv4 and IPv6; DRBD '
            'connects peers of one address family only')
    clients = tuple(_node(conf, name, storage=False)
                    for name in conf.blackstor_client_nodes
                    if name not in conf.blackstor_storage_nodes)
    try:
        resspec.validate_configured_options(conf.blackstor_net_options,
                                            conf.blackstor_disk_options)
    except ValueError as exc:
        raise errors.InvalidRequest(str(exc)) from None
    _check_workable(conf, storage)
    return model.ClusterConfig(
        storage_nodes=storage, client_nodes=clients, pool=pool,
        minors=minor_range(conf), ports=port_range(conf),
        replicas=conf.blackstor_replicas,
        zone_policy=conf.blackstor_zone_policy,
        max_peers=conf.blackstor_max_peers,
        quorum=conf.blackstor_quorum,
        on_no_quorum=conf.blackstor_on_no_quorum,
        net_options={**DEFAULT_NET_OPTIONS, **conf.blackstor_net_options},
        disk_options=dict(conf.blackstor_disk_options),
        attach_timeout=conf.blackstor_attach_timeout,
        io_suspend_timeout=conf.blackstor_io_suspend_timeout,
        allow_unlisted_clients=conf.blackstor_allow_unlisted_clients,
        over_subscription=over_subscription)


def _check_workable(conf: Any, storage: tuple[model.Node, ...]) -> None:
    """Refuse option values no volume could work with, saying what to set."""
    max_peers, replicas = conf.blackstor_max_peers, conf.blackstor_replicas
    hosts = replicas + LIVE_MIGRATION_CLIENTS
    if hosts > max_peers + 1:
        raise errors.InvalidRequest(
            f'blackstor_max_peers = {max_peers} gives a volume room for '
            f'{max_peers + 1} hosts, but blackstor_replicas = {replicas} '
            f'and the {LIVE_MIGRATION_CLIENTS} clients of a live migration '
            f'(the source and the destination hypervisor) make {hosts}: '
            f'set blackstor_max_peers to {hosts - 1} or more')
    if conf.blackstor_quorum == 'off' and len(storage) > 1:
        raise errors.InvalidRequest(
            'blackstor_quorum = off cannot be used: a live migration (or '
            'multiattach) turns on allow-two-primaries for the volume, and '
            'without quorum two primaries cut off from each other both go '
            'on writing to their replicas, which then hold different data '
            '(split brain). Set blackstor_quorum = majority (or all)')


def setup_warnings(config: model.ClusterConfig) -> list[str]:
    """What works, but not as an operator may expect; for the log."""
    found = []
    room = config.max_peers + 1 >= (tiebreaker.REPLICAS + 1
                                    + tiebreaker.LIVE_MIGRATION_CLIENTS)
    if config.replicas == tiebreaker.REPLICAS and (
            len(config.storage_nodes) <= tiebreaker.REPLICAS or not room):
        why = (f'blackstor_max_peers = {config.max_peers} leaves no room '
               'for one besides the clients of a live migration'
               if not room else
               'a tiebreaker needs a third storage node')
        found.append(
            'blackstor_replicas = 2 and no tiebreaker (' + why + '): when '
            'the node of one replica of a volume fails or is cut off, the '
            'other replica keeps quorum only while most of the volume\'s '
            'attached clients still reach it; a detached volume cannot be '
            'attached, and one whose clients are cut off too stops I/O '
            '(blackstor_on_no_quorum), until both replicas are connected '
            'again. Add a storage node or use blackstor_replicas = 3')
    return found


def minor_range(conf: Any) -> range:
    """``blackstor_minor_range``, checked against DRBD's minors."""
    return allocation.parse_range(
        conf.blackstor_minor_range, protocol.MINOR_MIN, protocol.MINOR_MAX,
        allocation.RANGE_OPTIONS['minor'])


def port_range(conf: Any) -> range:
    """``blackstor_port_range``, unprivileged TCP ports only."""
    return allocation.parse_range(
        conf.blackstor_port_range, PORT_LOW, protocol.PORT_MAX,
        allocation.RANGE_OPTIONS['port'])


@dataclasses.dataclass(frozen=True)
class BackendRanges:
    """A backend's DRBD minor and port ranges, and where they are used."""

    backend: str                    # its section in cinder.conf
    minors: range
    ports: range
    hosts: frozenset[str]           # storage and client nodes listed
    unlisted_clients: bool          # any host may attach its volumes

    @classmethod
    def of(cls, backend: str, conf: Any) -> BackendRanges:
        """Raises InvalidRequest when a range is not valid."""
        return cls(backend=backend, minors=minor_range(conf),
                   ports=port_range(conf),
                   hosts=frozenset(conf.blackstor_storage_nodes)
                   | frozenset(conf.blackstor_client_nodes),
                   unlisted_clients=conf.blackstor_allow_unlisted_clients)

    def shared_hosts(self, other: BackendRanges) -> str | None:
        """Why the two backends may run volumes on one host, or None."""
        common = self.hosts & other.hosts
        if common:
            return f'both list {", ".join(sorted(common))}'
        loose = [b.backend for b in (self, other) if b.unlisted_clients]
        if loose:
            return (' and '.join(f'[{name}]' for name in loose)
                    + ' accept' + ('s' if len(loose) == 1 else '')
                    + ' unlisted clients (blackstor_allow_unlisted_clients)'
                    ', so one hypervisor may attach volumes of both')
        return None


def check_disjoint(own: BackendRanges,
                   others: Iterable[BackendRanges]) -> None:
    """Refuse ranges that overlap another backend's on shared hosts.

    DRBD minors and ports are per host: two backends whose volumes may
    meet on one hypervisor (or storage node) would hand out the same
    values, and the second attach there would clash. Raises
    InvalidRequest naming both backends and the options to change.
    """
    problems = []
    for other in others:
        why = own.shared_hosts(other)
        if why is None:
            continue
        for kind, mine, theirs in (('minor', own.minors, other.minors),
                                   ('port', own.ports, other.ports)):
            shared = allocation.overlap(mine, theirs)
            if not shared:
                continue
            option = allocation.RANGE_OPTIONS[kind]
            problems.append(
                f'[{own.backend}] {option} {_span(mine)} and '
                f'[{other.backend}] {option} {_span(theirs)} share '
                f'{_span(shared)} ({why})')
    if problems:
        raise errors.InvalidRequest(
            'BlackStor backends that may serve the same hosts need '
            'disjoint DRBD minor and port ranges: ' + '; '.join(problems)
            + '. Give each backend its own blackstor_minor_range and '
              'blackstor_port_range (existing volumes keep their values), '
              'or list each backend\'s hosts in blackstor_storage_nodes '
              'and blackstor_client_nodes with '
              'blackstor_allow_unlisted_clients = false')


def _span(values: range) -> str:
    return f'{values.start}-{values.stop - 1}'


def transport_factory(conf: Any) -> Callable[[model.Node],
                                             transport.Transport]:
    """Makes each node's transport: SSH, or local for ``name:local``."""
    return functools.partial(
        transport.make_transport,
        ssh_user=conf.blackstor_ssh_user,
        ssh_private_key=conf.blackstor_ssh_private_key,
        ssh_known_hosts=conf.blackstor_ssh_known_hosts,
        ssh_command=conf.blackstor_node_command.split(),
        local_command=conf.blackstor_local_node_command.split(),
        connect_timeout=conf.blackstor_ssh_connect_timeout,
        timeout=conf.blackstor_node_timeout)


def _node(conf: Any, name: str, storage: bool) -> model.Node:
    try:
        protocol.check_host('node name', name)
    except protocol.ProtocolError as exc:
        raise errors.InvalidRequest(str(exc)) from None
    where = conf.blackstor_ssh_addresses.get(name, name)
    if where == LOCAL:
        ssh_host, ssh_port = None, conf.blackstor_ssh_port
    else:
        ssh_host, ssh_port = host_port(where, conf.blackstor_ssh_port)
    address = conf.blackstor_replication_addresses.get(name, ssh_host)
    try:
        protocol.check_address('replication address of ' + name, address)
    except protocol.ProtocolError:
        raise errors.InvalidRequest(
            f'node {name} needs an IP address in '
            f'blackstor_replication_addresses (have {address!r})') from None
    return model.Node(name=name, replication_address=address,
                      ssh_host=ssh_host, ssh_port=ssh_port,
                      zone=conf.blackstor_node_zones.get(name),
                      storage=storage)


def host_port(text: str, default_port: int) -> tuple[str, int]:
    """'host', 'host:port', '[v6]:port' or a bare IPv6 literal."""
    if text.startswith('['):
        host, _sep, rest = text[1:].partition(']')
        return host, int(rest[1:]) if rest.startswith(':') else default_port
    try:
        ipaddress.IPv6Address(text)
        return text, default_port
    except ValueError:
        pass
    host, sep, port = text.partition(':')
    return host, int(port) if sep else default_port
