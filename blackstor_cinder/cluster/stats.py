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
"""Stats: capacity as placement sees it, and what needs a repair.

One inventory round (the storage nodes and the configured clients) gives
the capacity the scheduler sees (``get_volume_stats``) and the lists the
periodic task repairs from: degraded and divergent volumes, temporary
clone snapshots left behind, two-replica volumes without a tiebreaker and
tiebreakers whose volume is gone.
"""

from __future__ import annotations

import dataclasses

from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import divergence
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import placement
from blackstor_cinder.cluster import snapshots
from blackstor_cinder.cluster import tiebreaker
from blackstor_cinder import protocol


@dataclasses.dataclass(frozen=True)
class ClusterStats:
    total_bytes: int
    free_bytes: int
    provisioned_bytes: int          # the volumes' sizes (see collect())
    largest_volume_bytes: int
    total_volumes: int
    degraded_volumes: tuple[str, ...]
    nodes_up: tuple[str, ...]
    nodes_down: dict[str, str]
    divergent_volumes: tuple[str, ...] = ()     # replicas' .res differ
    nodes_refused: dict[str, str] = dataclasses.field(
        default_factory=dict)       # answering, but unfit (see refused())
    # values of the minor/port ranges no node uses and no create holds:
    # the smaller is how many more volumes the backend can take
    minors_free: int = 0
    ports_free: int = 0
    # the replica count the capacity is for: the default one, or fewer
    # when fewer failure domains than that can be used (see collect())
    capacity_replicas: int = 0
    # temporary clone snapshot -> the storage nodes that still hold it
    # (see remove_temporary_snapshots)
    temporary_snapshots: dict[str, tuple[str, ...]] = dataclasses.field(
        default_factory=dict)
    # two-replica volumes without a tiebreaker (see ensure_tiebreaker)
    without_tiebreaker: tuple[str, ...] = ()
    # resource -> the storage node that still runs its tiebreaker although
    # no other storage node holds it (deleted while that node was down;
    # see remove_orphan_tiebreakers)
    orphan_tiebreakers: dict[str, str] = dataclasses.field(
        default_factory=dict)


def collect(ctl: core.Core) -> ClusterStats:
    """Capacity as placement sees it: one round trip per node.

    The inventories are compact ones (each resource's definition and
    state cut to what is read here: see the protocol's ``inventory``).

    The configured clients are asked too, for the minors and ports
    they use: ``minors_free`` and ``ports_free`` are the values of the
    ranges no node uses and no create of this process holds.

    ``provisioned_bytes`` counts each volume once, at the size its .res
    gives the DRBD device (the size Cinder asked for); a resource whose
    .res has no size (made before sizes were written) counts at its
    LV's size, which is a little more (metadata, extent rounding).

    Capacity is for the default replica count; while fewer failure
    domains (nodes, zones with ``spread``) than that can be used (nodes
    down or refused), for as many replicas as there are usable
    domains (``capacity_replicas``): reporting nothing would make the
    scheduler refuse the creates of types with fewer replicas too,
    which can still be placed; a create that needs more fails in
    placement, naming why.
    """
    inventories, failures, used = ctl.survey(compact=True)
    cands = ctl.candidates(inventories)
    cfg = ctl.config
    replicas = min(cfg.replicas, placement.domain_count(
        cands, cfg.zone_policy)) or cfg.replicas
    refused = ctl.refused(inventories)
    down = {}
    for name, exc in failures.items():
        # The agent answered that the node is not set up to serve
        # (its inventory's missing-dependency): refused, not down.
        (refused if exc.code == protocol.E_MISSING else down)[
            name] = exc.message
    minors_free, ports_free = ctl.allocator.room(*used)
    sizes: dict[str, int] = {}          # volume LV -> largest LV size
    requested: dict[str, int] = {}      # resource -> its .res size
    for report in inventories.values():
        for name, size in report.volumes.items():
            sizes[name] = max(size, sizes.get(name, 0))
        for name, size in report.device_sizes().items():
            requested[name] = max(size, requested.get(name, 0))
    temporary: dict[str, list[str]] = {}
    for node, report in sorted(inventories.items()):
        for snap in report.snapshots:
            if snap.startswith(snapshots.CLONE_PREFIX):
                temporary.setdefault(snap, []).append(node)
    degraded = []
    lacking = set()
    orphans = {} if down else tiebreaker.orphaned(inventories)
    for report in inventories.values():
        for name, res in report.resources.items():
            if _lacks_tiebreaker(ctl, res):
                lacking.add(name)
            state = (res or {}).get('state')
            local = inv.disk_states(state).get('local')
            if name in sizes and (local not in (None, 'UpToDate',
                                                'Diskless')
                                  or not inv.peers_connected(state)):
                degraded.append(name)
    return ClusterStats(
        total_bytes=placement.capacity(cands, replicas,
                                       cfg.zone_policy, 'total_bytes'),
        free_bytes=placement.capacity(cands, replicas,
                                      cfg.zone_policy, 'free_bytes'),
        provisioned_bytes=sum(requested.get(name, size)
                              for name, size in sizes.items()),
        largest_volume_bytes=placement.largest_volume(
            cands, replicas, cfg.zone_policy, cfg.over_subscription),
        capacity_replicas=replicas,
        total_volumes=len(sizes),
        degraded_volumes=tuple(sorted(set(degraded))),
        nodes_up=tuple(sorted(inventories)),
        nodes_down=down,
        nodes_refused=refused,
        minors_free=minors_free, ports_free=ports_free,
        # the clients' last reports too (see reconcile)
        temporary_snapshots={snap: tuple(nodes)
                             for snap, nodes in temporary.items()},
        without_tiebreaker=tuple(sorted(lacking)),
        orphan_tiebreakers=orphans,
        divergent_volumes=divergence.divergent_names(
            {name: report.resources for name, report in
             {**ctl.client_reports, **inventories}.items()}))


def setup_problems(ctl: core.Core) -> dict[str, str]:
    """Problems per node (empty when every node is usable)."""
    inventories, failures = ctl.inventories()
    problems = {name: exc.message for name, exc in failures.items()}
    problems.update(ctl.refused(inventories))
    return problems


def _lacks_tiebreaker(ctl: core.Core, entry: dict | None) -> bool:
    """An inventory entry of a two-replica volume without tiebreaker."""
    definition = (entry or {}).get('definition')
    try:
        spec = inv.spec_from_definition(definition, ctl.config)
    except (KeyError, TypeError, ValueError):
        return False
    return tiebreaker.missing(ctl.config, spec)
