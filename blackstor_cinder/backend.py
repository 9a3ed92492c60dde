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

import functools
import ipaddress
from typing import Any, Callable

from blackstor_cinder.cluster import allocation
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import resspec
from blackstor_cinder.cluster import transport
from blackstor_cinder import protocol

LOCAL = 'local'


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
    return model.ClusterConfig(
        storage_nodes=storage, client_nodes=clients, pool=pool,
        minors=allocation.parse_range(
            conf.blackstor_minor_range, protocol.MINOR_MIN,
            protocol.MINOR_MAX, 'blackstor_minor_range'),
        ports=allocation.parse_range(
            conf.blackstor_port_range, 1024, protocol.PORT_MAX,
            'blackstor_port_range'),
        replicas=conf.blackstor_replicas,
        zone_policy=conf.blackstor_zone_policy,
        max_peers=conf.blackstor_max_peers,
        quorum=conf.blackstor_quorum,
        on_no_quorum=conf.blackstor_on_no_quorum,
        net_options=dict(conf.blackstor_net_options),
        disk_options=dict(conf.blackstor_disk_options),
        attach_timeout=conf.blackstor_attach_timeout,
        io_suspend_timeout=conf.blackstor_io_suspend_timeout,
        allow_unlisted_clients=conf.blackstor_allow_unlisted_clients,
        over_subscription=over_subscription)


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
