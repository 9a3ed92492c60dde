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
"""Suspend leases: I/O the agent suspended resumes by itself.

A ``suspend-io`` with a ``lease`` writes ``<dir>/<resource>.lease``
holding a random id and starts a detached process
(``python -m blackstor_cinder.node.lease``, its own session, no stdio)
that sleeps for the lease, takes the resource's agent lock and, if the
file still holds its id, resumes I/O the way ``resume-io`` does (same
configuration, node name and root helper), which removes the file.
``resume-io`` or a later ``suspend-io`` removes or replaces the file, so
a lease whose file changed does nothing. The token lives in a file, not
in the process, so a controller that died, or a reply that was lost,
never leaves a node's I/O suspended for longer than the lease.

``<dir>`` is the agent's lock directory, or :data:`DEFAULT_DIR`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import logging.handlers
import os
import pathlib
import secrets
import subprocess
import sys
import time
from typing import Callable, Sequence

from blackstor_cinder.node import config as node_config
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

DEFAULT_DIR = '/run/blackstor-node'
SUFFIX = '.lease'
#: How long an expired lease keeps asking for a busy resource lock.
LOCK_PATIENCE = 3600.0


def lease_dir(conf: node_config.NodeConfig) -> pathlib.Path:
    return pathlib.Path(conf.lock_dir or DEFAULT_DIR)


def lease_path(conf: node_config.NodeConfig,
               resource: str) -> pathlib.Path:
    protocol.check_name('resource', resource)
    return lease_dir(conf) / f'{resource}{SUFFIX}'


def new_id() -> str:
    return secrets.token_hex(16)


def write(path: pathlib.Path, lease_id: str, seconds: float) -> None:
    """Put a lease token in place atomically (a rename over the old one)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f'.{path.name}.{secrets.token_hex(8)}.tmp')
        with open(tmp, 'w') as f:
            json.dump({'id': lease_id, 'seconds': seconds,
                       'written': time.time()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)
        raise AgentError(protocol.E_FAILED, f'cannot write the suspend '
                         f'lease {path}: {e.strerror}') from None


def read_id(path: pathlib.Path) -> str | None:
    """The id in a lease file; None when there is none (or it is garbage)."""
    try:
        with open(path) as f:
            lease_id = json.load(f).get('id')
    except (OSError, ValueError, AttributeError):
        return None
    return lease_id if isinstance(lease_id, str) else None


def remove(path: pathlib.Path) -> bool:
    """Remove a lease file; False when there was none."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise AgentError(protocol.E_FAILED, f'cannot remove the suspend '
                         f'lease {path}: {e.strerror}') from None
    return True


def command(conf: node_config.NodeConfig, resource: str, lease_id: str,
            seconds: float) -> list[str]:
    """The argv of the lease process (no secrets: the config has none)."""
    return [sys.executable, '-m', 'blackstor_cinder.node.lease',
            '--resource', resource, '--id', lease_id,
            '--seconds', repr(float(seconds)),
            '--config', json.dumps(dataclasses.asdict(conf))]


def spawn(argv: Sequence[str], popen: Callable | None = None) -> None:
    """Start the lease process detached: it outlives the agent."""
    popen = popen or subprocess.Popen
    try:
        popen(list(argv), start_new_session=True, close_fds=True,
              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL, cwd='/')
    except OSError as e:
        raise AgentError(protocol.E_FAILED, 'cannot start the suspend lease '
                         f'process: {e.strerror}') from None


def run(conf: node_config.NodeConfig, resource: str, lease_id: str,
        seconds: float, sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        agent_factory: Callable | None = None) -> bool:
    """Sleep out the lease, then resume unless it was taken back.

    True when this lease resumed I/O. A busy resource lock is asked for
    again (an operation on the resource is running) until
    :data:`LOCK_PATIENCE` has passed.
    """
    if agent_factory is None:
        from blackstor_cinder.node import agent as agent_mod
        agent_factory = agent_mod.Agent
    sleep(seconds)
    deadline = clock() + LOCK_PATIENCE
    agent = agent_factory(conf)
    while True:
        try:
            return agent.expire_lease(resource, lease_id)
        except AgentError as e:
            if e.code != protocol.E_BUSY or clock() >= deadline:
                LOG.error('Suspend lease of %s could not resume I/O: %s',
                          resource, e.message)
                return False
            sleep(1.0)


def _log_to_syslog() -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if os.path.exists('/dev/log'):
        with contextlib.suppress(OSError):
            handler = logging.handlers.SysLogHandler('/dev/log')
            handler.setFormatter(logging.Formatter(
                'blackstor-node-lease[%(process)d]: %(message)s'))
            root.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m blackstor_cinder.node.lease',
        description='Resume I/O of a resource when its suspend lease '
                    'expires (started by blackstor-node suspend-io).')
    parser.add_argument('--resource', required=True)
    parser.add_argument('--id', required=True)
    parser.add_argument('--seconds', type=float, required=True)
    parser.add_argument('--config', required=True,
                        help='the agent\'s NodeConfig as JSON')
    args = parser.parse_args(argv)
    _log_to_syslog()
    conf = node_config.NodeConfig(**json.loads(args.config))
    resumed = run(conf, args.resource, args.id, args.seconds)
    if resumed:
        LOG.warning('Suspend lease of %s expired: I/O resumed',
                    args.resource)
    return 0


if __name__ == '__main__':
    sys.exit(main())
