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
"""The node agent: one request in, one reply out.

:meth:`Agent.handle` validates a request against the wire contract
(:mod:`blackstor_cinder.protocol`), runs the operation's handler under
the resource's lock and turns the outcome into a reply; it never
raises. The handlers are in the ``ops_*`` modules, one family each
(:data:`FAMILIES`), over the steps they share (:mod:`.steps`). Every
handler is idempotent: it looks at what exists (LVs, the .res file,
the running DRBD state) and does only what is missing, so running it
twice, or again after a crash half-way, ends in the same state. A
handler that fails undoes what it created itself (an LV, a .res file,
a resource it brought up).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, ContextManager

from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import lease as lease_mod
from blackstor_cinder.node import locks
from blackstor_cinder.node import ops_client
from blackstor_cinder.node import ops_inventory
from blackstor_cinder.node import ops_io
from blackstor_cinder.node import ops_lifecycle
from blackstor_cinder.node import ops_manage
from blackstor_cinder.node import ops_resize
from blackstor_cinder.node import ops_snapshot
from blackstor_cinder.node import steps
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

#: The operation families, in the order ``blackstor-node --help`` lists
#: their operations.
FAMILIES = (ops_inventory, ops_lifecycle, ops_resize, ops_io, ops_snapshot,
            ops_client, ops_manage)
#: op -> its handler, ``handler(node, request) -> result``.
HANDLERS: dict[str, Callable[[steps.Node, dict], dict]] = {
    op: handler for family in FAMILIES
    for op, (handler, _) in family.OPS.items()}
#: One line per operation, for ``blackstor-node --help``.
OP_HELP: dict[str, str] = {
    op: text for family in FAMILIES for op, (_, text) in family.OPS.items()}


class Agent(steps.Node):
    """Runs protocol requests on this node."""

    def handle(self, request: Any) -> tuple[dict, int]:
        """(reply, exit code) for one request; never raises."""
        try:
            protocol.validate_request(request)
        except protocol.ProtocolError as e:
            message = str(e)
            if e.field == 'secret':
                message = 'secret: not a valid shared secret'
            return (protocol.error_reply(protocol.E_INVALID, message,
                                         e.field),
                    protocol.EXIT_CODES[protocol.E_INVALID])
        op = request['op']
        handler = HANDLERS[op]
        try:
            with self._lock(_lock_name(request)), self.lvm.session():
                result = handler(self, request)
        except AgentError as e:
            LOG.warning('%s failed: %s', op, _mask(e.message, request))
            e.message = _mask(e.message, request)
            return e.reply(), e.exit_code
        except Exception as e:
            LOG.exception('Unexpected error in %s', op)
            return (protocol.error_reply(
                protocol.E_INTERNAL,
                _mask(f'{op}: {type(e).__name__}: {e}', request)),
                protocol.EXIT_CODES[protocol.E_INTERNAL])
        return protocol.ok_reply(result), 0

    def expire_lease(self, resource: str, lease_id: str) -> bool:
        """Resume ``resource`` if its lease file still holds ``lease_id``.

        Run by the lease process (:mod:`.lease`) when the lease is over,
        under the agent lock, as a ``resume-io`` would. True when it was
        still the current lease.
        """
        with self._lock(resource), self.lvm.session():
            path = lease_mod.lease_path(self.conf, resource)
            if lease_mod.read_id(path) != lease_id:
                return False
            ops_io.resume(self, resource)
            return True

    def _lock(self, name: str | None) -> ContextManager[None]:
        return locks.hold(self.conf.lock_dir, name, self.conf.lock_timeout)


def _lock_name(request: dict) -> str | None:
    if request['op'] in ('inventory', 'status'):
        return None
    if 'resource' in request:
        return request['resource']
    return 'snapshot-' + request['snapshot']


def _mask(message: str, request: dict) -> str:
    secret = request.get('secret') if isinstance(request, dict) else None
    if isinstance(secret, str) and secret:
        message = message.replace(secret, '***')
    # Imported when needed: compiling its patterns costs a tenth of a
    # second on a server (seconds on a small VM), at every agent start.
    from oslo_utils import strutils
    return strutils.mask_password(message)
