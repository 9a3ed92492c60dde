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

The work is :class:`blackstor_cinder.node.client.DisklessClient`'s, which
the node agent uses directly (without importing os-brick); this module
adapts it to os-brick's connector interface and exceptions. It runs as
root: the .res is written directly, commands go through ``execute`` with
the root helper.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Callable, Iterator

from oslo_concurrency import lockutils
from oslo_concurrency import processutils as putils
from oslo_log import log as logging
from oslo_utils import strutils
from os_brick import exception
from os_brick.initiator.connectors import base
from os_brick import utils

from blackstor_cinder.node import client as client_mod
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

_PROC_DRBD_VERSION_RE = re.compile(r'^version:\s*(\S+)', re.MULTILINE)


class DRBDConnectorError(exception.BrickException):
    """Base of the errors this connector raises."""

    message = 'DRBD connector error'


class DRBDAttachTimeout(DRBDConnectorError):
    """The client did not get a usable device within the attach timeout."""


class DRBDDeviceInUse(DRBDConnectorError):
    """Disconnect refused: the device is open or Primary on this host."""


class DRBDReplicaHere(DRBDConnectorError):
    """Disconnect refused: this host holds a replica, not a client."""


_BRICK_ERRORS = {
    client_mod.AttachTimeout: DRBDAttachTimeout,
    client_mod.DeviceInUse: DRBDDeviceInUse,
    client_mod.ReplicaHere: DRBDReplicaHere,
}


@contextlib.contextmanager
def _brick_errors() -> Iterator[None]:
    """The client's errors as os-brick's exceptions.

    A context, not a decorator: os-brick's decorators read the wrapped
    method's own argument names.
    """
    try:
        yield
    except client_mod.InvalidProperty as exc:
        raise exception.InvalidParameterValue(err=exc.message) from exc
    except AgentError as exc:
        cls = _BRICK_ERRORS.get(type(exc), DRBDConnectorError)
        raise cls(exc.message) from exc


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
        # Through self._execute at each call: set_execute may replace it.
        self.client = client_mod.DisklessClient(
            lambda *cmd, **kw: self._execute(*cmd, **kw), self._root_helper,
            resource_dir=resource_dir, drbd_config=drbd_config,
            node_name=node_name, device_root=device_root,
            attach_timeout=attach_timeout, poll_interval=poll_interval,
            lock=lockutils.lock)
        self.node_name = self.client.node_name

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
        return str(self.client.search_path)

    def get_volume_paths(self, connection_properties: dict) -> list[str]:
        """The device path of the volume, if it exists on this host."""
        with _brick_errors():
            path = self._device_path(connection_properties)
        return [str(path)] if os.path.exists(path) else []

    def get_all_available_volumes(
            self, connection_properties: dict | None = None) -> list[str]:
        """Every DRBD volume-0 device link under the search path."""
        return self.client.all_volume_paths()

    # -- connect, disconnect ----------------------------------------------

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
        with _brick_errors():
            path = self.client.connect(
                connection_properties.get('name'),
                connection_properties.get('config'),
                connection_properties.get('provider_auth'),
                connection_properties.get('device'))
        return {'type': 'block', 'path': path}

    @utils.connect_volume_undo_prepare_result(unlink_after=True)
    def disconnect_volume(self, connection_properties: dict,
                          device_info: dict | None, force: bool = False,
                          ignore_errors: bool = False) -> None:
        """Take the client down and remove its .res.

        Refuses with :class:`DRBDDeviceInUse` while the device is open or
        Primary here, unless ``force``; never takes a replica down
        (:class:`DRBDReplicaHere`). A resource that is not up and has no
        .res is already disconnected (no-op). With ``force`` every step is
        tried and errors are raised at the end unless ``ignore_errors``.
        """
        LOG.debug('disconnect_volume %s force=%s ignore_errors=%s',
                  _masked(connection_properties), force, ignore_errors)
        with _brick_errors():
            self.client.disconnect(connection_properties.get('name'),
                                   force=force, ignore_errors=ignore_errors)

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
            return self.client.check_valid(path)
        except AgentError as exc:
            LOG.warning('check_valid_device %s: %s', path, exc)
            return False

    def _device_path(self, connection_properties: dict):
        resource = client_mod.check_resource(
            connection_properties.get('name'))
        return self.client.device_path(resource,
                                       connection_properties.get('device'))


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
