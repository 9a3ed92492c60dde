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
"""Which transport a node gets, and one per node for a controller."""

from __future__ import annotations

import threading
from typing import Callable, Mapping, Sequence

from blackstor_cinder.cluster import model
from blackstor_cinder.cluster.transport import base
from blackstor_cinder.cluster.transport import local
from blackstor_cinder.cluster.transport import ssh


def make_transport(node: model.Node, *,
                   ssh_user: str | None = None,
                   ssh_private_key: str | None = None,
                   ssh_known_hosts: str | None = None,
                   ssh_command: str | Sequence[str] = ssh.DEFAULT_SSH_COMMAND,
                   connect_timeout: float = ssh.DEFAULT_CONNECT_TIMEOUT,
                   timeout: float = base.DEFAULT_TIMEOUT,
                   local_command: Sequence[str] = local.DEFAULT_LOCAL_COMMAND,
                   local_env: Mapping[str, str] | None = None
                   ) -> base.Transport:
    """The transport for ``node``: local when it has no ``ssh_host``."""
    if node.ssh_host is None:
        return local.LocalTransport(node.name, local_command,
                                    env=local_env, timeout=timeout)
    return ssh.SSHTransport(
        node.name, node.ssh_host, port=node.ssh_port, user=ssh_user or '',
        private_key=ssh_private_key or '',
        known_hosts=ssh_known_hosts or '', command=ssh_command,
        connect_timeout=connect_timeout, timeout=timeout)


class TransportPool:
    """One transport per node, made on first use, closed together.

    ``factory`` makes a transport for a node (typically
    ``functools.partial(make_transport, ssh_user=..., ...)``). A node whose
    description changed (new address) gets a new transport.
    """

    def __init__(self, factory: Callable[[model.Node], base.Transport]
                 ) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._transports: dict[str, tuple[model.Node, base.Transport]] = {}

    def get(self, node: model.Node) -> base.Transport:
        with self._lock:
            known = self._transports.get(node.name)
            if known is not None and known[0] == node:
                return known[1]
            transport = self._factory(node)
            self._transports[node.name] = (node, transport)
        if known is not None:
            known[1].close()
        return transport

    def traffic(self) -> dict[str, dict[str, int]]:
        """Node -> what its transport carried so far (a Traffic snapshot)."""
        with self._lock:
            transports = {name: t for name, (_, t)
                          in self._transports.items()}
        return {name: t.traffic.snapshot() for name, t in transports.items()
                if isinstance(getattr(t, 'traffic', None), base.Traffic)}

    def close(self) -> None:
        with self._lock:
            transports = [t for _, t in self._transports.values()]
            self._transports.clear()
        for transport in transports:
            transport.close()
