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
hands them to the controller in ``blackstor_cinder.cluster``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from cinder.common import constants
from cinder import coordination
from cinder import exception
from cinder import interface
from cinder.volume import configuration
from cinder.volume import driver
from cinder.volume import manager
from cinder.volume import volume_utils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import strutils

from blackstor_cinder import backend
from blackstor_cinder.cluster import adopt
from blackstor_cinder.cluster import autoheal
from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import heal
from blackstor_cinder.cluster import placement
from blackstor_cinder.cluster import reconcile
from blackstor_cinder.cluster import retype as retyping
from blackstor_cinder.cluster import tiebreaker
from blackstor_cinder.cluster import transport
from blackstor_cinder.i18n import _
from blackstor_cinder import options

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
CONF.register_opts(options.blackstor_opts,
                   group=configuration.SHARED_CONF_GROUP)

GiB = 1 << 30
#: stats warn when fewer volumes than this still fit in the ranges
_ROOM_WARNING = 50
SPEC_REPLICAS = 'blackstor:replicas'
SPEC_ZONES = 'blackstor:zones'
#: extra specs a retype changes in place (the backend's name: the manager
#: calls retype only when the volume stays on this backend)
_RETYPED_SPECS = frozenset((SPEC_REPLICAS, SPEC_ZONES,
                            'volume_backend_name'))


