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
"""Run commands: argv lists, environment, root helper, timeouts.

Everything the agent (and the os-brick connector, which shares
:mod:`resfiles`) runs goes through :func:`run`. It takes an ``execute``
callable with the signature of :func:`oslo_concurrency.processutils.execute`
so that tests inject a fake at the argv boundary and the connector can pass
its own (os-brick's) executor. :func:`run` never hands a command to a
shell, and it turns the ways a command can fail into :class:`AgentError`:

- the program is not installed -> ``missing-dependency`` naming it;
- it ran longer than the timeout -> ``timeout``;
- it exited non-zero -> :class:`CommandError` (``command-failed``) unless
  the caller asked for the exit code instead (``check=False``).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shlex
import subprocess
import sys
from typing import Callable, Mapping, Sequence

from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node.errors import CommandError
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

#: Exit code of env(1) and of shells when the program does not exist.
_RC_NOT_FOUND = 127

#: Which package provides a command, for "missing-dependency" messages.
PACKAGES = {
    'drbdadm': 'drbd-utils', 'drbdsetup': 'drbd-utils',
    'drbdmeta': 'drbd-utils',
    'lvs': 'lvm2', 'vgs': 'lvm2', 'lvcreate': 'lvm2', 'lvremove': 'lvm2',
    'lvextend': 'lvm2', 'lvrename': 'lvm2', 'lvchange': 'lvm2',
    'lvmconfig': 'lvm2',
}

Execute = Callable[..., tuple]


class ProcessFailed(Exception):
    """A command exited non-zero.

    Same attributes as oslo.concurrency's ProcessExecutionError, which
    :func:`run` accepts from injected ``execute`` callables too.
    """

    def __init__(self, cmd: Sequence[str], exit_code: int, stdout: str,
                 stderr: str) -> None:
        super().__init__(f'{" ".join(cmd)} exited with {exit_code}')
        self.cmd = ' '.join(cmd)
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


def default_execute(*cmd: str, root_helper: str | None = None,
                    run_as_root: bool = False,
                    env_variables: Mapping[str, str] | None = None,
                    timeout: float | None = None) -> tuple[str, str]:
    """Run a command the way processutils.execute does, without it.

    The agent is a short-lived CLI: importing oslo.concurrency costs more
    than most requests take (older releases, e.g. Debian 12's, import
    eventlet with it). On a timeout the child is killed.
    """
    argv = list(cmd)
    if run_as_root and root_helper:
        argv = shlex.split(root_helper) + argv
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                          capture_output=True, env=env_variables,
                          timeout=timeout, close_fds=True)
    stdout, stderr = os.fsdecode(proc.stdout), os.fsdecode(proc.stderr)
    if proc.returncode != 0:
        raise ProcessFailed(argv, proc.returncode, stdout, stderr)
    return stdout, stderr


def _failure_types() -> tuple[type[BaseException], ...]:
    # An injected execute may raise processutils' error: only possible
    # when that module is loaded, so it is never imported here.
    processutils = sys.modules.get('oslo_concurrency.processutils')
    if processutils is None:
        return (ProcessFailed,)
    return (ProcessFailed, processutils.ProcessExecutionError)


@dataclasses.dataclass
class Result:
    """What a finished command left behind."""
    argv: list[str]
    rc: int
    stdout: str
    stderr: str


def run(execute: Execute, argv: Sequence[str], *,
        env: Mapping[str, str] | None = None,
        root_helper: str | None = None,
        check: bool = True,
        timeout: float | None = None) -> Result:
    """Run ``argv`` (a list, never a shell string) and return its Result.

    ``env`` adds variables to the agent's environment. With a root helper
    (sudo, rootwrap) they are passed as ``env NAME=VALUE ...`` in front of
    the command, because sudo resets the environment (rootwrap's EnvFilter
    expects exactly this form).
    """
    argv = [str(a) for a in argv]
    kwargs: dict = {}
    cmd = list(argv)
    if root_helper:
        if env:
            cmd = ['env'] + [f'{k}={v}' for k, v in sorted(env.items())] + cmd
        kwargs['root_helper'] = root_helper
        kwargs['run_as_root'] = True
    elif env:
        # processutils replaces the whole environment with env_variables.
        kwargs['env_variables'] = {**os.environ, **env}
    if timeout:
        kwargs['timeout'] = timeout
    LOG.debug('Running %s', argv)
    try:
        stdout, stderr = execute(*cmd, **kwargs)
        rc = 0
    except _failure_types() as e:
        rc = e.exit_code if e.exit_code is not None else -1
        stdout, stderr = e.stdout or '', e.stderr or ''
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise _missing(argv[0], root_helper) from None
        raise AgentError(protocol.E_FAILED,
                         f'cannot run {" ".join(argv)}: {e}') from None
    except Exception as e:
        if not _is_timeout(e):
            raise
        raise AgentError(protocol.E_TIMEOUT,
                         f'{" ".join(argv)} did not finish within '
                         f'{timeout} s', command=argv[0]) from None
    stdout = _text(stdout)
    stderr = _text(stderr)
    if rc == _RC_NOT_FOUND and (root_helper or 'No such file' in stderr):
        raise _missing(argv[0], root_helper)
    result = Result(argv, rc, stdout, stderr)
    LOG.debug('%s exited with %s', argv[0], rc)
    if check and rc != 0:
        raise CommandError(argv, rc, stdout, stderr)
    return result


def _is_timeout(exc: BaseException) -> bool:
    # With eventlet's monkey patching (cinder-volume), the TimeoutExpired
    # raised may come from the green or the original subprocess module.
    return isinstance(exc, subprocess.TimeoutExpired) or any(
        cls.__name__ == 'TimeoutExpired' for cls in type(exc).__mro__)


def _text(value) -> str:
    if isinstance(value, bytes):
        return os.fsdecode(value)
    return value or ''


def _missing(program: str, root_helper: str | None) -> AgentError:
    package = PACKAGES.get(program)
    hint = f' (package {package})' if package else ''
    where = f' for the root helper {root_helper!r}' if root_helper else ''
    return AgentError(protocol.E_MISSING,
                      f'command {program!r}{hint} is not installed or not '
                      f'on PATH{where}', command=program)


class Executor:
    """An ``execute`` callable bound to a root helper and a timeout."""

    def __init__(self, execute: Execute | None = None,
                 root_helper: str | None = None,
                 timeout: float | None = None) -> None:
        self.execute = execute or default_execute
        self.root_helper = root_helper or None
        self.timeout = timeout

    def __call__(self, argv: Sequence[str], *,
                 env: Mapping[str, str] | None = None, check: bool = True,
                 timeout: float | None = None) -> Result:
        return run(self.execute, argv, env=env, root_helper=self.root_helper,
                   check=check, timeout=timeout or self.timeout)

    def __repr__(self) -> str:
        return f'Executor(root_helper={self.root_helper!r})'
