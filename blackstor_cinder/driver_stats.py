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
"""The backend's stats for Cinder's scheduler, and the periodic repairs.

Every stats update (Cinder's periodic task) reads the cluster once; what
that reading finds left behind (a divergent .res, a missing or orphan
tiebreaker, a temporary snapshot, a node down too long) is repaired from
here when ``blackstor_auto_repair`` / ``blackstor_heal_after`` allow it.
A repair never fails the stats update.
"""

from __future__ import annotations

from typing import Any, Callable

from cinder.common import constants
from oslo_log import log as logging
from oslo_utils import strutils

from blackstor_cinder.cluster import autoheal
from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import heal
from blackstor_cinder.cluster import reconcile
from blackstor_cinder.cluster import tiebreaker
from blackstor_cinder.driver_common import GiB

LOG = logging.getLogger(__name__)

#: stats warn when fewer volumes than this still fit in the ranges
_ROOM_WARNING = 50


class Reporter:
    """The stats of one backend, and the repairs they trigger.

    Holds the automatic heal, whose progress outlives one update.
    """

    def __init__(self, conf: Any, controller: ctl.Controller,
                 version: str) -> None:
        self.conf = conf
        self.controller = controller
        self.version = version
        self.auto_heal: autoheal.AutoHeal | None = None

    def stats(self) -> dict[str, Any]:
        """Cinder's stats of the backend (one reading of the cluster)."""
        conf = self.conf
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
        report = {
            'volume_backend_name': backend,
            'vendor_name': 'BlackStor',
            'driver_version': self.version,
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
        return report

    def _heal(self, nodes_down: dict) -> dict | None:
        """Heal a node down longer than blackstor_heal_after; progress."""
        after = self.conf.safe_get('blackstor_heal_after')
        if not after:
            return None
        if self.auto_heal is None:
            conf = self.conf
            self.auto_heal = autoheal.AutoHeal(
                self.controller, after,
                conf.safe_get('blackstor_heal_parallel') or 2,
                conf.safe_get('blackstor_heal_sync_timeout')
                or heal.SYNC_TIMEOUT)
        self.auto_heal.observe(nodes_down)
        return self.auto_heal.progress.as_dict()

    def _repair(self, names: tuple[str, ...]) -> None:
        """Push the majority's .res to replicas that missed a change."""
        if not self.conf.safe_get('blackstor_auto_repair'):
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
        if (not self.conf.safe_get('blackstor_auto_repair')
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
        if not self.conf.safe_get('blackstor_auto_repair'):
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


def _gib(value: int) -> float:
    """Bytes to GiB, rounded down to 2 decimals (never over-report)."""
    return int(value * 100 // GiB) / 100
