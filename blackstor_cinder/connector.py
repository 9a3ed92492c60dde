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
"""os-brick connector for DRBD 9 volumes, attached as diskless clients.

It takes the connection properties of the DRBD connector os-brick removed
in 4.0.0:

``name``
    the DRBD resource name.
``config``
    the resource's .res text, as :mod:`blackstor_cinder.node.resrender`
    writes it (``blackstor-node``'s ``attach`` renders it from the request's
    ``spec``): one resource, one volume with internal metadata, no
    ``include``, ``handlers``, ``startup`` or ``proxy``; anything else is
    refused. It carries :data:`protocol.SECRET_PLACEHOLDER` where the
    shared secret goes.
``provider_auth``
    the shared secret. It is put into the .res file on disk (mode 0600) and
    nowhere else: not into a log line, not into the returned device info.
``device`` (optional)
    the device path; it must lie below ``device_root``. Without it the
    connector uses ``<device_root>/drbd/by-res/<name>/0`` (the udev link
    drbd-utils installs).

What it does beyond the removed upstream connector:

- the .res goes to ``resource_dir`` (``/etc/drbd.d``), which
  ``/etc/drbd.conf`` includes, so the drbd boot service's
  ``drbdadm adjust all`` brings the client back after a hypervisor reboot;
- ``connect_volume`` waits, bounded by ``attach_timeout``, until the device
  node exists, the node has quorum and UpToDate data (its own disk on a
  node that holds a replica, else a peer's); on timeout it raises with the
  DRBD state it saw and undoes what it did (never a .res that was already
  in place, so never a replica);
- on a node that holds a replica, ``connect_volume`` accepts only a .res
  that gives the node the same disk (it never turns a replica diskless);
- ``disconnect_volume`` refuses while the device is open or Primary (unless
  ``force``), and is idempotent;
- ``check_valid_device`` reads ``drbdsetup status --json``, which asks the
  kernel over netlink and never opens the device, so it does not block on
  a dead network;
- ``extend_volume`` is not offered (it raises NotImplementedError, as
  os-brick connectors that cannot extend do): nothing calls it. Volumes
  are attached with ``driver_volume_type: 'local'``, so Nova uses its
  ``LibvirtVolumeDriver`` and os-brick's ``LocalConnector``, never this
  connector, and cannot grow an attached volume in the guest; the driver
  reports ``online_extend_support`` False and Cinder refuses the extend of
  an attached volume.

File handling and drbdadm calls are shared with the node agent through
:class:`blackstor_cinder.node.resfiles.ResFileStore`. The connector runs
as root (it is used by ``blackstor-node``, which runs under sudo): the
.res is written directly, commands go through ``execute`` with the root
helper.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import time
from typing import Any, Callable

from oslo_concurrency import lockutils
from oslo_concurrency import processutils as putils
from oslo_log import log as logging
from oslo_utils import strutils
from os_brick import exception
from os_brick.initiator.connectors import base
from os_brick import utils

from blackstor_cinder.node import errors as node_errors
from blackstor_cinder.node import executor as node_executor
from blackstor_cinder.node import resfiles
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

#: ``drbdsetup`` exit code for "No such resource".
DRBDSETUP_NO_SUCH_RESOURCE = 10

UP_TO_DATE = 'UpToDate'
#: Why :meth:`DRBDConnector._status` found no state when the resource is
#: simply not up on this node.
NOT_UP = 'not up'
PRIMARY = 'Primary'

_PROC_DRBD_VERSION_RE = re.compile(r'^version:\s*(\S+)', re.MULTILINE)
_DRBD_MINOR_RE = re.compile(r'^drbd(\d+)$')


class DRBDConnectorError(exception.BrickException):
    """Base of the errors this connector raises."""

    message = 'DRBD connector error'


class DRBDAttachTimeout(DRBDConnectorError):
    """The client did not get a usable device within the attach timeout."""


class DRBDDeviceInUse(DRBDConnectorError):
    """Disconnect refused: the device is open or Primary on this host."""


class DRBDReplicaHere(DRBDConnectorError):
    """Disconnect refused: this host holds a replica, not a client."""


# --------------------------------------------------------------------------
# drbdsetup status --json, parsed defensively
# --------------------------------------------------------------------------

def _first(mapping: dict, *keys: str) -> Any:
    """The value of the first of ``keys`` present in ``mapping``."""
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None


def _as_bool(value: Any) -> bool | None:
    """JSON true/false, or the "yes"/"no" words of the text status."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ('yes', 'true'):
            return True
        if word in ('no', 'false'):
            return False
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _pick_volume(items: Any, volume: int) -> dict | None:
    """The entry of ``items`` for ``volume`` (or the only entry)."""
    entries = [item for item in items or () if isinstance(item, dict)]
    for item in entries:
        if _as_int(item.get('volume')) == volume:
            return item
    unnumbered = [item for item in entries if 'volume' not in item]
    return unnumbered[0] if unnumbered else None


