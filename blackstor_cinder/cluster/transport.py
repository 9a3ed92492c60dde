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
"""

from __future__ import annotations

import collections.abc
import json
import os
import re
import select
import shlex
import signal
import subprocess
import threading
import time
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from oslo_log import log as logging
from oslo_utils import strutils
import paramiko

from blackstor_cinder.cluster import model
from blackstor_cinder import protocol
from blackstor_cinder import session

LOG = logging.getLogger(__name__)

#: Error code of :class:`NodeUnreachable` (not an agent code).
E_UNREACHABLE = 'unreachable'

DEFAULT_LOCAL_COMMAND = ('blackstor-node',)
DEFAULT_SSH_COMMAND = ('sudo', '-n', 'blackstor-node')
DEFAULT_TIMEOUT = 120.0
DEFAULT_CONNECT_TIMEOUT = 10.0

#: A reply larger than this is refused (an inventory is a few hundred KiB).
MAX_REPLY_BYTES = 64 * 1024 * 1024
#: How much of the agent's stderr goes into an error message.
STDERR_TAIL_CHARS = 2000
#: How much of a reply goes into the debug log.
LOG_REPLY_CHARS = 8000
#: Seconds a local agent gets to exit after SIGTERM on a timeout.
KILL_GRACE = 5.0
#: An agent session idle longer than this is closed, not reused (well
#: below the agent's own idle end, session.IDLE).
SESSION_REUSE = 300.0

# Words of the remote command: no quoting, globbing, redirection or
# variable syntax can hide in these.
_COMMAND_WORD_RE = re.compile(r'[A-Za-z0-9_./:=@%+,-]+')
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


# Masking and reply parsing, shared by the transports.

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


def _secrets_of(value: Any) -> set[str]:
    """Literal secret values in a request, to scrub from any text."""
    found: set[str] = set()
    if isinstance(value, collections.abc.Mapping):
        for k, v in value.items():
            if (isinstance(k, str) and isinstance(v, str) and v
                    and ('secret' in k.lower()
                         or k.lower() in _EXTRA_SECRET_KEYS)):
                found.add(v)
            else:
                found |= _secrets_of(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            found |= _secrets_of(v)
    return found


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _MASK)
    return strutils.mask_password(text, _MASK)


def _tail(data: bytes, secrets: Iterable[str]) -> str:
    text = data.decode('utf-8', 'replace').strip()
    if len(text) > STDERR_TAIL_CHARS:
        text = '...' + text[-STDERR_TAIL_CHARS:]
    return _scrub(text, secrets)


def _encode(node: str, request: dict) -> bytes:
    if not isinstance(request, dict) or not isinstance(request.get('op'),
                                                       str):
        raise TypeError(f'{node}: a request is a dict with an "op"')
    return json.dumps(request, sort_keys=True).encode('utf-8')


def _check_timeout(timeout: float | None, default: float) -> float:
    if timeout is None:
        return default
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or timeout <= 0:
        raise ValueError(f'timeout: {timeout!r} is not a positive number')
    return float(timeout)


def _log_request(node: str, how: str, request: dict) -> None:
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
        tail = _tail(stderr, secrets)
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
                  {'node': node, 'reply': _scrub(text, secrets),
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
        _scrub(message, secrets) if isinstance(message, str) and message
        else f'the agent failed (exit status {returncode}) without a message',
        field if isinstance(field, str) else None,
        mask(details) if isinstance(details, dict) else None)


def _is_timeout(exc: BaseException) -> bool:
    # Under eventlet's monkey patching (cinder-volume applies it) the green
    # Popen raises the TimeoutExpired of eventlet's private copy of the
    # subprocess module, a class distinct from subprocess.TimeoutExpired.
    kind = type(exc)
    return isinstance(exc, subprocess.TimeoutExpired) or (
        kind.__name__ == 'TimeoutExpired' and kind.__module__ == 'subprocess')


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


class LocalTransport:
    """Runs the agent as a subprocess of this process, one per request."""

    def __init__(self, node: str,
                 argv: Sequence[str] = DEFAULT_LOCAL_COMMAND,
                 env: Mapping[str, str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        if (isinstance(argv, str) or not argv
                or not all(isinstance(a, str) and a for a in argv)):
            raise ValueError(f'argv: {argv!r} is not a list of words')
        self.node = node
        self.argv = list(argv)
        self.env = dict(env) if env else None
        self.timeout = _check_timeout(timeout, DEFAULT_TIMEOUT)
        self.traffic = Traffic()

    def __repr__(self) -> str:
        return f'LocalTransport({self.node!r}, {self.argv!r})'

    def call(self, request: dict, timeout: float | None = None) -> dict:
        payload = _encode(self.node, request)
        timeout = _check_timeout(timeout, self.timeout)
        secrets = _secrets_of(request)
        _log_request(self.node, 'local', request)
        env = None
        if self.env:
            env = dict(os.environ)
            env.update(self.env)
        started = time.monotonic()
        try:
            # A session of its own: a timeout kills the agent and whatever
            # it started.
            proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=env, close_fds=True,
                start_new_session=True)
        except OSError as e:
            raise NodeUnreachable(
                self.node, f'cannot run the agent {self.argv[0]}: '
                f'{e.strerror or e}') from None
        try:
            stdout, stderr = proc.communicate(payload, timeout=timeout)
        except BaseException as e:
            self._kill(proc)
            if _is_timeout(e):
                raise NodeTimeout(
                    self.node, f'the agent did not reply within '
                    f'{timeout:g}s (stopped)') from None
            raise
        self.traffic.add(len(payload), len(stdout) + len(stderr))
        return parse_reply(self.node, proc.returncode, stdout, stderr,
                           secrets, started)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.communicate(timeout=KILL_GRACE)
                return
            except Exception as e:
                if not _is_timeout(e):
                    raise
        # Not ours to kill (another user's process group) or something
        # outside the group holds the pipes: do not hang on it.
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe:
                pipe.close()
        try:
            proc.wait(timeout=KILL_GRACE)
        except Exception as e:
            if not _is_timeout(e):
                raise
            LOG.warning('Agent process %(pid)s did not stop after a '
                        'timeout; leaving it', {'pid': proc.pid})

    def close(self) -> None:
        pass


def remote_command(words: str | Sequence[str]) -> str:
    """The remote command line from configured words, safely joined.

    ``words`` is a list or a space separated string (the
    ``blackstor_node_command`` option); each word must be plain: letters,
    digits and ``_ . / : = @ % + , -``. Raises ValueError otherwise.
    """
    if isinstance(words, str):
        words = words.split()
    words = list(words)
    if not words:
        raise ValueError('node command: empty')
    for word in words:
        if not isinstance(word, str) or not _COMMAND_WORD_RE.fullmatch(word):
            raise ValueError(
                f'node command: {word!r} is not a plain word (no shell '
                'syntax, quotes or spaces allowed)')
    return shlex.join(words)


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(f'no host key for {hostname} in known_hosts')
        self.hostname = hostname
        self.key = key


class _RejectUnknownHostKey(paramiko.RejectPolicy):
    """paramiko's RejectPolicy with an exception we can tell apart."""

    def missing_host_key(self, client, hostname, key):
        raise _UnknownHostKey(hostname, key)