class BlackStorDriverError(exception.VolumeDriverException):
    message = _('BlackStor: %(reason)s')


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Map the controller's errors to Cinder's, once, with the action."""
    try:
        yield
    except errors.InvalidRequest as exc:
        raise exception.InvalidInput(
            reason=_('%(action)s: %(err)s') % {'action': action,
                                               'err': exc}) from exc
    except (errors.ClusterError, transport.NodeError) as exc:
        # a node's error is a ClusterError's cause; one that escapes as
        # it is says which node and why too
        raise exception.VolumeBackendAPIException(
            data=_('%(action)s: %(err)s') % {'action': action,
                                             'err': exc}) from exc


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
        self._auto_heal: autoheal.AutoHeal | None = None
        self.controller: ctl.Controller | None = None

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

    def _type_policy(self, volume: Any) -> tuple[int, str]:
        specs = {}
        if volume.volume_type_id and volume.volume_type:
            specs = volume.volume_type.extra_specs or {}
        return self._policy(specs)

    def _policy(self, specs: dict) -> tuple[int, str]:
        """(replicas, zone policy) of a type's extra specs."""
        replicas = specs.get(SPEC_REPLICAS)
        zones = specs.get(SPEC_ZONES) or self.configuration.safe_get(
            'blackstor_zone_policy')
        try:
            replicas = int(replicas) if replicas is not None else (
                self.configuration.blackstor_replicas)
        except ValueError:
            replicas = 0
        if not 1 <= replicas <= 8:
            raise exception.InvalidVolumeType(reason=_(
                '%(key)s must be an integer from 1 to 8, not %(val)r') % {
                    'key': SPEC_REPLICAS, 'val': specs.get(SPEC_REPLICAS)})
        if zones not in placement.ZONE_POLICIES:
            raise exception.InvalidVolumeType(reason=_(
                '%(key)s must be one of %(allowed)s, not %(val)r') % {
                    'key': SPEC_ZONES, 'allowed': placement.ZONE_POLICIES,
                    'val': zones})
        return replicas, zones

    def create_volume(self, volume: Any) -> None:
        replicas, zones = self._type_policy(volume)
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
        why = _retype_needs_migration(volume, diff or {}, host)
        if not why:
            replicas, zones = self._policy(new_type.extra_specs or {})
            with _translated(_('Retype of volume %s') % volume.id):
                why = retyping.retype(
                    self.controller, volume.name, replicas, zones,
                    self.configuration.safe_get('blackstor_heal_sync_timeout')
                    or heal.SYNC_TIMEOUT).migrate
        if why:
            LOG.warning('Volume %(id)s is not retyped in place, Cinder '
                        'migrates it: %(why)s', {'id': volume.id,
                                                 'why': why})
            return False, None
        return True, {}

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
        name = _reference(existing_ref)
        replicas, zones = self._type_policy(volume)
        with _manage_translated(existing_ref, _('Manage of volume %s')
                                % volume.id):
            spec = adopt.adopt(self.controller, name, volume.name,
                               replicas, zones)
            if spec.size and spec.size % GiB:
                # Cinder sizes are whole GiB: the device grows to it
                self.controller.extend_volume(
                    volume.name, -(-spec.size // GiB) * GiB,
                    old_size=spec.size)
        return {}

    def manage_existing_get_size(self, volume: Any,
                                 existing_ref: dict) -> int:
        name = _reference(existing_ref)
        with _manage_translated(existing_ref, _('Manage of volume %s')
                                % volume.id):
            entry = adopt.find(self.controller, name)
        if entry.reason_not_safe:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref, reason=entry.reason_not_safe)
        return entry.size // GiB

    def unmanage(self, volume: Any) -> None:
        """Nothing changes on the nodes: the resource keeps running."""
        LOG.info('Volume %(id)s unmanaged; resource %(res)s stays on the '
                 'storage nodes', {'id': volume.id, 'res': volume.name})

    def get_manageable_volumes(self, cinder_volumes: list, marker: Any,
                               limit: int | None, offset: int | None,
                               sort_keys: list[str],
                               sort_dirs: list[str]) -> list[dict]:
        managed = {v.name: v.id for v in cinder_volumes}
        with _translated(_('Listing of manageable volumes')):
            found = adopt.manageable(self.controller)
        entries = [dict(_manageable_row(e, managed),
                        extra_info={'kind': e.kind,
                                    'nodes': ','.join(e.nodes)})
                   for e in found]
        return volume_utils.paginate_entries_list(
            entries, marker, limit, offset, sort_keys, sort_dirs)

    def manage_existing_snapshot(self, snapshot: Any,
                                 existing_ref: dict) -> dict:
        """Adopt a snapshot LV of the volume's replicas (renamed)."""
        name = _reference(existing_ref)
        with _manage_translated(existing_ref, _('Manage of snapshot %s')
                                % snapshot.id):
            adopt.adopt_snapshot(self.controller, snapshot.volume.name,
                                 name, _snapshot_name(snapshot))
        return {}

    def manage_existing_snapshot_get_size(self, snapshot: Any,
                                          existing_ref: dict) -> int:
        name = _reference(existing_ref)
        with _manage_translated(existing_ref, _('Manage of snapshot %s')
                                % snapshot.id):
            entry = adopt.find_snapshot(self.controller, name,
                                        snapshot.volume.name)
        return entry.size // GiB

    def unmanage_snapshot(self, snapshot: Any) -> None:
        """Nothing changes on the nodes: the snapshot LVs stay."""
        LOG.info('Snapshot %(id)s unmanaged; its LVs %(lv)s stay on the '
                 'storage nodes', {'id': snapshot.id,
                                   'lv': _snapshot_name(snapshot)})

    def get_manageable_snapshots(self, cinder_snapshots: list, marker: Any,
                                 limit: int | None, offset: int | None,
                                 sort_keys: list[str],
                                 sort_dirs: list[str]) -> list[dict]:
        managed = {_snapshot_name(s): s.id for s in cinder_snapshots}
        with _translated(_('Listing of manageable snapshots')):
            found = adopt.manageable_snapshots(self.controller)
        entries = [dict(_manageable_row(e, managed),
                        source_reference={'source-name': e.volume},
                        extra_info={'nodes': ','.join(e.nodes)})
                   for e in found]
        return volume_utils.paginate_entries_list(
            entries, marker, limit, offset, sort_keys, sort_dirs)

    # -- stats --------------------------------------------------------------

    def get_volume_stats(self, refresh: bool = False) -> dict:
        if refresh or not self._stats:
            self._update_volume_stats()
        return self._stats

    def _update_volume_stats(self) -> None:
        conf = self.configuration
        backend = conf.safe_get('volume_backend_name') or 'BlackStor'
        stats = self.controller.stats()
        cluster = self.controller.config
        nodes = ','.join(n.name for n in cluster.storage_nodes)
        if stats.nodes_down:
            LOG.warning('BlackStor nodes unreachable: %s',
                        ', '.join(sorted(stats.nodes_down)))
        for node, why in sorted(stats.nodes_refused.items()):
            LOG.warning('BlackStor node %(node)s is not used: %(why)s',
                        {'node': node, 'why': why})
        if stats.capacity_replicas < cluster.replicas:
            LOG.warning('BlackStor backend %(backend)s can place %(n)d '
                        'replica(s) only, fewer than blackstor_replicas '
                        '(%(replicas)d): capacity is reported for %(n)d; '
                        'creates that need more fail until nodes return',
                        {'backend': backend, 'n': stats.capacity_replicas,
                         'replicas': cluster.replicas})
        if stats.divergent_volumes:
            self._repair(stats.divergent_volumes)
        if stats.temporary_snapshots:
            self._remove_temporary_snapshots(stats.temporary_snapshots)
        if stats.without_tiebreaker:
            self._ensure_tiebreakers(stats)
        if stats.orphan_tiebreakers:
            self._remove_orphan_tiebreakers(stats.orphan_tiebreakers)
        healing = self._heal(stats.nodes_down)
        self._stats = {
            'volume_backend_name': backend,
            'vendor_name': 'BlackStor',
            'driver_version': self.VERSION,
            'storage_protocol': constants.DRBD,
            'total_capacity_gb': _gib(stats.total_bytes),
            'free_capacity_gb': _gib(stats.free_bytes),
            'provisioned_capacity_gb': _gib(stats.provisioned_bytes),
            'thin_provisioning_support': True,
            'thick_provisioning_support': False,
            'max_over_subscription_ratio': cluster.over_subscription,
            'reserved_percentage': conf.reserved_percentage,
            'total_volumes': stats.total_volumes,
            # DRBD does not order overlapping writes of two primaries:
            # only an operator who knows the guests' file systems opts in
            'multiattach': bool(conf.safe_get('blackstor_multiattach')),
            # Nova cannot grow an attached 'local' volume in the guest
            # (LibvirtVolumeDriver.extend_volume raises
            # NotImplementedError): Cinder then refuses such an extend
            'online_extend_support': False,
            'sparse_copy_volume': True,
            'QoS_support': False,
            'location_info': f'BlackStorDriver:{nodes}:{cluster.pool}',
            'blackstor_largest_volume_gb': _gib(stats.largest_volume_bytes),
            'blackstor_degraded_volumes': len(stats.degraded_volumes),
            'blackstor_nodes_down': sorted(stats.nodes_down),
            'blackstor_nodes_refused': sorted(stats.nodes_refused),
            'blackstor_divergent_volumes': len(stats.divergent_volumes),
            'blackstor_healing': healing,
            'blackstor_volumes_without_tiebreaker': len(
                stats.without_tiebreaker),
            'blackstor_capacity_replicas': stats.capacity_replicas,
            'blackstor_minors_free': stats.minors_free,
            'blackstor_ports_free': stats.ports_free,
        }
        if min(stats.minors_free, stats.ports_free) < _ROOM_WARNING:
            LOG.warning('BlackStor backend %(backend)s has room for '
                        '%(left)d more volume(s): %(minors)d minor(s) left '
                        'in blackstor_minor_range, %(ports)d port(s) in '
                        'blackstor_port_range',
                        {'backend': backend,
                         'left': min(stats.minors_free, stats.ports_free),
                         'minors': stats.minors_free,
                         'ports': stats.ports_free})

    def _heal(self, nodes_down: dict) -> dict | None:
        """Heal a node down longer than blackstor_heal_after; progress."""
        after = self.configuration.safe_get('blackstor_heal_after')
        if not after:
            return None
        if self._auto_heal is None:
            conf = self.configuration
            self._auto_heal = autoheal.AutoHeal(
                self.controller, after,
                conf.safe_get('blackstor_heal_parallel') or 2,
                conf.safe_get('blackstor_heal_sync_timeout')
                or heal.SYNC_TIMEOUT)
        self._auto_heal.observe(nodes_down)
        return self._auto_heal.progress.as_dict()

    def _repair(self, names: tuple[str, ...]) -> None:
        """Push the majority's .res to replicas that missed a change."""
        if not self.configuration.safe_get('blackstor_auto_repair'):
            LOG.warning('The .res of %s differs between replicas; '
                        'blackstor_auto_repair is off (blackstor-manage '
                        'check --fix repairs it)', ', '.join(names))
            return
        try:
            outcomes = reconcile.reconcile(self.controller, names)
        except Exception as exc:    # never fails the stats update
            LOG.warning('Repair of the divergent .res of %(res)s failed: '
                        '%(err)s', {'res': ', '.join(names),
                                    'err': strutils.mask_password(str(exc))})
            return
        for name, outcome in sorted(outcomes.items()):
            LOG.debug('Repair of the .res of %(res)s: %(outcome)s',
                      {'res': name, 'outcome': outcome})

    def _ensure_tiebreakers(self, stats: ctl.ClusterStats) -> None:
        """Give the two-replica volumes without one a tiebreaker."""
        names = stats.without_tiebreaker
        LOG.warning('BlackStor volumes with two replicas and no tiebreaker '
                    '(a replica loss leaves them quorum only through their '
                    'clients): %s', ', '.join(names))
        if (not self.configuration.safe_get('blackstor_auto_repair')
                or len(stats.nodes_up) <= tiebreaker.REPLICAS):
            return          # no third storage node answers: nothing to try
        for name in names:
            try:
                outcome = self.controller.ensure_tiebreaker(name, wait=False)
            except Exception as exc:    # never fails the stats update
                outcome = f'failed: {strutils.mask_password(str(exc))}'
            LOG.debug('Tiebreaker of %(res)s: %(outcome)s',
                      {'res': name, 'outcome': outcome})

    def _remove_orphan_tiebreakers(self, orphans: dict) -> None:
        """Take down tiebreakers left by deletes while their node was down."""
        self._remove_leftovers('tiebreakers of deleted volumes', orphans,
                               self.controller.remove_orphan_tiebreakers,
                               '')

    def _remove_temporary_snapshots(self, snapshots: dict) -> None:
        """Remove the clone snapshots left on nodes that were unreachable."""
        self._remove_leftovers('temporary clone snapshots', snapshots,
                               self.controller.remove_temporary_snapshots,
                               ' (blackstor-manage check --fix removes them)')

    def _remove_leftovers(self, what: str, names: dict,
                          remove: Callable[[dict], dict],
                          otherwise: str) -> None:
        """What a flow left on a node down, removed once it answers."""
        if not self.configuration.safe_get('blackstor_auto_repair'):
            LOG.warning('BlackStor %(what)s %(names)s are left on the '
                        'storage nodes; blackstor_auto_repair is '
                        'off%(otherwise)s',
                        {'what': what, 'names': ', '.join(sorted(names)),
                         'otherwise': otherwise})
            return
        try:
            outcomes = remove(names)
        except Exception as exc:    # never fails the stats update
            LOG.warning('Removal of the %(what)s %(names)s failed: %(err)s',
                        {'what': what, 'names': ', '.join(sorted(names)),
                         'err': strutils.mask_password(str(exc))})
            return
        for name, outcome in sorted(outcomes.items()):
            LOG.debug('%(what)s, %(name)s: %(outcome)s',
                      {'what': what, 'name': name, 'outcome': outcome})

    def _init_vendor_properties(self) -> tuple[dict, str]:
        properties: dict = {}
        self._set_property(
            properties, SPEC_REPLICAS, 'Replicas',
            _('Number of diskful DRBD replicas of the volume.'), 'integer',
            minimum=1, maximum=8,
            default=self.configuration.safe_get('blackstor_replicas') or 3)
        self._set_property(
            properties, SPEC_ZONES, 'Zone placement',
            _('spread puts every replica in a distinct zone; any ignores '
              'zones.'), 'string', enum=list(placement.ZONE_POLICIES),
            default='any')
        return properties, 'blackstor'


