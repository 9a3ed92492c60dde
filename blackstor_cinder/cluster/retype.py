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
"""Retype live: a volume's replica count and zone policy change in place.

What the volume should be (``replicas``, ``zone_policy``) is compared
with what its nodes hold, so a retype that stopped half-way converges
when run again, and one that finds nothing to change changes nothing.

:func:`plan` decides, before anything changes: which replicas stay (the
ones a guest uses first, then in distinct zones for ``spread``, then the
nodes with the most room), which go, and where new ones go (placement's
rules: room, zones, the volume's minor and port free there). A plan that
cannot be met (more replicas than nodes or zones, no room, no bitmap slot
left, a replica in use that would have to go) is refused with the reason
and nothing is changed.

:func:`retype` then works as an evacuation does, live: each new replica
first (LV, ``create-md``, every host's .res, a full sync from the others;
see :mod:`membership`), waiting until it is UpToDate (without the
volume's lock: an attach or detach need not wait for the sync), then the
replicas that go (with their snapshot copies). A two-replica volume gets its
tiebreaker (``Controller.ensure_tiebreaker``); any other count loses it.
The tiebreaker's node is a new replica's last choice: only when no other
node fits is the tiebreaker removed first to make room.

Snapshots live on the replicas' nodes: a new replica would hold none
(their revert and clones need every replica's copy), so a retype that
adds a replica to a volume with snapshots is refused as ``migrate`` (the
caller lets Cinder migrate it, which Cinder refuses while the volume has
snapshots: the user is told to delete them). Removing a replica removes
its snapshot copies; the other replicas keep theirs.
"""

from __future__ import annotations