def _reason(e: BaseException) -> str:
    """Why a connection failed, without Python's ``[Errno N]`` prefix.

    paramiko's NoValidConnectionsError has no errno ("[Errno None] Unable
    to connect to port 22 on ..."): its text, and what each address
    answered ("Connection refused").
    """
    if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError):
        causes = sorted({_reason(c) for c in e.errors.values()})
        return (e.strerror or 'no address answered') + (
            f' ({"; ".join(causes)})' if causes else '')
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _fingerprint(key: paramiko.PKey) -> str:
    try:
        return f'{key.get_name()} {key.fingerprint}'
    except Exception:  # an old paramiko or a fake key
        return key.get_name()


class SSHTransport:
    """Runs the agent on a node over SSH, reusing one connection.

    The connection is made on first use and kept. A request whose channel
    cannot be opened on a kept connection (the node rebooted, a firewall
    forgot the flow) is retried once on a new connection; a connection
    that cannot be made, a host key that is unknown or differs from the one
    in ``known_hosts``, or a failed key authentication is
    :class:`NodeUnreachable`. Up to ``max_sessions`` requests run at once,
    each on its own channel (keep it below sshd's MaxSessions, 10).

    With ``sessions`` (the default) a channel's agent stays and answers
    the next request too; idle channels are kept for
    :data:`SESSION_REUSE` seconds. A kept session found dead when used is
    replaced once (agent operations are idempotent). Without, every
    request runs its own agent process.

    ``host`` is looked up in ``known_hosts`` as written (``[host]:port``
    when the port is not 22), so give the same name or address there.
    """

    def __init__(self, node: str, host: str, *, user: str,
                 private_key: str, known_hosts: str, port: int = 22,
                 command: str | Sequence[str] = DEFAULT_SSH_COMMAND,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 timeout: float = DEFAULT_TIMEOUT,
                 keepalive: int = 30, max_sessions: int = 4,
                 sessions: bool = True) -> None:
        if host.startswith('[') and host.endswith(']'):
            host = host[1:-1]
        if not host or not user or not private_key or not known_hosts:
            raise ValueError(f'{node}: SSH needs a host, a user, a private '
                             'key and a known_hosts file')
        protocol.check_port('port', port)
        self.node = node
        self.host = host
        self.port = port
        self.user = user
        self.private_key = private_key
        self.known_hosts = known_hosts
        self.command = remote_command(command)
        self.connect_timeout = _check_timeout(connect_timeout,
                                              DEFAULT_CONNECT_TIMEOUT)
        self.timeout = _check_timeout(timeout, DEFAULT_TIMEOUT)
        self.keepalive = keepalive
        self._lock = threading.Lock()
        self._sessions = threading.BoundedSemaphore(max_sessions)
        self._client: paramiko.SSHClient | None = None
        self.sessions = sessions
        self._idle: list[_Session] = []
        self.traffic = Traffic()

    def __repr__(self) -> str:
        return (f'SSHTransport({self.node!r}, '
                f'{self.user}@{self._where()})')

    def _where(self) -> str:
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'{host}:{self.port}'

    # Connection management.

    def _connect(self) -> paramiko.SSHClient:
        where = self._where()
        try:
            pkey = paramiko.PKey.from_path(self.private_key)
        except OSError as e:
            raise NodeUnreachable(
                self.node, f'cannot read the SSH private key file '
                f'{self.private_key}: {e.strerror or e}') from None
        except paramiko.PasswordRequiredException:
            raise NodeUnreachable(
                self.node, f'the SSH private key {self.private_key} is '
                'encrypted; a key without passphrase is needed') from None
        except (paramiko.SSHException, ValueError) as e:
            # The exception text is not shown: it may quote the file.
            raise NodeUnreachable(
                self.node, f'cannot load the SSH private key '
                f'{self.private_key} ({type(e).__name__}); ed25519, ecdsa '
                'and rsa keys in OpenSSH or PEM format are supported'
            ) from None
        client = paramiko.SSHClient()
        try:
            try:
                client.load_host_keys(self.known_hosts)
            except OSError as e:
                raise NodeUnreachable(
                    self.node, f'cannot read the known_hosts file '
                    f'{self.known_hosts}: {e.strerror or e}') from None
            client.set_missing_host_key_policy(_RejectUnknownHostKey())
            LOG.debug('Connecting to %(node)s at %(user)s@%(where)s',
                      {'node': self.node, 'user': self.user,
                       'where': where})
            try:
                client.connect(
                    self.host, port=self.port, username=self.user,
                    pkey=pkey, timeout=self.connect_timeout,
                    banner_timeout=self.connect_timeout,
                    auth_timeout=self.connect_timeout,
                    channel_timeout=self.connect_timeout,
                    allow_agent=False, look_for_keys=False)
            except _UnknownHostKey as e:
                raise NodeUnreachable(
                    self.node, f'the host key of {where} '
                    f'({_fingerprint(e.key)}) is not in {self.known_hosts}:'
                    ' refusing to connect to an unknown host') from None
            except paramiko.BadHostKeyException as e:
                raise NodeUnreachable(
                    self.node, f'the host key of {where} '
                    f'({_fingerprint(e.key)}) does not match the one in '
                    f'{self.known_hosts} ({_fingerprint(e.expected_key)}): '
                    'refusing to connect (host key changed?)') from None
            except paramiko.AuthenticationException as e:
                raise NodeUnreachable(
                    self.node, f'SSH authentication as {self.user} at '
                    f'{where} failed: {e}') from None
            except (TimeoutError, OSError, EOFError,
                    paramiko.SSHException) as e:
                raise NodeUnreachable(
                    self.node, f'cannot connect to {where}: '
                    f'{_reason(e)}') from None
            transport = client.get_transport()
            if self.keepalive and transport is not None:
                transport.set_keepalive(self.keepalive)
            return client
        except BaseException:
            client.close()
            raise

    def _get_client(self, stale: paramiko.SSHClient | None = None
                    ) -> tuple[paramiko.SSHClient, bool]:
        """The kept client (connecting when needed) and whether it is new.

        ``stale`` is a client a caller found dead: it is replaced unless
        another thread already did so.
        """
        with self._lock:
            client = self._client
            if client is not None and (client is stale
                                       or not _active(client)):
                self._client = None
                client.close()
            if self._client is None:
                self._client = self._connect()
                return self._client, True
            return self._client, False

    def _discard(self, client: paramiko.SSHClient) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
        client.close()

    def _open_channel(self) -> paramiko.Channel:
        client, fresh = self._get_client()
        for attempt in (1, 2):
            try:
                return self._exec(client)
            except (OSError, EOFError, paramiko.SSHException) as e:
                if fresh or attempt == 2:
                    # Even a new connection fails: start over next time.
                    self._discard(client)
                    raise NodeUnreachable(
                        self.node, f'cannot run the agent at '
                        f'{self._where()}: {_reason(e)}'
                    ) from None
                LOG.debug('Connection to %(node)s is dead (%(error)s); '
                          'reconnecting', {'node': self.node, 'error': e})
            client, fresh = self._get_client(stale=client)
        raise AssertionError('unreachable')  # pragma: no cover

    def _exec(self, client: paramiko.SSHClient) -> paramiko.Channel:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise paramiko.SSHException('connection closed')
        chan = transport.open_session(timeout=self.connect_timeout)
        try:
            chan.exec_command(self.command)
        except BaseException:
            chan.close()
            raise
        return chan

    # Requests.

    def call(self, request: dict, timeout: float | None = None) -> dict:
        payload = _encode(self.node, request)
        timeout = _check_timeout(timeout, self.timeout)
        secrets = _secrets_of(request)
        _log_request(self.node, f'ssh {self._where()}', request)
        started = time.monotonic()
        deadline = started + timeout
        if not self._sessions.acquire(timeout=timeout):
            raise NodeTimeout(
                self.node, f'no free session within {timeout:g}s (too many '
                'requests to this node at once)')
        try:
            if self.sessions:
                returncode, stdout, stderr = self._ask(
                    payload, deadline, timeout)
            else:
                chan = self._open_channel()
                try:
                    returncode, stdout, stderr = self._exchange(
                        chan, payload, deadline, timeout)
                finally:
                    chan.close()
        finally:
            self._sessions.release()
        self.traffic.add(len(payload), len(stdout) + len(stderr))
        return parse_reply(self.node, returncode, stdout, stderr, secrets,
                           started)

    # Sessions.

    def _ask(self, payload: bytes, deadline: float, timeout: float
             ) -> tuple[int, bytes, bytes]:
        """(exit code, reply, stderr) of one request through a session."""
        for attempt in (1, 2):
            sess = self._take_idle() if attempt == 1 else None
            reused = sess is not None
            if sess is None:
                sess = self._start_session(deadline, timeout)
            # A kept session may have been kept too long by a node that
            # went away and came back (or its agent died idle): once more
            # on a new one (agent operations are idempotent).
            answer = self._in_session(sess, payload, deadline, timeout,
                                      'reply', may_retry=reused)
            if answer is None:
                continue
            self._keep(sess)
            return answer
        raise AssertionError('unreachable')  # pragma: no cover

    def _in_session(self, sess: _Session, line: bytes, deadline: float,
                    timeout: float, what: str, may_retry: bool = False
                    ) -> tuple[int, bytes, bytes] | None:
        """``sess.ask`` with its failures as NodeErrors.

        The session is closed on any failure; None when it ended before
        reading the line and ``may_retry``.
        """
        try:
            return sess.ask(line, deadline)
        except _SessionEnded as e:
            if may_retry and not e.answered:
                sess.close()
                LOG.debug('Kept agent session to %(node)s ended (%(why)s); '
                          'opening a new one', {'node': self.node, 'why': e})
                return None
            # Not started (not installed, sudo refused) or died: the exit
            # status and stderr tell why.
            error = self._session_error(sess, deadline)
            sess.close()
            raise error from None
        except TimeoutError:
            sess.close()
            raise NodeTimeout(
                self.node, f'the agent at {self._where()} did not {what} '
                f'within {timeout:g}s') from None
        except BaseException:
            sess.close()
            raise

    def _start_session(self, deadline: float, timeout: float) -> _Session:
        sess = _Session(self._open_channel())
        opening = session.opening().rstrip(b'\n')
        code, reply, stderr = self._in_session(
            sess, opening, deadline, timeout, 'open a session')
        self.traffic.add(len(opening), len(reply) + len(stderr))
        try:
            opened = json.loads(reply)['result']['session']
        except (ValueError, KeyError, TypeError):
            opened = None
        if code != 0 or opened != session.VERSION:
            sess.close()
            raise NodeError(self.node, protocol.E_INTERNAL,
                            f'the agent at {self._where()} did not open a '
                            f'session (it answered {reply[:200]!r})')
        return sess

    def _session_error(self, sess: _Session, deadline: float) -> NodeError:
        if b'\n' in sess.stdout or len(sess.stdout) > MAX_REPLY_BYTES:
            return NodeError(
                self.node, protocol.E_INTERNAL,
                f'the agent at {self._where()} answered out of the session '
                f'protocol: {_tail(bytes(sess.stdout[:2000]), ())}')
        chan = sess.chan
        chan.status_event.wait(max(min(deadline - time.monotonic(), 5), 0))
        while chan.recv_stderr_ready():
            sess.stderr += chan.recv_stderr(65536)
            del sess.stderr[:-65536]
        returncode = (chan.recv_exit_status() if chan.status_event.is_set()
                      else -1)
        if returncode == -1:
            tail = _tail(bytes(sess.stderr), ())
            return NodeUnreachable(
                self.node, f'connection to {self._where()} lost during the '
                'request' + (f': {tail}' if tail else ''))
        try:
            parse_reply(self.node, returncode, bytes(sess.stdout),
                        bytes(sess.stderr))
        except NodeError as e:
            return e
        return NodeError(self.node, protocol.E_INTERNAL,
                         f'the agent at {self._where()} ended the session '
                         f'(exit status {returncode}) without answering')

    def _take_idle(self) -> _Session | None:
        """The most recently used kept session still fit for a request."""
        stale = []
        found = None
        with self._lock:
            while self._idle:
                sess = self._idle.pop()
                if sess.usable() and self._client is not None \
                        and _active(self._client):
                    found = sess
                    break
                stale.append(sess)
        for sess in stale:
            sess.close()
        return found

    def _keep(self, sess: _Session) -> None:
        sess.idle_since = time.monotonic()
        with self._lock:
            if self._client is not None:
                self._idle.append(sess)
                return
        sess.close()  # closed meanwhile

    # One-shot requests.

    def _exchange(self, chan: paramiko.Channel, payload: bytes,
                  deadline: float, timeout: float
                  ) -> tuple[int, bytes, bytes]:
        def timed_out() -> NodeTimeout:
            return NodeTimeout(
                self.node, f'the agent at {self._where()} did not reply '
                f'within {timeout:g}s')

        try:
            chan.settimeout(max(deadline - time.monotonic(), 0.001))
            chan.sendall(payload)
            chan.shutdown_write()
        except TimeoutError:
            raise timed_out() from None
        except (OSError, EOFError, paramiko.SSHException) as e:
            # The command may have ended early (not found, refused): its
            # exit status and stderr say more than this error.
            LOG.debug('Sending to %(node)s failed: %(error)s',
                      {'node': self.node, 'error': e})
        stdout = bytearray()
        stderr = bytearray()
        while True:
            while chan.recv_stderr_ready():
                stderr += chan.recv_stderr(65536)
                del stderr[:-65536]
            while chan.recv_ready():
                stdout += chan.recv(65536)
                if len(stdout) > MAX_REPLY_BYTES:
                    raise NodeError(
                        self.node, protocol.E_INTERNAL,
                        f'reply larger than {MAX_REPLY_BYTES} bytes')
            if chan.recv_ready() or chan.recv_stderr_ready():
                continue
            if chan.eof_received or chan.closed:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timed_out()
            # The channel's fileno becomes readable on data for stdout or
            # stderr, on EOF and on close.
            select.select([chan], [], [], remaining)
        remaining = deadline - time.monotonic()
        if not chan.status_event.wait(max(remaining, 0)):
            raise timed_out()
        returncode = chan.recv_exit_status()
        if returncode == -1:
            # No exit status: the connection went away mid-request.
            raise NodeUnreachable(
                self.node, f'connection to {self._where()} lost during the '
                'request' + (f': {_tail(bytes(stderr), ())}'
                             if stderr else ''))
        return returncode, bytes(stdout), bytes(stderr)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            idle, self._idle = self._idle, []
        for sess in idle:
            sess.close()
        if client is not None:
            client.close()