def _retype_needs_migration(volume: Any, diff: dict,
                            host: dict) -> str | None:
    """Why a retype is not ours to do in place, or None."""
    same = (volume.cluster_name and volume.cluster_name
            == host.get('cluster_name')) or (
        volume_utils.extract_host(volume.host)
        == volume_utils.extract_host(host.get('host')))
    if not same:
        return f'it goes to another backend ({host.get("host")})'
    changed = {f'{kind} {key}' for kind in ('qos_specs', 'encryption')
               for key, (old, new) in (diff.get(kind) or {}).items()
               if old != new}
    changed |= {f'extra spec {key}' for key, (old, new) in (
        diff.get('extra_specs') or {}).items()
        if old != new and key not in _RETYPED_SPECS}
    if changed:
        return ('BlackStor changes only the replicas and zones in place, '
                'not ' + ', '.join(sorted(changed)))
    return None


def _manageable_row(entry: Any, managed: dict[str, str]) -> dict:
    """One entry of get_manageable_*, as Cinder lists it.

    ``extra_info`` is a dict of strings: the manager turns the entries
    into ManageableVolume/Snapshot objects, whose field is a dict.
    """
    cinder_id = managed.get(entry.name)
    reason = 'already managed' if cinder_id else entry.reason_not_safe
    return {'reference': {'source-name': entry.name},
            'size': entry.size // GiB, 'safe_to_manage': not reason,
            'reason_not_safe': reason, 'cinder_id': cinder_id}