@dataclasses.dataclass
class PeerState:
    """One connection of the resource, as the local node sees it."""

    name: str | None
    node_id: int | None
    connection: str | None
    role: str | None
    disk: str | None
    replication: str | None

    @classmethod
    def from_json(cls, conn: dict, volume: int) -> PeerState:
        peer_devices = _first(conn, 'peer_devices', 'peer-devices')
        peer_dev = _pick_volume(
            peer_devices if isinstance(peer_devices, list) else [], volume)
        peer_dev = peer_dev or {}
        return cls(
            name=_as_str(_first(conn, 'name', 'conn-name')),
            node_id=_as_int(_first(conn, 'peer-node-id', 'peer_node_id')),
            connection=_as_str(_first(conn, 'connection-state',
                                      'connection', 'cstate')),
            role=_as_str(_first(conn, 'peer-role', 'role')),
            disk=_as_str(_first(peer_dev, 'peer-disk-state', 'peer-disk',
                                'pdsk')),
            replication=_as_str(_first(peer_dev, 'replication-state',
                                       'replication', 'repl')))

    def describe(self) -> str:
        who = self.name or '?'
        if self.node_id is not None:
            who = f'{who} (node-id {self.node_id})'
        return (f'{who}: connection {self.connection or "unknown"}, '
                f'disk {self.disk or "unknown"}, '
                f'replication {self.replication or "unknown"}')


@dataclasses.dataclass
class ResourceState:
    """The parts of one resource's ``drbdsetup status --json`` we use.

    DRBD versions differ in what they report: every field may be None
    (not reported). ``quorum`` None means the kernel does not report quorum
    (DRBD before 9.0.7); ``open`` None means it does not report whether the
    device is open (drbd-utils before 9.1 style status).
    """

    name: str
    role: str | None
    suspended: bool | None
    minor: int | None
    disk: str | None
    client: bool | None
    quorum: bool | None
    open: bool | None
    peers: list[PeerState]

    @classmethod
    def from_json(cls, res: dict, volume: int = protocol.VOLUME_NUMBER
                  ) -> ResourceState:
        devices = res.get('devices')
        device = _pick_volume(devices if isinstance(devices, list) else [],
                              volume) or {}
        connections = res.get('connections')
        peers = [PeerState.from_json(conn, volume)
                 for conn in (connections
                              if isinstance(connections, list) else [])
                 if isinstance(conn, dict)]
        return cls(
            name=str(res.get('name')),
            role=_as_str(res.get('role')),
            suspended=_as_bool(res.get('suspended')),
            minor=_as_int(device.get('minor')),
            disk=_as_str(_first(device, 'disk-state', 'disk')),
            client=_as_bool(device.get('client')),
            quorum=_as_bool(device.get('quorum')),
            open=_as_bool(_first(device, 'open', 'opened')),
            peers=peers)

    @property
    def up_to_date_peers(self) -> list[PeerState]:
        return [peer for peer in self.peers if peer.disk == UP_TO_DATE]

    @property
    def has_quorum(self) -> bool:
        """Quorum held, or not reported by this DRBD version."""
        return self.quorum is not False

    @property
    def has_usable_disk(self) -> bool:
        return self.disk == UP_TO_DATE or bool(self.up_to_date_peers)

    @property
    def in_use(self) -> bool:
        """The device is open here, or this node is Primary.

        With auto-promote, opening the device for writing makes the node
        Primary, so Primary catches openers on versions that do not report
        ``open``.
        """
        return bool(self.open) or self.role == PRIMARY

    def describe(self) -> str:
        quorum = {True: 'yes', False: 'no', None: 'not reported'}
        parts = [f'role {self.role or "unknown"}',
                 f'disk {self.disk or "unknown"}',
                 f'quorum {quorum[self.quorum]}']
        if self.open is not None:
            parts.append(f'open {"yes" if self.open else "no"}')
        if self.suspended:
            parts.append('I/O suspended')
        peers = '; '.join(peer.describe() for peer in self.peers)
        parts.append(f'peers: {peers or "none"}')
        return ', '.join(parts)