class _SessionEnded(Exception):
    """The agent's channel ended before the answer was complete."""

    def __init__(self, answered: bool) -> None:
        super().__init__('the channel ended' + (
            ' in the middle of an answer' if answered else ''))
        self.answered = answered


class _Session:
    """One agent process on one channel, answering a line per request."""

    def __init__(self, chan: paramiko.Channel) -> None:
        self.chan = chan
        self.idle_since = time.monotonic()
        self.stdout = bytearray()
        self.stderr = bytearray()

    def usable(self) -> bool:
        chan = self.chan
        return (not chan.closed and not chan.eof_received
                and not chan.status_event.is_set()
                and not chan.recv_ready()
                and time.monotonic() - self.idle_since < SESSION_REUSE)

    def ask(self, line: bytes, deadline: float
            ) -> tuple[int, bytes, bytes]:
        """Send one request line; (exit code, reply, stderr) of its answer.

        Raises TimeoutError at ``deadline`` and :class:`_SessionEnded`
        when the channel ends first.
        """
        chan = self.chan
        del self.stdout[:], self.stderr[:]
        try:
            chan.settimeout(max(deadline - time.monotonic(), 0.001))
            chan.sendall(line + b'\n')
        except TimeoutError:
            raise
        except (OSError, EOFError, paramiko.SSHException):
            # Ended before reading it: the exit status says more.
            raise _SessionEnded(False) from None
        while True:
            while chan.recv_stderr_ready():
                self.stderr += chan.recv_stderr(65536)
                del self.stderr[:-65536]
            if chan.recv_ready():
                self.stdout += chan.recv(65536)
                end = self.stdout.find(b'\n')
                if end >= 0:
                    answer = session.unframe(bytes(self.stdout[:end]))
                    if answer is None:
                        raise _SessionEnded(True)
                    del self.stdout[:end + 1]
                    return answer[0], answer[1], bytes(self.stderr)
                if len(self.stdout) > MAX_REPLY_BYTES:
                    raise _SessionEnded(True)
                continue
            if chan.recv_stderr_ready():
                continue
            if chan.eof_received or chan.closed:
                raise _SessionEnded(bool(self.stdout))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError()
            select.select([chan], [], [], remaining)

    def close(self) -> None:
        # The agent reads end of input and exits.
        self.chan.close()