import dataclasses
import logging

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import heal
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import membership
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import placement
from blackstor_cinder.cluster import tiebreaker
from blackstor_cinder.cluster import transport as tp

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The changes that make a volume what its new type says."""

    keep: tuple[str, ...]
    add: tuple[str, ...]
    remove: tuple[str, ...]
    # the tiebreaker's node (None: it has none, or it stays)
    drop_tiebreaker: str | None = None
    # the tiebreaker goes before the adds (its node takes a replica)
    drop_tiebreaker_first: bool = False

    @property
    def changes(self) -> bool:
        return bool(self.add or self.remove or self.drop_tiebreaker)


@dataclasses.dataclass
class Result:
    """What a retype did; ``migrate``: why it did nothing (migrate)."""

    added: list[str] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    tiebreaker: str = ''
    migrate: str | None = None


def retype(ctl, name: str, replicas: int, zone_policy: str,
           sync_timeout: float = heal.SYNC_TIMEOUT) -> Result:
    """Give ``name`` ``replicas`` replicas placed by ``zone_policy``, live.

    Raises InvalidRequest or PlacementError when the change cannot be
    made (nothing changed), ClusterError when a step fails (run again:
    it converges). Returns ``Result.migrate`` set when the change must be
    a migration instead (nothing changed).
    """
    _check_request(ctl.config, replicas, zone_policy)
    result = Result()
    lock = ctl.resource_lock(name)
    with lock:
        found = ctl.require(name)
        spec = found.spec
        inventories, down = ctl.inventories()
        steps = plan(ctl, spec, found, inventories, down, replicas,
                     zone_policy)
        if steps.changes:
            # (a volume that is as asked stays as it is, degraded or not)
            _require_healthy(found)
        snapshots = sorted(
            snap for node in (h.name for h in spec.diskful_hosts)
            if node in inventories
            for snap, origin in inventories[node].snapshot_origins.items()
            if origin == name)
        if steps.add and snapshots:
            result.migrate = (
                f'{name} has snapshots ({", ".join(snapshots)}): a new '
                f'replica would hold no copy of them')
            return result
        if steps.changes:
            LOG.info('Retype of %(res)s to %(n)d replica(s), zones '
                     '%(zones)s: keeps %(keep)s, adds %(add)s, removes '
                     '%(remove)s', {
                         'res': name, 'n': replicas, 'zones': zone_policy,
                         'keep': ', '.join(steps.keep),
                         'add': ', '.join(steps.add) or 'none',
                         'remove': ', '.join(steps.remove) or 'none'})
        _run(ctl, lock, spec, steps, inventories, sync_timeout, result)
        _record_zones(ctl, name, zone_policy)
    if replicas == tiebreaker.REPLICAS:
        # takes the volume's lock itself; a volume that has one keeps it
        try:
            result.tiebreaker = ctl.ensure_tiebreaker(name)
        except errors.ClusterError as exc:
            # the replicas are as asked; the stats' repair tries again
            result.tiebreaker = f'failed: {exc}'
            LOG.warning('%(res)s has its %(n)d replicas but no tiebreaker '
                        'yet: %(err)s', {'res': name, 'n': replicas,
                                         'err': exc})
    return result


def _check_request(config: model.ClusterConfig, replicas: int,
                   zone_policy: str) -> None:
    if zone_policy not in placement.ZONE_POLICIES:
        raise errors.InvalidRequest(
            f'unknown zone policy {zone_policy!r}; use one of '
            f'{placement.ZONE_POLICIES}')
    storage = len(config.storage_nodes)
    if not isinstance(replicas, int) or not 1 <= replicas <= storage:
        raise errors.InvalidRequest(
            f'{replicas!r} replicas asked but the backend has '
            f'{storage} storage nodes (1 to {storage} replicas)')


def _require_healthy(found) -> None:
    """Every replica answers and is UpToDate, or nothing is changed."""
    spec = found.spec
    unreachable = {h.name: found.unreachable[h.name]
                   for h in spec.diskful_hosts
                   if h.name in found.unreachable}
    if unreachable:
        raise errors.NodeOperationFailed(
            f'retype of {spec.name}: every replica must answer',
            unreachable)
    disks = {h.name: inv.disk_states(found.states.get(h.name)).get('local')
             for h in spec.diskful_hosts}
    bad = {n: d for n, d in disks.items() if d != 'UpToDate'}
    if bad:
        raise errors.ClusterError(
            f'retype of {spec.name}: every replica must be UpToDate (a '
            f'new one may still be syncing; retry once it is): '
            + ', '.join(f'{n}={d}' for n, d in sorted(bad.items())))


def plan(ctl, spec: model.ResourceSpec, found,
         inventories: dict[str, inv.NodeInventory],
         down: dict[str, tp.NodeError], replicas: int,
         zone_policy: str) -> Plan:
    """The replicas to keep, add and remove; refused when impossible."""
    cfg = ctl.config
    name = spec.name
    in_use = {h.name for h in spec.diskful_hosts
              if inv.is_primary(found.states.get(h.name))}

    def room(node: str) -> int:
        report = inventories.get(node)
        pool = report.pools.get(cfg.pool) if report else None
        return pool.free_bytes if pool else 0

    def zone(node: str) -> str:
        known = cfg.node(node)
        return known.zone if known is not None and known.zone else node

    current = sorted(
        (h.name for h in spec.diskful_hosts),
        key=lambda n: (n not in in_use, cfg.node(n) is None
                       or not cfg.node(n).storage, -room(n), n))
    keep: list[str] = []
    zones: set[str] = set()
    for node in current:
        if len(keep) == replicas:
            break
        if zone_policy == placement.SPREAD and zone(node) in zones:
            continue
        keep.append(node)
        zones.add(zone(node))
    remove = tuple(sorted(set(current) - set(keep)))
    busy = sorted(set(remove) & in_use)
    if busy:
        raise errors.ClusterError(
            f'{name}: the replica on {", ".join(busy)} would have to go '
            f'but it is Primary there (a guest uses it on that node)')
    tie = spec.tiebreaker_host
    add, tie_first = _place(ctl, spec, inventories, down,
                            replicas - len(keep),
                            zone_policy, zones, tie)
    drop = tie.name if tie is not None and (
        replicas != tiebreaker.REPLICAS or tie_first) else None
    peak = len(spec.hosts) - bool(tie_first) + len(add)
    if peak > spec.max_peers + 1:
        raise errors.InvalidRequest(
            f'{name} has {len(spec.hosts)} hosts (replicas, tiebreaker and '
            f'clients): {len(add)} more replica(s) exceed the '
            f'{spec.max_peers + 1} its metadata has room for '
            f'(blackstor_max_peers = {spec.max_peers}); detach a client '
            f'first')
    return Plan(tuple(sorted(keep)), add, remove, drop, tie_first)


def _place(ctl, spec: model.ResourceSpec,
           inventories: dict[str, inv.NodeInventory],
           down: dict[str, tp.NodeError], count: int,
           zone_policy: str, zones: set[str],
           tie: model.ResourceHost | None) -> tuple[tuple[str, ...], bool]:
    """The nodes of ``count`` new replicas; whether the tiebreaker's is."""
    if count <= 0:
        return (), False
    cfg = ctl.config
    size = _size(spec, inventories)
    taken = {h.name for h in spec.hosts if tie is None or h.name != tie.name}
    cands = [c for c in ctl.candidates(inventories)
             if c.name not in taken
             and not (zone_policy == placement.SPREAD
                      and (c.zone or c.name) in zones)
             and not inventories[c.name].taken_by_others(
                 spec.name, spec.minor, spec.port)]
    unavailable = {**{n: e.message for n, e in down.items()},
                   **ctl.refused(inventories)}
    without_tie = [c for c in cands if tie is None or c.name != tie.name]
    tries = [without_tie] + ([cands] if len(cands) > len(without_tie)
                             else [])
    for options in tries:
        try:
            chosen = placement.place(options, size, count, zone_policy,
                                     cfg.over_subscription, unavailable)
        except errors.PlacementError as exc:
            why = exc
            continue
        return tuple(chosen), tie is not None and tie.name in chosen
    raise errors.PlacementError(
        f'{spec.name}: {count} more replica(s) cannot be placed (not on '
        f'its replicas and clients'
        + (', nor in the zones of the replicas it keeps'
           if zone_policy == placement.SPREAD else '')
        + f'): {why}') from why


