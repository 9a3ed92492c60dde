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
"""Opening an SSH connection to a node: key, known hosts, remote command."""

from __future__ import annotations

import re
import shlex
from typing import Sequence

from oslo_log import log as logging
import paramiko

from blackstor_cinder.cluster.transport import base

LOG = logging.getLogger(__name__)

# Words of the remote command: no quoting, globbing, redirection or
# variable syntax can hide in these.
_COMMAND_WORD_RE = re.compile(r'[A-Za-z0-9_./:=@%+,-]+')


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


def reason(e: BaseException) -> str:
    """Why a connection failed, without Python's ``[Errno N]`` prefix.

    paramiko's NoValidConnectionsError has no errno ("[Errno None] Unable
    to connect to port 22 on ..."): its text, and what each address
    answered ("Connection refused").
    """
    if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError):
        causes = sorted({reason(c) for c in e.errors.values()})
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


def address(host: str, port: int) -> str:
    """``host:port`` as SSH shows it (``[host]:port`` for IPv6)."""
    return f'[{host}]:{port}' if ':' in host else f'{host}:{port}'


def connect(node: str, host: str, port: int, *, user: str,
            private_key: str, known_hosts: str, timeout: float,
            keepalive: int) -> paramiko.SSHClient:
    """A connected client, or NodeUnreachable saying why not.

    Key authentication with ``private_key`` only (no agent, no other
    keys); the host key must be in ``known_hosts`` (unknown or changed
    keys are refused, never added). ``timeout`` bounds each step.
    """
    where = address(host, port)
    try:
        pkey = paramiko.PKey.from_path(private_key)
    except OSError as e:
        raise base.NodeUnreachable(
            node, f'cannot read the SSH private key file '
            f'{private_key}: {e.strerror or e}') from None
    except paramiko.PasswordRequiredException:
        raise base.NodeUnreachable(
            node, f'the SSH private key {private_key} is '
            'encrypted; a key without passphrase is needed') from None
    except (paramiko.SSHException, ValueError) as e:
        # The exception text is not shown: it may quote the file.
        raise base.NodeUnreachable(
            node, f'cannot load the SSH private key '
            f'{private_key} ({type(e).__name__}); ed25519, ecdsa '
            'and rsa keys in OpenSSH or PEM format are supported'
        ) from None
    client = paramiko.SSHClient()
    try:
        try:
            client.load_host_keys(known_hosts)
        except OSError as e:
            raise base.NodeUnreachable(
                node, f'cannot read the known_hosts file '
                f'{known_hosts}: {e.strerror or e}') from None
        client.set_missing_host_key_policy(_RejectUnknownHostKey())
        LOG.debug('Connecting to %(node)s at %(user)s@%(where)s',
                  {'node': node, 'user': user, 'where': where})
        try:
            client.connect(
                host, port=port, username=user, pkey=pkey, timeout=timeout,
                banner_timeout=timeout, auth_timeout=timeout,
                channel_timeout=timeout, allow_agent=False,
                look_for_keys=False)
        except _UnknownHostKey as e:
            raise base.NodeUnreachable(
                node, f'the host key of {where} '
                f'({_fingerprint(e.key)}) is not in {known_hosts}:'
                ' refusing to connect to an unknown host') from None
        except paramiko.BadHostKeyException as e:
            raise base.NodeUnreachable(
                node, f'the host key of {where} '
                f'({_fingerprint(e.key)}) does not match the one in '
                f'{known_hosts} ({_fingerprint(e.expected_key)}): '
                'refusing to connect (host key changed?)') from None
        except paramiko.AuthenticationException as e:
            raise base.NodeUnreachable(
                node, f'SSH authentication as {user} at '
                f'{where} failed: {e}') from None
        except (TimeoutError, OSError, EOFError,
                paramiko.SSHException) as e:
            raise base.NodeUnreachable(
                node, f'cannot connect to {where}: '
                f'{reason(e)}') from None
        transport = client.get_transport()
        if keepalive and transport is not None:
            transport.set_keepalive(keepalive)
        return client
    except BaseException:
        client.close()
        raise