def parse_status(text: str) -> dict[str, ResourceState]:
    """Parse ``drbdsetup status --json``; ValueError if it is not that."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f'drbdsetup status output is not JSON: {exc}')
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError('drbdsetup status output is not a list of '
                         'resources')
    states = {}
    for res in data:
        if isinstance(res, dict) and isinstance(res.get('name'), str):
            states[res['name']] = ResourceState.from_json(res)
    return states


# --------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------

class DRBDConnector(base.BaseLinuxConnector):
    """Attach DRBD 9 volumes as diskless clients of their storage nodes."""

    def __init__(self, root_helper: str, driver=None,
                 execute: Callable[..., tuple[str, str]] | None = None,
                 *args, resource_dir: str = '/etc/drbd.d',
                 drbd_config: str = '/etc/drbd.conf',
                 node_name: str | None = None, device_root: str = '/dev',
                 attach_timeout: float = 60.0, poll_interval: float = 0.5,
                 **kwargs) -> None:
        super().__init__(root_helper, driver=driver, execute=execute,
                         *args, **kwargs)
        if attach_timeout <= 0 or poll_interval <= 0:
            raise ValueError('attach_timeout and poll_interval must be '
                             'positive')
        self.node_name = node_name or os.uname().nodename
        self.device_root = pathlib.Path(device_root)
        self.attach_timeout = float(attach_timeout)
        self.poll_interval = float(poll_interval)
        self._store = resfiles.ResFileStore(
            resource_dir, drbd_config, self.node_name,
            execute=self._execute, root_helper=self._root_helper)

    def set_execute(self, execute: Callable[..., tuple[str, str]]) -> None:
        """Take ``execute``, its failures as ProcessExecutionError.

        The one place where a command failure changes class: the agent's
        executor (:mod:`blackstor_cinder.node.executor`) raises its own
        ``ProcessFailed``, which never imports oslo.concurrency; every
        check below expects os-brick's ``ProcessExecutionError``.
        """
        super().set_execute(_brick_execute(execute))

    # -- connector properties ---------------------------------------------

    @staticmethod
    def get_connector_properties(root_helper: str, *args, **kwargs) -> dict:
        """What the controller needs to know about this host.

        ``drbd_node_name`` is the host name DRBD matches ``on`` sections
        against (``node_name`` if given, else ``uname -n``);
        ``drbd_address`` is the replication address when the caller passes
        one as ``drbd_address``; versions are None when unknown.
        """
        execute = kwargs.get('execute') or putils.execute
        utils_version, kernel_version = _drbdadm_versions(execute)
        address = kwargs.get('drbd_address')
        if address is not None:
            protocol.check_address('drbd_address', address)
        return {
            'drbd_node_name': kwargs.get('node_name') or os.uname().nodename,
            'drbd_utils_version': utils_version,
            'drbd_kernel_version': _proc_drbd_version() or kernel_version,
            'drbd_address': address,
        }

    # -- paths ------------------------------------------------------------

    def get_search_path(self) -> str:
        return str(self.device_root / 'drbd' / 'by-res')

    def get_volume_paths(self, connection_properties: dict) -> list[str]:
        """The device path of the volume, if it exists on this host."""
        resource = self._resource(connection_properties)
        path = self._device_path(resource, connection_properties)
        return [str(path)] if os.path.exists(path) else []

    def get_all_available_volumes(
            self, connection_properties: dict | None = None) -> list[str]:
        """Every DRBD volume-0 device link under the search path."""
        search = pathlib.Path(self.get_search_path())
        if not search.is_dir():
            return []
        paths = (entry / str(protocol.VOLUME_NUMBER)
                 for entry in sorted(search.iterdir()))
        return [str(path) for path in paths if os.path.exists(path)]

    # -- connect ----------------------------------------------------------

    # Not @utils.trace: it logs the properties, and its masking does not
    # know "provider_auth" (the shared secret).
    @utils.connect_volume_prepare_result
    def connect_volume(self, connection_properties: dict) -> dict:
        """Write the .res, bring the client up and wait until it is usable.

        :returns: ``{'type': 'block', 'path': <device path>}``
        :raises DRBDAttachTimeout: the device did not become usable within
            ``attach_timeout``; the state seen is in the message and what
            this call set up is taken down again.
        """
        LOG.debug('connect_volume %s', _masked(connection_properties))
        resource = self._resource(connection_properties)
        path = self._device_path(resource, connection_properties)
        config = connection_properties.get('config')
        secret = connection_properties.get('provider_auth')
        with lockutils.lock(f'blackstor-drbd-{resource}'):
            existed = self._store.exists(resource)
            changed = self._write_res(resource, config, secret)
            created = not existed
            try:
                self._store.drbdadm('adjust', resource)
                self._wait_usable(resource, path)
            except Exception as exc:
                self._undo_connect(resource, created, changed)
                if isinstance(exc, node_errors.AgentError):
                    raise DRBDConnectorError(
                        f'drbdadm adjust {resource} failed: '
                        f'{exc}') from exc
                raise
        LOG.info('DRBD resource %s attached at %s', resource, path)
        return {'type': 'block', 'path': str(path)}

    def _write_res(self, resource: str, config: Any, secret: Any) -> bool:
        if not isinstance(config, str) or not config.strip():
            raise exception.InvalidParameterValue(
                err='connection property "config" (the .res text) is '
                    'missing')
        try:
            protocol.check_secret('provider_auth', secret)
        except protocol.ProtocolError:
            # Never echo the value: it is (meant to be) a secret.
            raise exception.InvalidParameterValue(
                err='connection property "provider_auth" is not a valid '
                    'DRBD shared secret') from None
        try:
            return self._store.write(resource, config, secret,
                                     expect_disk=self._own_disk(resource),
                                     field='config')
        except node_errors.AgentError as exc:
            raise DRBDConnectorError(
                f'the .res of {resource} was refused: {exc}') from exc

    def _own_disk(self, resource: str) -> str | None:
        """This node's backing disk in the .res in place (None: diskless).

        On a node that holds a replica (hyperconverged) the .res in place
        gives it a disk: a new text must give it the same one, or the
        ``adjust`` that follows would detach the replica's disk.
        """
        definition = self._store.read_definition(resource)
        if definition is None:
            return None
        mine = [h for h in definition.get('hosts') or []
                if h.get('name') == self.node_name]
        return mine[0].get('disk') if mine else None

    def _wait_usable(self, resource: str, path: pathlib.Path) -> None:
        deadline = time.monotonic() + self.attach_timeout
        while True:
            exists = os.path.exists(path)
            state, error = self._status(resource)
            if exists and state is not None and state.has_quorum \
                    and state.has_usable_disk:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DRBDAttachTimeout(self._timeout_message(
                    resource, path, exists, state, error))
            time.sleep(min(self.poll_interval, remaining))

    def _timeout_message(self, resource: str, path: pathlib.Path,
                         exists: bool, state: ResourceState | None,
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
            self._store.drbdadm('down', resource, check_exit_code=False)
        except Exception:
            LOG.exception('Undo: drbdadm down %s failed', resource)
        try:
            self._store.remove(resource)
        except Exception:
            LOG.exception('Undo: removing the .res of %s failed', resource)

    # -- disconnect -------------------------------------------------------

    @utils.connect_volume_undo_prepare_result(unlink_after=True)
    def disconnect_volume(self, connection_properties: dict,
                          device_info: dict | None, force: bool = False,
                          ignore_errors: bool = False) -> None:
        """Take the client down and remove its .res.

        Refuses with :class:`DRBDDeviceInUse` while the device is open or
        Primary here, unless ``force``. A resource that is not up and has
        no .res is already disconnected (no-op). With ``force`` every step
        is tried and errors are raised at the end unless ``ignore_errors``.
        """
        LOG.debug('disconnect_volume %s force=%s ignore_errors=%s',
                  _masked(connection_properties), force, ignore_errors)
        resource = self._resource(connection_properties)
        with lockutils.lock(f'blackstor-drbd-{resource}'):
            self._refuse_replica(resource, force)
            state, error = self._status(resource)
            if state is not None and state.in_use and not force:
                raise DRBDDeviceInUse(
                    f'DRBD resource {resource} is in use on '
                    f'{self.node_name} ({state.describe()}); refusing to '
                    'disconnect it (use force to override)')
            errors = exception.ExceptionChainer()
            # Unknown state (status unreadable): try the down anyway; DRBD
            # itself refuses to take down a device that is held open.
            if state is not None or error != NOT_UP:
                with errors.context(force, 'drbdadm down %s failed',
                                    resource):
                    self._down(resource)
            with errors.context(force, 'removing the .res of %s failed',
                                resource):
                self._store.remove(resource)
        if errors:
            if not ignore_errors:
                raise errors
            LOG.warning('Ignoring errors disconnecting %s: %s', resource,
                        errors)

    def _refuse_replica(self, resource: str, force: bool) -> None:
        """Never take down a replica: only diskless clients disconnect.

        Even with ``force`` (which overrides "in use", not this): a
        replica goes away when its volume is deleted, by the agent's
        ``delete``, which also removes the LV.
        """
        try:
            disk = self._own_disk(resource)
        except node_errors.AgentError as exc:
            if not force:
                raise DRBDConnectorError(
                    f'cannot tell whether {self.node_name} holds a replica '
                    f'of {resource} ({exc}); refusing to disconnect it (use '
                    'force to override)') from exc
            LOG.warning('Disconnecting %s without knowing whether this node '
                        'holds a replica: %s', resource, exc)
            return
        if disk is not None:
            raise DRBDReplicaHere(
                f'{self.node_name} holds a replica of {resource} (disk '
                f'{disk}), not a diskless client: disconnect refused; a '
                'replica is removed only by deleting the volume')

    def _down(self, resource: str) -> None:
        if self._store.exists(resource):
            try:
                self._store.drbdadm('down', resource)
                return
            except node_errors.AgentError as exc:
                failure: Exception = exc
        else:
            # Up in the kernel but no .res: drbdadm does not know it.
            try:
                self._execute('drbdsetup', 'down', resource,
                              run_as_root=True,
                              root_helper=self._root_helper)
                return
            except putils.ProcessExecutionError as exc:
                failure = exc
        # "Not running" is fine: look again before calling it a failure.
        if self._status(resource)[1] != NOT_UP:
            raise DRBDConnectorError(
                f'could not take DRBD resource {resource} down: '
                f'{failure}') from failure

    # -- extend, check ----------------------------------------------------

    def extend_volume(self, connection_properties: dict) -> int:
        """Not offered: an attached volume is not extended (see above).

        os-brick requires the method; nothing calls it (Nova reaches
        'local' volumes through its own LibvirtVolumeDriver, whose
        extend_volume raises NotImplementedError too).
        """
        raise NotImplementedError(
            'BlackStor volumes are not extended while attached')

    def check_valid_device(self, path: str, run_as_root: bool = True
                           ) -> bool:
        """Whether the DRBD device at ``path`` can serve I/O.

        True iff its resource is up, has quorum and a usable disk (the
        local one or a peer's UpToDate). Decided from ``drbdsetup status
        --json`` only: the device itself is never opened, so a dead network
        cannot block the check.
        """
        try:
            out, _err = self._execute(
                'drbdsetup', 'status', '--json', run_as_root=run_as_root,
                root_helper=self._root_helper)
            states = parse_status(out)
        except (putils.ProcessExecutionError, ValueError) as exc:
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
                        states: dict[str, ResourceState]
                        ) -> ResourceState | None:
        search = pathlib.Path(self.get_search_path())
        if path.parent.parent == search:
            return states.get(path.parent.name)
        # /dev/drbdN, or a link to it: find the resource by minor.
        match = _DRBD_MINOR_RE.match(os.path.basename(os.path.realpath(path)))
        if match:
            minor = int(match.group(1))
            for state in states.values():
                if state.minor == minor:
                    return state
        return None

    # -- helpers ----------------------------------------------------------

    def _status(self, resource: str
                ) -> tuple[ResourceState | None, str | None]:
        """(state, None), or (None, why) when the resource is not up."""
        try:
            out, _err = self._execute(
                'drbdsetup', 'status', '--json', resource, run_as_root=True,
                root_helper=self._root_helper)
        except putils.ProcessExecutionError as exc:
            if exc.exit_code == DRBDSETUP_NO_SUCH_RESOURCE:
                return None, NOT_UP
            return None, (f'drbdsetup status failed (exit code '
                          f'{exc.exit_code}): {(exc.stderr or "").strip()}')
        try:
            state = parse_status(out).get(resource)
        except ValueError as exc:
            LOG.warning('Unreadable DRBD status of %s: %s', resource, exc)
            return None, str(exc)
        return state, None if state else NOT_UP

    @staticmethod
    def _resource(connection_properties: dict) -> str:
        name = connection_properties.get('name')
        try:
            return protocol.check_name('name', name)
        except protocol.ProtocolError as exc:
            raise exception.InvalidParameterValue(
                err=f'connection property {exc}') from None

    def _device_path(self, resource: str,
                     connection_properties: dict) -> pathlib.Path:
        device = connection_properties.get('device')
        if not device:
            return (self.device_root / 'drbd' / 'by-res' / resource /
                    str(protocol.VOLUME_NUMBER))
        path = pathlib.Path(device) if isinstance(device, str) else None
        if (path is None or not path.is_absolute() or '..' in path.parts
                or self.device_root not in path.parents):
            raise exception.InvalidParameterValue(
                err=f'connection property device: {device!r} is not a '
                    f'path below {self.device_root}')
        return path


def _brick_execute(execute: Callable[..., tuple[str, str]]
                   ) -> Callable[..., tuple[str, str]]:
    """``execute`` raising ProcessExecutionError for the agent's failures."""
    def run(*cmd: Any, **kwargs: Any) -> tuple[str, str]:
        try:
            return execute(*cmd, **kwargs)
        except node_executor.ProcessFailed as exc:
            raise putils.ProcessExecutionError(
                stdout=exc.stdout, stderr=exc.stderr,
                exit_code=exc.exit_code, cmd=exc.cmd) from exc
    return run


def _masked(connection_properties: dict) -> dict:
    """The properties with the secret masked, fit for a log line."""
    masked = dict(connection_properties)
    if masked.get('provider_auth') is not None:
        masked['provider_auth'] = '***'
    if isinstance(masked.get('config'), str):
        masked['config'] = f'<{len(masked["config"])} characters>'
    return strutils.mask_dict_password(masked)


def _drbdadm_versions(execute: Callable[..., tuple[str, str]]
                      ) -> tuple[str | None, str | None]:
    """(drbd-utils version, kernel module version) from drbdadm."""
    try:
        out, _err = execute('drbdadm', '--version', check_exit_code=False)
    except (putils.ProcessExecutionError, OSError) as exc:
        LOG.warning('drbdadm --version failed: %s', exc)
        return None, None
    values = dict(line.split('=', 1) for line in out.splitlines()
                  if '=' in line)
    utils_version = values.get('DRBDADM_VERSION') or None
    kernel_version = values.get('DRBD_KERNEL_VERSION') or None
    if values.get('DRBD_KERNEL_VERSION_CODE', '0x0').strip() in (
            '0', '0x0', '0x000000'):
        kernel_version = None   # drbdadm says 0 when no module is loaded
    return utils_version, kernel_version


def _proc_drbd_version(path: str = '/proc/drbd') -> str | None:
    """The loaded DRBD module's version, or None when there is none."""
    try:
        with open(path, encoding='utf-8', errors='replace') as proc:
            head = proc.read(4096)
    except OSError:
        return None
    match = _PROC_DRBD_VERSION_RE.search(head)
    return match.group(1) if match else None