def _reference(existing_ref: Any) -> str:
    """The name a manage reference gives, or ManageExistingInvalidReference."""
    name = (existing_ref or {}).get('source-name') if isinstance(
        existing_ref, dict) else None
    if not name:
        raise exception.ManageExistingInvalidReference(
            existing_ref=existing_ref,
            reason=_('the reference needs source-name: a resource or thin '
                     'LV name on the storage nodes'))
    return name


@contextlib.contextmanager
def _manage_translated(existing_ref: Any, action: str) -> Iterator[None]:
    """A reference that names nothing manageable is an invalid one."""
    with _translated(action):
        try:
            yield
        except (errors.InvalidRequest, errors.ResourceNotFound) as exc:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref, reason=str(exc)) from exc


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


def _snapshot_name(snapshot: Any) -> str:
    """The snapshot's LV name on every replica.

    Cinder's default 'snapshot-<id>' is refused by LVM, which reserves the
    'snapshot' prefix.
    """
    return f'snap-{snapshot.id}'


def _gib(value: int) -> float:
    """Bytes to GiB, rounded down to 2 decimals (never over-report)."""
    return int(value * 100 // GiB) / 100


def _coordination_lock(name: str) -> Any:
    """A tooz lock shared by every cinder-volume service (Active/Active)."""
    return coordination.COORDINATOR.get_lock(name)
