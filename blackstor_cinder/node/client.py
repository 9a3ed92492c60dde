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
"""A DRBD volume attached on this host as a diskless client.

What the agent's ``attach`` and ``detach`` do, and what the os-brick
connector (:mod:`blackstor_cinder.connector`, a thin adapter) wraps. It
imports neither os-brick nor oslo.concurrency: the agent is a short-lived
CLI on every hypervisor, and importing os-brick costs seconds there.

- the .res goes to ``resource_dir`` (``/etc/drbd.d``), which
  ``/etc/drbd.conf`` includes, so the drbd boot service's
  ``drbdadm adjust all`` brings the client back after a reboot;
- :meth:`DisklessClient.connect` waits, bounded by ``attach_timeout``,
  until the device node exists, the node has quorum and UpToDate data
  (its own disk on a node that holds a replica, else a peer's), then
  up to :data:`PEER_GRACE` for the other peers to connect; on
  timeout it raises with the DRBD state it saw and undoes what it did
  (never a .res that was already in place, so never a replica);
- on a node that holds a replica it accepts only a .res that gives the
  node the same disk (it never turns a replica diskless);
- :meth:`DisklessClient.disconnect` refuses while the device is open or
  Primary (unless ``force``), never takes a replica down, and is
  idempotent;
- :meth:`DisklessClient.check_valid` reads ``drbdsetup status --json``,
  which asks the kernel over netlink and never opens the device, so it
  does not block on a dead network.

Errors are :class:`~blackstor_cinder.node.errors.AgentError` subclasses
carrying the protocol's error code. Commands go through ``execute`` (the
agent's executor or os-brick's, either failure class) with the root
helper.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import re
import time
from typing import Any, Callable, ContextManager

from blackstor_cinder.node import drbdstatus
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import executor
from blackstor_cinder.node import resfiles
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

#: Seconds connect waits, once the device is usable, for the peers not
#: yet connected (a peer that is down costs an attach this much).
PEER_GRACE = 5.0

#: ``drbdsetup`` exit code for "No such resource".
DRBDSETUP_NO_SUCH_RESOURCE = 10
#: Why :meth:`DisklessClient.status` found no state when the resource is
#: simply not up on this node.
NOT_UP = 'not up'

_DRBD_MINOR_RE = re.compile(r'^drbd(\d+)$')


class ClientError(AgentError):
    """A client attach or detach that failed; ``CODE`` says how."""

    CODE = protocol.E_FAILED

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(self.CODE, message, field)


class AttachTimeout(ClientError):
    """The client did not get a usable device within the attach timeout."""

    CODE = protocol.E_TIMEOUT


class DeviceInUse(ClientError):
    """Detach refused: the device is open or Primary on this host."""

    CODE = protocol.E_BUSY


class ReplicaHere(ClientError):
    """Detach refused: this host holds a replica, not a client."""

    CODE = protocol.E_CONFLICT


class InvalidProperty(ClientError):
    """A connection property (name, config, secret, device) is not valid."""

    CODE = protocol.E_INVALID


def _no_lock(name: str) -> ContextManager:
    return contextlib.nullcontext()


class DisklessClient:
    """Attach and detach DRBD 9 volumes as diskless clients of replicas.

    ``lock(name)`` serialises the calls for one resource within this
    process (the connector passes oslo's in-process lock; the agent holds
    its own per-resource file lock around every request).
    """

    def __init__(self, execute: Callable[..., tuple[str, str]],
                 root_helper: str | None, *,
                 resource_dir: str = '/etc/drbd.d',
                 drbd_config: str = '/etc/drbd.conf',
                 node_name: str | None = None, device_root: str = '/dev',
                 attach_timeout: float = 60.0, poll_interval: float = 0.5,
                 lock: Callable[[str], ContextManager] = _no_lock) -> None:
        if attach_timeout <= 0 or poll_interval <= 0:
            raise ValueError('attach_timeout and poll_interval must be '
                             'positive')
        self.execute = execute
        self.root_helper = root_helper or None
        self.node_name = node_name or os.uname().nodename
        self.device_root = pathlib.Path(device_root)
        self.attach_timeout = float(attach_timeout)
        self.poll_interval = float(poll_interval)
        self._lock = lock
        self.store = resfiles.ResFileStore(
            resource_dir, drbd_config, self.node_name, execute=execute,
            root_helper=self.root_helper)

    # -- paths ------------------------------------------------------------

    @property
    def search_path(self) -> pathlib.Path:
        return self.device_root / 'drbd' / 'by-res'

    def device_path(self, resource: str,
                    device: Any = None) -> pathlib.Path:
        """``device`` if given (it must lie below ``device_root``)."""
        if not device:
            return self.search_path / resource / str(protocol.VOLUME_NUMBER)
        path = pathlib.Path(device) if isinstance(device, str) else None
        if (path is None or not path.is_absolute() or '..' in path.parts
                or self.device_root not in path.parents):
            raise InvalidProperty(
                f'connection property device: {device!r} is not a path '
                f'below {self.device_root}', 'device')
        return path

    def all_volume_paths(self) -> list[str]:
        """Every DRBD volume-0 device link under the search path."""
        if not self.search_path.is_dir():
            return []
        paths = (entry / str(protocol.VOLUME_NUMBER)
                 for entry in sorted(self.search_path.iterdir()))
        return [str(path) for path in paths if os.path.exists(path)]

    # -- connect ----------------------------------------------------------

    def connect(self, resource: str, config: Any, secret: Any,
                device: Any = None) -> str:
        """Write the .res, bring the client up, wait until it is usable.

        :returns: the device path
        :raises AttachTimeout: the device did not become usable within
            ``attach_timeout``; the state seen is in the message and what
            this call set up is taken down again.
        """
        resource = check_resource(resource)
        path = self.device_path(resource, device)
        with self._lock(f'blackstor-drbd-{resource}'):
            existed = self.store.exists(resource)
            changed = self._write_res(resource, config, secret)
            try:
                self.store.drbdadm('adjust', resource)
                self._wait_usable(resource, path)
            except Exception as exc:
                self._undo_connect(resource, not existed, changed)
                if isinstance(exc, AgentError) and not isinstance(
                        exc, ClientError):
                    raise ClientError(f'drbdadm adjust {resource} failed: '
                                      f'{exc}') from exc
                raise
        LOG.info('DRBD resource %s attached at %s', resource, path)
        return str(path)

    def _write_res(self, resource: str, config: Any, secret: Any) -> bool:
        if not isinstance(config, str) or not config.strip():
            raise InvalidProperty('connection property "config" (the .res '
                                  'text) is missing', 'config')
        try:
            protocol.check_secret('provider_auth', secret)
        except protocol.ProtocolError:
            # Never echo the value: it is (meant to be) a secret.
            raise InvalidProperty('connection property "provider_auth" is '
                                  'not a valid DRBD shared secret',
                                  'provider_auth') from None
        try:
            return self.store.write(resource, config, secret,
                                    expect_disk=self.own_disk(resource),
                                    field='config')
        except AgentError as exc:
            raise ClientError(f'the .res of {resource} was refused: '
                              f'{exc}') from exc

    def own_disk(self, resource: str) -> str | None:
        """This node's backing disk in the .res in place (None: diskless).

        On a node that holds a replica (hyperconverged) the .res in place
        gives it a disk: a new text must give it the same one, or the
        ``adjust`` that follows would detach the replica's disk.
        """
        definition = self.store.read_definition(resource)
        if definition is None:
            return None
        mine = [h for h in definition.get('hosts') or []
                if h.get('name') == self.node_name]
        return mine[0].get('disk') if mine else None

    def _wait_usable(self, resource: str, path: pathlib.Path) -> None:
        deadline = time.monotonic() + self.attach_timeout
        grace_end = None
        while True:
            exists = os.path.exists(path)
            state, error = self.status(resource)
            if exists and state is not None and state.has_quorum \
                    and state.has_usable_disk:
                # The first write auto-promotes: a cluster-wide state
                # change that fails while a peer is still connecting.
                if state.peers_connected:
                    return
                now = time.monotonic()
                if grace_end is None:
                    grace_end = min(now + PEER_GRACE, deadline)
                if now >= grace_end:
                    LOG.info('DRBD resource %(res)s is usable on %(node)s '
                             'with peers not connected yet: %(state)s',
                             {'res': resource, 'node': self.node_name,
                              'state': state.describe()})
                    return
                time.sleep(min(self.poll_interval, grace_end - now))
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AttachTimeout(self._timeout_message(
                    resource, path, exists, state, error))
            time.sleep(min(self.poll_interval, remaining))

    def _timeout_message(self, resource: str, path: pathlib.Path,
                         exists: bool,
                         state: drbdstatus.ResourceState | None,
                         error: str | None) -> str:
        if state is not None:
            seen = state.describe()
        elif error == NOT_UP:
            seen = 'resource not up'
        else:
            seen = f'no DRBD status: {error}'
        return (f'DRBD resource {resource} on {self.node_name} did not '
                f'become usable within {self.attach_timeout:g}s (device '
                f'{path} {"exists" if exists else "missing"}; {seen}); '
                'need the device, quorum and UpToDate data (this '
                'node\'s disk or a peer\'s)')

    def _undo_connect(self, resource: str, created: bool,
                      changed: bool) -> None:
        """Take down what a failed connect set up; never raise."""
        if not created:
            # An attach was already in place (same or older .res): tearing
            # it down could pull the disk from under a running guest.
            LOG.warning('Attach of %s failed; its .res existed before '
                        '(%s), leaving it in place', resource,
                        'rewritten' if changed else 'unchanged')
            return
        try:
            self.store.drbdadm('down', resource, check_exit_code=False)
        except Exception:
            LOG.exception('Undo: drbdadm down %s failed', resource)
        try:
            self.store.remove(resource)
        except Exception:
            LOG.exception('Undo: removing the .res of %s failed', resource)

    # -- disconnect -------------------------------------------------------

    def disconnect(self, resource: str, force: bool = False,
                   ignore_errors: bool = False) -> None:
        """Take the client down and remove its .res.

        Refuses with :class:`DeviceInUse` while the device is open or
        Primary here, unless ``force``. A resource that is not up and has
        no .res is already disconnected (no-op). With ``force`` every step
        is tried and the failures are raised together at the end unless
        ``ignore_errors``.
        """
        resource = check_resource(resource)
        failures: list[str] = []

        def attempt(what: str, step: Callable[[], Any]) -> None:
            try:
                step()
            except Exception as exc:
                if not force:
                    raise
                LOG.warning('%s failed: %s', what, exc)
                failures.append(f'{what}: {exc}')

        with self._lock(f'blackstor-drbd-{resource}'):
            self._refuse_replica(resource, force)
            state, error = self.status(resource)
            if state is not None and state.in_use and not force:
                raise DeviceInUse(
                    f'DRBD resource {resource} is in use on '
                    f'{self.node_name} ({state.describe()}); refusing to '
                    'disconnect it (use force to override)')
            # Unknown state (status unreadable): try the down anyway; DRBD
            # itself refuses to take down a device that is held open.
            if state is not None or error != NOT_UP:
                attempt(f'drbdadm down {resource}',
                        lambda: self._down(resource))
            attempt(f'removing the .res of {resource}',
                    lambda: self.store.remove(resource))
        if failures:
            if not ignore_errors:
                raise ClientError(f'disconnect of {resource} on '
                                  f'{self.node_name} incomplete: '
                                  + '; '.join(failures))
            LOG.warning('Ignoring errors disconnecting %s: %s', resource,
                        '; '.join(failures))

    def _refuse_replica(self, resource: str, force: bool) -> None:
        """Never take down a replica: only diskless clients disconnect.

        Even with ``force`` (which overrides "in use", not this): a
        replica goes away when its volume is deleted, by the agent's
        ``delete``, which also removes the LV.
        """
        try:
            disk = self.own_disk(resource)
        except AgentError as exc:
            if not force:
                raise ClientError(
                    f'cannot tell whether {self.node_name} holds a replica '
                    f'of {resource} ({exc}); refusing to disconnect it (use '
                    'force to override)') from exc
            LOG.warning('Disconnecting %s without knowing whether this node '
                        'holds a replica: %s', resource, exc)
            return
        if disk is not None:
            raise ReplicaHere(
                f'{self.node_name} holds a replica of {resource} (disk '
                f'{disk}), not a diskless client: disconnect refused; a '
                'replica is removed only by deleting the volume')

    def _down(self, resource: str) -> None:
        if self.store.exists(resource):
            try:
                self.store.drbdadm('down', resource)
                return
            except AgentError as exc:
                failure = str(exc)
        else:
            # Up in the kernel but no .res: drbdadm does not know it.
            result = self._run('drbdsetup', 'down', resource)
            if result.rc == 0:
                return
            failure = (f'drbdsetup down {resource} exited with '
                       f'{result.rc}: {result.stderr.strip()}')
        # "Not running" is fine: look again before calling it a failure.
        if self.status(resource)[1] != NOT_UP:
            raise ClientError(f'could not take DRBD resource {resource} '
                              f'down: {failure}')

    # -- state ------------------------------------------------------------

    def check_valid(self, path: str) -> bool:
        """Whether the DRBD device at ``path`` can serve I/O.

        True iff its resource is up, has quorum and a usable disk (the
        local one or a peer's UpToDate), from ``drbdsetup status --json``
        only: the device itself is never opened.
        """
        result = self._run('drbdsetup', 'status', '--json')
        try:
            if result.rc != 0:
                raise ValueError(f'drbdsetup status exited with '
                                 f'{result.rc}: {result.stderr.strip()}')
            states = drbdstatus.parse_status(result.stdout)
        except ValueError as exc:
            LOG.warning('check_valid_device %s: no DRBD status: %s', path,
                        exc)
            return False
        state = self._state_for_path(pathlib.Path(path), states)
        if state is None:
            LOG.debug('check_valid_device %s: no DRBD resource', path)
            return False
        valid = state.has_quorum and state.has_usable_disk
        LOG.debug('check_valid_device %s (%s): %s; %s', path, state.name,
                  valid, state.describe())
        return valid

    def _state_for_path(self, path: pathlib.Path,
                        states: dict[str, drbdstatus.ResourceState]
                        ) -> drbdstatus.ResourceState | None:
        if path.parent.parent == self.search_path:
            return states.get(path.parent.name)
        # /dev/drbdN, or a link to it: find the resource by minor.
        match = _DRBD_MINOR_RE.match(os.path.basename(os.path.realpath(path)))
        if match:
            minor = int(match.group(1))
            for state in states.values():
                if state.minor == minor:
                    return state
        return None

    def status(self, resource: str
               ) -> tuple[drbdstatus.ResourceState | None, str | None]:
        """(state, None), or (None, why) when the resource is not up."""
        result = self._run('drbdsetup', 'status', '--json', resource)
        if result.rc == DRBDSETUP_NO_SUCH_RESOURCE:
            return None, NOT_UP
        if result.rc != 0:
            return None, (f'drbdsetup status failed (exit code '
                          f'{result.rc}): {result.stderr.strip()}')
        try:
            state = drbdstatus.parse_status(result.stdout).get(resource)
        except ValueError as exc:
            LOG.warning('Unreadable DRBD status of %s: %s', resource, exc)
            return None, str(exc)
        return state, None if state else NOT_UP

    def _run(self, *argv: str) -> executor.Result:
        return executor.run(self.execute, argv, root_helper=self.root_helper,
                            check=False)


def check_resource(name: Any) -> str:
    """The resource name, or InvalidProperty."""
    try:
        return protocol.check_name('name', name)
    except protocol.ProtocolError as exc:
        raise InvalidProperty(f'connection property {exc}',
                              'name') from None