def _size(spec: model.ResourceSpec,
          inventories: dict[str, inv.NodeInventory]) -> int:
    """The device size a new replica is made for."""
    if spec.size:
        return spec.size
    return max((r.volumes.get(spec.name, 0) for r in inventories.values()),
               default=0)


def _run(ctl, lock, spec: model.ResourceSpec, steps: Plan,
         inventories: dict[str, inv.NodeInventory], sync_timeout: float,
         result: Result) -> None:
    """Carry out ``steps``: tiebreaker (if in the way), adds, removals.

    ``lock`` (the volume's, held) is released while a new replica syncs
    (``membership.wait_unlocked``): the volume can be attached or
    detached meanwhile.
    """
    name = spec.name
    if steps.drop_tiebreaker_first:
        spec = _drop_tiebreaker(ctl, spec, steps.drop_tiebreaker)
        result.tiebreaker = f'removed from {steps.drop_tiebreaker}'
    size = _size(spec, inventories)
    for target in steps.add:
        new = membership.add_replica(ctl, name, target, size)
        membership.wait_unlocked(ctl, lock, new, target, sync_timeout)
        result.added.append(target)
    for node in steps.remove:
        membership.remove_replica(ctl, name, node)
        result.removed.append(node)
        for snap in sorted(s for s, o in
                           inventories[node].snapshot_origins.items()
                           if o == name):
            ctl.call(ctl.node(node), {'op': 'snapshot-delete',
                                      'pool': ctl.config.pool,
                                      'snapshot': snap})
    if steps.drop_tiebreaker and not steps.drop_tiebreaker_first:
        _drop_tiebreaker(ctl, ctl.require(name).spec, steps.drop_tiebreaker)
        result.tiebreaker = f'removed from {steps.drop_tiebreaker}'


def _record_zones(ctl, name: str, zone_policy: str) -> None:
    """Every host's .res records ``zone_policy`` (heal places by it).

    Once the replicas are as asked, so a retype that fails before keeps
    the old type's; a retype that finds it recorded changes nothing. A
    replica that does not answer gets it with its next .res.
    """
    found = ctl.require(name)
    if found.spec.zone_policy == zone_policy:
        return
    spec = dataclasses.replace(found.spec, zone_policy=zone_policy)
    ctl.each_or_raise('adjust', [ctl.node(h.name) for h in spec.diskful_hosts
                                 if h.name not in found.unreachable],
                      ctl.res_request('adjust', spec))
    membership.adjust_clients(ctl, spec)
    LOG.info('%(res)s: zone policy %(zones)s recorded in its .res',
             {'res': name, 'zones': zone_policy})


def _drop_tiebreaker(ctl, spec: model.ResourceSpec,
                     node: str) -> model.ResourceSpec:
    """``spec`` without its tiebreaker on ``node``: the spec now held.

    The tiebreaker goes down first (a delete without pool: its .res and
    DRBD resource, never an LV); then the replicas and clients get the
    .res without it and forget its node-id, so it no longer counts as a
    missing diskless peer in their quorum.
    """
    host = spec.host(node)
    if host is None or not host.tiebreaker:
        return spec
    try:
        ctl.call(ctl.node(node), {'op': 'delete', 'resource': spec.name})
    except tp.NodeError as exc:
        raise errors.NodeOperationFailed(
            f'removal of the tiebreaker of {spec.name}', {node: exc}
        ) from exc
    new = tiebreaker.without(spec, node)
    ctl.each_or_raise('adjust', [ctl.node(h.name)
                                 for h in new.diskful_hosts],
                      ctl.res_request('adjust', new))
    membership.adjust_clients(ctl, new)
    ctl.forget_peers(new, [host.node_id])
    LOG.info('%(res)s: tiebreaker on %(node)s removed',
             {'res': spec.name, 'node': node})
    return new
