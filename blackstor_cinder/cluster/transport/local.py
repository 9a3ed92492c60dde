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
"""The local transport: the agent as a subprocess of this process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Mapping, Sequence

from oslo_log import log as logging

from blackstor_cinder.cluster.transport import base

LOG = logging.getLogger(__name__)

DEFAULT_LOCAL_COMMAND = ('blackstor-node',)
#: Seconds a local agent gets to exit after SIGTERM on a timeout.
KILL_GRACE = 5.0


def _is_timeout(exc: BaseException) -> bool:
    # Under eventlet's monkey patching (cinder-volume applies it) the green
    # Popen raises the TimeoutExpired of eventlet's private copy of the
    # subprocess module, a class distinct from subprocess.TimeoutExpired.
    kind = type(exc)
    return isinstance(exc, subprocess.TimeoutExpired) or (
        kind.__name__ == 'TimeoutExpired' and kind.__module__ == 'subprocess')


class LocalTransport:
    """Runs the agent as a subprocess of this process, one per request."""

    def __init__(self, node: str,
                 argv: Sequence[str] = DEFAULT_LOCAL_COMMAND,
                 env: Mapping[str, str] | None = None,
                 timeout: float = base.DEFAULT_TIMEOUT) -> None:
        if (isinstance(argv, str) or not argv
                or not all(isinstance(a, str) and a for a in argv)):
            raise ValueError(f'argv: {argv!r} is not a list of words')
        self.node = node
        self.argv = list(argv)
        self.env = dict(env) if env else None
        self.timeout = base.check_timeout(timeout, base.DEFAULT_TIMEOUT)
        self.traffic = base.Traffic()

    def __repr__(self) -> str:
        return f'LocalTransport({self.node!r}, {self.argv!r})'

    def call(self, request: dict, timeout: float | None = None) -> dict:
        payload = base.encode(self.node, request)
        timeout = base.check_timeout(timeout, self.timeout)
        secrets = base.secrets_of(request)
        base.log_request(self.node, 'local', request)
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
            raise base.NodeUnreachable(
                self.node, f'cannot run the agent {self.argv[0]}: '
                f'{e.strerror or e}') from None
        try:
            stdout, stderr = proc.communicate(payload, timeout=timeout)
        except BaseException as e:
            self._kill(proc)
            if _is_timeout(e):
                raise base.NodeTimeout(
                    self.node, f'the agent did not reply within '
                    f'{timeout:g}s (stopped)') from None
            raise
        self.traffic.add(len(payload), len(stdout) + len(stderr))
        return base.parse_reply(self.node, proc.returncode, stdout,
                                stderr, secrets, started)

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