def _active(client: paramiko.SSHClient) -> bool:
    transport = client.get_transport()
    return transport is not None and transport.is_active()


def make_transport(node: model.Node, *,
                   ssh_user: str | None = None,
                   ssh_private_key: str | None = None,
                   ssh_known_hosts: str | None = None,
                   ssh_command: str | Sequence[str] = DEFAULT_SSH_COMMAND,
                   connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                   timeout: float = DEFAULT_TIMEOUT,
                   local_command: Sequence[str] = DEFAULT_LOCAL_COMMAND,
                   local_env: Mapping[str, str] | None = None
                   ) -> Transport:
    """The transport for ``node``: local when it has no ``ssh_host``."""
    if node.ssh_host is None:
        return LocalTransport(node.name, local_command, env=local_env,
                              timeout=timeout)
    return SSHTransport(
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

    def __init__(self, factory: Callable[[model.Node], Transport]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._transports: dict[str, tuple[model.Node, Transport]] = {}

    def get(self, node: model.Node) -> Transport:
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
        """Node -> what its transport carried so far (see :class:`Traffic`)."""
        with self._lock:
            transports = {name: t for name, (_, t)
                          in self._transports.items()}
        return {name: t.traffic.snapshot() for name, t in transports.items()
                if isinstance(getattr(t, 'traffic', None), Traffic)}

    def close(self) -> None:
        with self._lock:
            transports = [t for _, t in self._transports.values()]
            self._transports.clear()
        for transport in transports:
            transport.close()
