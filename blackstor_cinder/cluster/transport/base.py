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
"""Shared parts of the transports: errors, reply parsing, masking, counters."""

from __future__ import annotations

import collections.abc
import json
import threading
import time
from typing import Any, Iterable, Mapping, Protocol

from oslo_log import log as logging
from oslo_utils import strutils

from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

#: Error code of :class:`NodeUnreachable` (not an agent code).
E_UNREACHABLE = 'unreachable'

DEFAULT_TIMEOUT = 120.0

#: How much of the agent's stderr goes into an error message.
STDERR_TAIL_CHARS = 2000
#: How much of a reply goes into the debug log.
LOG_REPLY_CHARS = 8000

# Keys whose values are masked in logs besides oslo.utils' own list.
_EXTRA_SECRET_KEYS = ('provider_auth', 'shared_secret', 'shared-secret')
_MASK = '***'


class Transport(Protocol):
    """What the flows need from a way to reach one node's agent."""

    node: str

    def call(self, request: dict, timeout: float | None = None) -> dict:
        """Send one request; return the reply's ``result``."""

    def close(self) -> None:
        """Release connections; the transport may be used again later."""


class NodeError(Exception):
    """The agent on ``node`` refused or failed a request.

    ``code`` is one of the protocol's error codes (``protocol.E_*``) or
    :data:`E_UNREACHABLE`; ``field`` names the request field at fault when
    the agent said so; ``details`` is the agent's extra error data.
    """

    def __init__(self, node: str, code: str, message: str,
                 field: str | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(f'{node}: {message}')
        self.node = node
        self.code = code
        self.message = message
        self.field = field
        self.details = dict(details or {})


class NodeUnreachable(NodeError):
    """The agent could not be talked to at all (no valid exchange)."""

    def __init__(self, node: str, message: str,
                 code: str = E_UNREACHABLE) -> None:
        super().__init__(node, code, message)


class NodeTimeout(NodeUnreachable):
    """No reply in time; the request may or may not have taken effect."""

    def __init__(self, node: str, message: str) -> None:
        super().__init__(node, message, code=protocol.E_TIMEOUT)


# Masking and reply parsing.

def mask(value: Any) -> Any:
    """``value`` with secrets masked, for logging (dicts, lists, text)."""
    if isinstance(value, collections.abc.Mapping):
        value = strutils.mask_dict_password(value, _MASK)
        return {k: (_MASK if isinstance(k, str)
                    and k.lower() in _EXTRA_SECRET_KEYS else mask(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v) for v in value]
    if isinstance(value, str):
        return strutils.mask_password(value, _MASK)
    return value


def secrets_of(value: Any) -> set[str]:
    """Literal secret values in a request, to scrub from any text."""
    found: set[str] = set()
    if isinstance(value, collections.abc.Mapping):
        for k, v in value.items():
            if (isinstance(k, str) and isinstance(v, str) and v
                    and ('secret' in k.lower()
                         or k.lower() in _EXTRA_SECRET_KEYS)):
                found.add(v)
            else:
                found |= secrets_of(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            found |= secrets_of(v)
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _MASK)
    return strutils.mask_password(text, _MASK)


def text_tail(data: bytes, secrets: Iterable[str]) -> str:
    text = data.decode('utf-8', 'replace').strip()
    if len(text) > STDERR_TAIL_CHARS:
        text = '...' + text[-STDERR_TAIL_CHARS:]
    return scrub(text, secrets)


def encode(node: str, request: dict) -> bytes:
    if not isinstance(request, dict) or not isinstance(request.get('op'),
                                                       str):
        raise TypeError(f'{node}: a request is a dict with an "op"')
    return json.dumps(request, sort_keys=True).encode('utf-8')


def check_timeout(timeout: float | None, default: float) -> float:
    if timeout is None:
        return default
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or timeout <= 0:
        raise ValueError(f'timeout: {timeout!r} is not a positive number')
    return float(timeout)


def log_request(node: str, how: str, request: dict) -> None:
    if LOG.isEnabledFor(logging.DEBUG):
        LOG.debug('Request to %(node)s (%(how)s): %(request)s',
                  {'node': node, 'how': how,
                   'request': json.dumps(mask(request), sort_keys=True)})


def parse_reply(node: str, returncode: int, stdout: bytes, stderr: bytes,
                secrets: Iterable[str] = (),
                started: float | None = None) -> dict:
    """Turn the agent's exit status and output into a result or NodeError.

    A reply that is not one JSON object of the protocol's shape (a crash,
    a shell error, garbage) is a NodeError whose message carries the exit
    status and the tail of stderr.
    """
    secrets = tuple(secrets)
    try:
        reply = json.loads(stdout.decode('utf-8'))
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or not isinstance(reply.get('ok'), bool):
        if returncode < 0:
            status = f'killed by signal {-returncode}'
        else:
            status = f'exit status {returncode}'
        tail = text_tail(stderr, secrets)
        # 126/127: the shell could not run the command; sudo says so too.
        code = (protocol.E_MISSING if returncode in (126, 127)
                else protocol.E_INTERNAL)
        what = 'no reply' if not stdout.strip() else 'a reply that is not ' \
            'a protocol JSON object'
        raise NodeError(node, code,
                        f'{what} from the agent ({status})'
                        + (f': {tail}' if tail else ''))
    if LOG.isEnabledFor(logging.DEBUG):
        text = json.dumps(mask(reply), sort_keys=True)
        if len(text) > LOG_REPLY_CHARS:
            text = text[:LOG_REPLY_CHARS] + '...'
        LOG.debug('Reply from %(node)s%(took)s: %(reply)s',
                  {'node': node, 'reply': scrub(text, secrets),
                   'took': '' if started is None else
                   ' in %.2fs' % (time.monotonic() - started)})
    if reply['ok']:
        result = reply.get('result', {})
        if returncode != 0 or not isinstance(result, dict):
            raise NodeError(node, protocol.E_INTERNAL,
                            f'inconsistent reply from the agent (exit status '
                            f'{returncode}, ok with result {type(result)})')
        return result
    error = reply.get('error')
    if not isinstance(error, dict):
        error = {}
    code = error.get('code')
    message = error.get('message')
    field = error.get('field')
    details = error.get('details')
    raise NodeError(
        node,
        code if isinstance(code, str) and code else protocol.E_INTERNAL,
        scrub(message, secrets) if isinstance(message, str) and message
        else f'the agent failed (exit status {returncode}) without a message',
        field if isinstance(field, str) else None,
        mask(details) if isinstance(details, dict) else None)


class Traffic:
    """What a transport carried: round trips, request and reply bytes.

    A round trip is one request answered (a session's opening included);
    the bytes are what the agent read and wrote (JSON and framing; for SSH
    before encryption). Thread-safe; read with :meth:`snapshot`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {'round_trips': 0, 'sent_bytes': 0,
                        'received_bytes': 0}

    def add(self, sent: int, received: int) -> None:
        with self._lock:
            self._counts['round_trips'] += 1
            self._counts['sent_bytes'] += sent
            self._counts['received_bytes'] += received

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
