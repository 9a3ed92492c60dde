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
"""Cinder volume driver for DRBD 9 on LVM thin (BlackStor).

Cinder glue only: every method turns Cinder objects into plain data and
hands them to the controller in ``blackstor_cinder.cluster``. The glue of
one concept lives beside this module: the volume types' extra specs
(``driver_types``), manage / unmanage (``driver_manage``), retype
(``driver_retype``), the stats and their repairs (``driver_stats``), and
the error mapping they share (``driver_common``).
"""

from __future__ import annotations

from typing import Any

from cinder import coordination
from cinder import exception
from cinder import interface
from cinder.volume import configuration
from cinder.volume import driver
from cinder.volume import manager
from cinder.volume import volume_utils
from oslo_config import cfg
from oslo_log import log as logging

from blackstor_cinder import backend
from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import errors
from blackstor_cinder import driver_common
from blackstor_cinder.driver_common import GiB
from blackstor_cinder import driver_manage
from blackstor_cinder import driver_retype
from blackstor_cinder import driver_stats
from blackstor_cinder import driver_types
from blackstor_cinder.i18n import _
from blackstor_cinder import options

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
CONF.register_opts(options.blackstor_opts,
                   group=configuration.SHARED_CONF_GROUP)

#: the extra specs of the volume types (driver_types.py)
SPEC_REPLICAS = driver_types.SPEC_REPLICAS
SPEC_ZONES = driver_types.SPEC_ZONES
#: the error mapping and the snapshot names every driver module shares
_translated = driver_common.translated
_snapshot_name = driver_common.snapshot_name


class BlackStorDriverError(exception.VolumeDriverException):
    message = _('BlackStor: %(reason)s')


