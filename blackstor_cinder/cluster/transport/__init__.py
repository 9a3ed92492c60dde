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
"""How the controller talks to the ``blackstor-node`` agent of a node.

One request is one JSON document on the agent's stdin, one reply is one JSON
document on its stdout (see :mod:`blackstor_cinder.protocol`). A transport
returns the reply's ``result`` or raises :class:`NodeError` with the agent's
error code; :class:`NodeUnreachable` (a NodeError) means the agent could not
be talked to at all and :class:`NodeTimeout` (a NodeUnreachable) that it did
not answer in time. After a timeout the request may or may not have taken
effect: agent operations are idempotent, so the caller may repeat it.

:class:`LocalTransport` runs the agent as a subprocess on this host.
:class:`SSHTransport` runs it over SSH (paramiko): key authentication, host
keys checked against a configured known_hosts file (unknown or changed keys
are refused, never added), one connection per node reused across requests.
Over SSH each channel runs one agent process that answers request after
request (a session, :mod:`blackstor_cinder.session`): Python starts once
per channel, not once per request. Both are safe to use from several
threads.

One module each: :mod:`.base` (errors, reply parsing, masking, the
:class:`Traffic` counters), :mod:`.local`, :mod:`.ssh` (with
:mod:`.ssh_connect`, which opens the connection) and :mod:`.pool` (which
transport a node gets, one per node). The names the rest of the tree uses
are here: ``from blackstor_cinder.cluster import transport as tp``.
"""

from blackstor_cinder.cluster.transport import base
from blackstor_cinder.cluster.transport import local
from blackstor_cinder.cluster.transport import pool
from blackstor_cinder.cluster.transport import ssh
from blackstor_cinder.cluster.transport import ssh_connect

E_UNREACHABLE = base.E_UNREACHABLE
DEFAULT_TIMEOUT = base.DEFAULT_TIMEOUT
DEFAULT_LOCAL_COMMAND = local.DEFAULT_LOCAL_COMMAND
DEFAULT_SSH_COMMAND = ssh.DEFAULT_SSH_COMMAND
DEFAULT_CONNECT_TIMEOUT = ssh.DEFAULT_CONNECT_TIMEOUT

Transport = base.Transport
NodeError = base.NodeError
NodeUnreachable = base.NodeUnreachable
NodeTimeout = base.NodeTimeout
Traffic = base.Traffic
mask = base.mask
parse_reply = base.parse_reply

LocalTransport = local.LocalTransport
SSHTransport = ssh.SSHTransport
remote_command = ssh_connect.remote_command
make_transport = pool.make_transport
TransportPool = pool.TransportPool

__all__ = [
    'DEFAULT_CONNECT_TIMEOUT', 'DEFAULT_LOCAL_COMMAND', 'DEFAULT_SSH_COMMAND',
    'DEFAULT_TIMEOUT', 'E_UNREACHABLE', 'LocalTransport', 'NodeError',
    'NodeTimeout', 'NodeUnreachable', 'SSHTransport', 'Traffic', 'Transport',
    'TransportPool', 'make_transport', 'mask', 'parse_reply',
    'remote_command',
]