@interface.volumedriver
class BlackStorDriver(driver.VolumeDriver):
    """DRBD 9 replicated volumes on LVM thin pools of several nodes.

    Version history:

    .. code-block:: none

        1.0.0 - Initial driver: volumes, snapshots, clones, extend, revert,
                push attach as diskless DRBD clients ('local' connection
                info), live migration (two primaries), honest capacity.
    """

    VERSION = '1.0.0'
    CI_WIKI_NAME = 'BlackStor_CI'
    SUPPORTS_ACTIVE_ACTIVE = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.configuration:
            self.configuration.append_config_values(options.blackstor_opts)
        self._stats: dict[str, Any] = {}
        self.controller: ctl.Controller | None = None
        self.reporter: driver_stats.Reporter | None = None

    @staticmethod
    def get_driver_options() -> list:
        return options.blackstor_opts

    # -- setup --------------------------------------------------------------

    def do_setup(self, context: Any) -> None:
        conf = self.configuration
        ratio = volume_utils.get_max_over_subscription_ratio(
            conf.max_over_subscription_ratio, supports_auto=False)
        with _translated(_('Configuration')):
            config = backend.cluster_config(conf, float(ratio))
        for warning in backend.setup_warnings(config):
            LOG.warning('BlackStor backend %(backend)s: %(warning)s',
                        {'backend': conf.config_group
                         or conf.safe_get('volume_backend_name'),
                         'warning': warning})
        self.controller = ctl.Controller(
            config, backend.transport_factory(conf),
            lock=_coordination_lock)
        self.reporter = driver_stats.Reporter(conf, self.controller,
                                              self.VERSION)

    def check_for_setup_error(self) -> None:
        """Validate the configuration; never ask the nodes.

        A node down or unfit at start-up must not disable the backend
        (Cinder would refuse every attach, detach and delete until
        cinder-volume restarts): node health goes to the stats
        (``blackstor_nodes_down``, ``blackstor_nodes_refused``), where the
        scheduler's capacity filter and create's placement take it.
        """
        self._check_other_backends()

    def _check_other_backends(self) -> None:
        """Refuse ranges overlapping another BlackStor backend's.

        Only the backends of this cinder.conf can be seen; backends of
        other cinder-volume hosts are caught at create (the clients'
        inventories) and at attach.
        """
        own = self.configuration.config_group
        if not own:
            return
        with _translated(_('Configuration')):
            mine = backend.BackendRanges.of(own, self.configuration)
        others = []
        for name, conf in _blackstor_backends(exclude=own).items():
            try:
                others.append(backend.BackendRanges.of(name, conf))
            except errors.InvalidRequest as exc:
                LOG.warning('BlackStor backend %(name)s is not compared '
                            'with %(own)s: %(err)s',
                            {'name': name, 'own': own, 'err': exc})
        with _translated(_('Configuration')):
            backend.check_disjoint(mine, others)

    # -- volumes ------------------------------------------------------------

    def create_volume(self, volume: Any) -> None:
        replicas, zones = driver_types.volume_policy(self.configuration,
                                                     volume)
        with _translated(_('Create of volume %s') % volume.id):
            self.controller.create_volume(volume.name, volume.size * GiB,
                                          replicas, zones)

    def delete_volume(self, volume: Any) -> None:
        with _translated(_('Delete of volume %s') % volume.id):
            self.controller.delete_volume(volume.name)

    def extend_volume(self, volume: Any, new_size: int) -> None:
        with _translated(_('Extend of volume %s') % volume.id):
            # volume.size is still the old size: nothing below it is
            # zeroed (the old DRBD metadata area above it is)
            self.controller.extend_volume(volume.name, new_size * GiB,
                                          old_size=volume.size * GiB)

    def create_snapshot(self, snapshot: Any) -> None:
        with _translated(_('Snapshot %s') % snapshot.id):
            self.controller.create_snapshot(snapshot.volume.name,
                                            _snapshot_name(snapshot))

    def delete_snapshot(self, snapshot: Any) -> None:
        with _translated(_('Delete of snapshot %s') % snapshot.id):
            self.controller.delete_snapshot(_snapshot_name(snapshot),
                                            snapshot.volume.name)

    def create_volume_from_snapshot(self, volume: Any,
                                    snapshot: Any) -> None:
        with _translated(_('Volume %s from snapshot') % volume.id):
            self.controller.create_volume_from_snapshot(
                volume.name, _snapshot_name(snapshot), snapshot.volume.name,
                snapshot.volume_size * GiB, volume.size * GiB)

    def create_cloned_volume(self, volume: Any, src_vref: Any) -> None:
        with _translated(_('Clone of volume %s') % src_vref.id):
            self.controller.clone_volume(volume.name, src_vref.name,
                                         src_vref.size * GiB,
                                         volume.size * GiB)

    def revert_to_snapshot(self, context: Any, volume: Any,
                           snapshot: Any) -> None:
        with _translated(_('Revert of volume %s') % volume.id):
            self.controller.revert_to_snapshot(
                volume.name, _snapshot_name(snapshot),
                snapshot.volume_size * GiB, volume.size * GiB)

    def retype(self, context: Any, volume: Any, new_type: Any, diff: dict,
               host: dict) -> tuple[bool, dict | None]:
        """Change the replica count and zones live (cluster/retype.py).

        False (Cinder migrates) for another backend, any other change of
        the type, and a volume with snapshots that would get a replica.
        """
        return driver_retype.retype(self.controller, self.configuration,
                                    volume, new_type, diff, host)

    def update_migrated_volume(self, ctxt: Any, volume: Any, new_volume: Any,
                               original_volume_status: str) -> dict:
        """Keep the migrated data under the new volume's resource name.

        DRBD resources are not renamed (that would mean taking every
        replica and client down); the volume points at the new name_id.
        """
        return {'_name_id': new_volume.name_id,
                'provider_location': new_volume.provider_location}

    # Exports: attach is pushed in initialize_connection, nothing to export.
    def create_export(self, context: Any, volume: Any, connector: Any
                      ) -> None:
        pass

    def ensure_export(self, context: Any, volume: Any) -> None:
        pass

    def remove_export(self, context: Any, volume: Any) -> None:
        pass

    # -- attach -------------------------------------------------------------

    def initialize_connection(self, volume: Any, connector: dict,
                              initiator_data: Any = None) -> dict:
        """Make the host a diskless DRBD client; 'local' connection info.

        Nova's LibvirtVolumeDriver and os-brick's LocalConnector use the
        device path as it is. No secret goes into connection_info.
        """
        host = connector.get('host')
        if not host:
            raise exception.InvalidConnectorException(
                missing='host')
        with _translated(_('Attach of volume %s') % volume.id):
            path = self.controller.attach(volume.name, host,
                                          connector.get('ip'))
        return {'driver_volume_type': 'local',
                'data': {'device_path': path, 'discard': True}}

    def terminate_connection(self, volume: Any, connector: dict | None,
                             **kwargs: Any) -> None:
        """Detach from the host; ``connector=None`` detaches everywhere.

        ``connector=None`` is Cinder's force detach (``os-force_detach``
        without a connector): every connection is terminated. A connector
        without ``host`` is refused: it names no host to detach from.
        """
        if connector is not None and not connector.get('host'):
            raise exception.InvalidConnectorException(missing='host')
        with _translated(_('Detach of volume %s') % volume.id):
            if connector is None:
                self.controller.detach(volume.name, None, force=True)
                return
            host = connector['host']
            if self._other_attachments_on(volume, host):
                LOG.debug('%(vol)s stays attached on %(host)s for another '
                          'attachment', {'vol': volume.id, 'host': host})
                return
            self.controller.detach(volume.name, host,
                                   force=bool(kwargs.get('force')))

    @staticmethod
    def _other_attachments_on(volume: Any, host: str | None) -> bool:
        attachments = getattr(volume, 'volume_attachment', None) or []
        return sum(1 for a in attachments
                   if a.attached_host == host
                   and a.attach_status == 'attached') > 1

    # Image copies use BaseVD's local attach: initialize_connection above
    # on this host, then os-brick's LocalConnector on the device path.
    def copy_image_to_volume(self, context: Any, volume: Any,
                             image_service: Any, image_id: str,
                             disable_sparse: bool = False) -> None:
        super().copy_image_to_volume(context, volume, image_service,
                                     image_id,
                                     disable_sparse=disable_sparse)

    def copy_volume_to_image(self, context: Any, volume: Any,
                             image_service: Any, image_meta: dict) -> None:
        super().copy_volume_to_image(context, volume, image_service,
                                     image_meta)

    def clone_image(self, context: Any, volume: Any, image_location: Any,
                    image_meta: dict, image_service: Any
                    ) -> tuple[None, bool]:
        return None, False

    # -- manage / unmanage (cluster/adopt.py) --------------------------------

    def manage_existing(self, volume: Any, existing_ref: dict) -> dict:
        """Adopt a resource of this driver or a bare thin LV (renamed)."""
        return driver_manage.manage_existing(
            self.controller, self.configuration, volume, existing_ref)

    def manage_existing_get_size(self, volume: Any,
                                 existing_ref: dict) -> int:
        return driver_manage.manage_existing_get_size(
            self.controller, volume, existing_ref)

    def unmanage(self, volume: Any) -> None:
        """Nothing changes on the nodes: the resource keeps running."""
        LOG.info('Volume %(id)s unmanaged; resource %(res)s stays on the '
                 'storage nodes', {'id': volume.id, 'res': volume.name})

    def get_manageable_volumes(self, cinder_volumes: list, marker: Any,
                               limit: int | None, offset: int | None,
                               sort_keys: list[str],
                               sort_dirs: list[str]) -> list[dict]:
        return driver_manage.manageable_volumes(
            self.controller, cinder_volumes, marker, limit, offset,
            sort_keys, sort_dirs)

    def manage_existing_snapshot(self, snapshot: Any,
                                 existing_ref: dict) -> dict:
        """Adopt a snapshot LV of the volume's replicas (renamed)."""
        return driver_manage.manage_existing_snapshot(
            self.controller, snapshot, existing_ref)

    def manage_existing_snapshot_get_size(self, snapshot: Any,
                                          existing_ref: dict) -> int:
        return driver_manage.manage_existing_snapshot_get_size(
            self.controller, snapshot, existing_ref)

    def unmanage_snapshot(self, snapshot: Any) -> None:
        """Nothing changes on the nodes: the snapshot LVs stay."""
        LOG.info('Snapshot %(id)s unmanaged; its LVs %(lv)s stay on the '
                 'storage nodes', {'id': snapshot.id,
                                   'lv': _snapshot_name(snapshot)})

    def get_manageable_snapshots(self, cinder_snapshots: list, marker: Any,
                                 limit: int | None, offset: int | None,
                                 sort_keys: list[str],
                                 sort_dirs: list[str]) -> list[dict]:
        return driver_manage.manageable_snapshots(
            self.controller, cinder_snapshots, marker, limit, offset,
            sort_keys, sort_dirs)

    # -- stats --------------------------------------------------------------

    def get_volume_stats(self, refresh: bool = False) -> dict:
        if refresh or not self._stats:
            self._update_volume_stats()
        return self._stats

    def _update_volume_stats(self) -> None:
        """One reading of the cluster, and its repairs (driver_stats.py)."""
        self._stats = self.reporter.stats()

    def _init_vendor_properties(self) -> tuple[dict, str]:
        return driver_types.vendor_properties(self.configuration,
                                              self._set_property)


def _blackstor_backends(exclude: str) -> dict[str, Any]:
    """The other BlackStor backends of enabled_backends, by section.

    cinder-volume builds every backend's manager (and driver) before it
    forks, so their options are registered; registering them again here
    only covers a process that did not.
    """
    found = {}
    for name in filter(None, CONF.enabled_backends or ()):
        if name == exclude:
            continue
        conf = configuration.Configuration(
            [opt for opt in manager.volume_backend_opts
             if opt.name == 'volume_driver'], config_group=name)
        if 'blackstor' not in (conf.safe_get('volume_driver') or '').lower():
            continue
        conf.append_config_values(options.blackstor_opts)
        found[name] = conf
    return found


def _coordination_lock(name: str) -> Any:
    """A tooz lock shared by every cinder-volume service (Active/Active)."""
    return coordination.COORDINATOR.get_lock(name)
