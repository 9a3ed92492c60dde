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
"""Manage: adopt what is on the storage nodes under a volume's name.

Two kinds of existing volume:

* a DRBD resource made by this driver under another name (another
  deployment's, or one unmanaged earlier): renamed on every replica (LV,
  .res, DRBD resource: down, rename, up; DRBD peers know each other by
  node-id and address, not by name). Refused while it has clients (is
  attached), is Primary anywhere or a replica is unreachable.
* a bare thin LV in the pool: renamed and wrapped into a new resource with
  internal metadata in the room past its whole GiB (refused, with how
  many MiB are missing, without it), new replicas on other nodes, and a
  full sync from the LV (``primary --force``), never the initial-sync skip
  of new volumes: only the holder has the data.

Unmanage changes nothing on the nodes.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from typing import Any

from blackstor_cinder.cluster import controller as ctl_mod
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import create
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import placement
from blackstor_cinder.cluster import snapshots
from blackstor_cinder.cluster import sync
from blackstor_cinder.cluster import tiebreaker
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)
GiB = 1 << 30


@dataclasses.dataclass(frozen=True)
class Manageable:
    """Something on the storage nodes that a volume could adopt."""

    name: str                   # the reference's source-name
    kind: str                   # 'resource' or 'lv'
    size: int                   # bytes the volume gets (whole GiB)
    nodes: tuple[str, ...]
    reason_not_safe: str | None = None


def check_reference(name: Any) -> str:
    """The reference's name, or InvalidRequest (nothing is asked)."""
    try:
        return protocol.check_name('source-name', name)
    except protocol.ProtocolError as exc:
        raise errors.InvalidRequest(str(exc)) from None


# -- listing ------------------------------------------------------------------

def manageable(ctl: ctl_mod.Controller) -> list[Manageable]:
    """Resources and bare thin LVs on the storage nodes, sorted by name."""
    inventories, down = ctl.inventories()
    found: dict[str, Manageable] = {}
    held: dict[str, list[tuple[str, dict]]] = {}
    for node, report in sorted(inventories.items()):
        for name, entry in report.resources.items():
            held.setdefault(name, []).append((node, entry))
    for name, entries in held.items():
        found[name] = _resource_entry(name, entries, down,
                                      ctl.config.lv_path(name))
    for node, report in sorted(inventories.items()):
        for name, entry in report.bare_lvs.items():
            if name in found or entry.get('pool') != ctl.config.pool:
                continue
            found[name] = _lv_entry(name, node, entry, inventories)
    return [found[name] for name in sorted(found)]


def _resource_entry(name: str, entries: list[tuple[str, dict]],
                    down: dict[str, Any], disk: str) -> Manageable:
    definition = next((e['definition'] for _, e in entries
                       if e.get('definition')), None)
    nodes = tuple(node for node, _ in entries)
    if definition is None:
        return Manageable(name, 'resource', 0, nodes,
                          'its .res cannot be read')
    size = inv.definition_size(definition) or max(
        (e.get('device_size') or 0 for _, e in entries), default=0)
    states = {node: e.get('state') for node, e in entries}
    diskful = [h['name'] for h in definition['hosts'] if h['diskful']]
    clients = [h['name'] for h in definition['hosts']
               if not h['diskful'] and not h.get('tiebreaker')]
    reason = _not_adoptable(diskful, clients, states, down)
    elsewhere = sorted(h['name'] for h in definition['hosts']
                       if h['diskful'] and h.get('disk') != disk)
    if elsewhere and not reason:
        reason = (f'its replica on {", ".join(elsewhere)} is not in this '
                  'backend\'s pool')
    return Manageable(name, 'resource', -(-size // GiB) * GiB,
                      tuple(sorted(diskful)), reason)


def _not_adoptable(diskful: list[str], clients: list[str],
                   states: dict[str, dict | None],
                   down: dict[str, Any]) -> str | None:
    lost = sorted(n for n in diskful if n in down or n not in states)
    if lost:
        return f'replica on {", ".join(lost)} unreachable'
    if clients:
        return (f'attached to {", ".join(sorted(clients))}: detach it '
                'first')
    primary = sorted(n for n, s in states.items() if inv.is_primary(s))
    if primary:
        return f'in use (Primary) on {", ".join(primary)}'
    return None


def _lv_entry(name: str, node: str, entry: dict,
              inventories: dict[str, inv.NodeInventory]) -> Manageable:
    size = int(entry.get('volume_bytes') or 0)
    others = [n for n, r in inventories.items()
              if n != node and name in r.bare_lvs]
    missing = entry.get('missing_bytes')
    if others:
        reason = (f'a thin LV {name} is on {node} and on '
                  f'{", ".join(sorted(others))}: ambiguous')
    elif not size:
        reason = 'smaller than 1 GiB'
    elif entry.get('open'):
        reason = 'open (in use)'
    elif missing:
        reason = (f'no room for DRBD\'s internal metadata past '
                  f'{size // GiB} GiB: extend it by '
                  f'{-(-int(missing) // (1 << 20))} MiB')
    else:
        reason = None
    return Manageable(name, 'lv', size, (node,), reason)


def find(ctl: ctl_mod.Controller, name: str) -> Manageable:
    """What ``name`` refers to, or InvalidRequest/ResourceNotFound."""
    name = check_reference(name)
    entry = next((m for m in manageable(ctl) if m.name == name), None)
    if entry is None:
        raise errors.ResourceNotFound(
            f'no resource or bare thin LV {name} on the storage nodes')
    return entry


# -- adopting -------------------------------------------------------------

def adopt(ctl: ctl_mod.Controller, name: str, new: str,
          replicas: int, zone_policy: str) -> model.ResourceSpec:
    """Adopt ``name`` (a resource or a bare LV) as the resource ``new``.

    A two-replica result gets its tiebreaker afterwards (a renamed
    resource's old one is taken down first: it has no LV to rename);
    best effort, as at create.
    """
    name = check_reference(name)
    with ctl.resource_locks(name, new):
        spec = _adopt(ctl, name, new, replicas, zone_policy)
    if tiebreaker.wanted(spec) and spec.tiebreaker_host is None:
        try:
            LOG.info('%(res)s: %(what)s', {
                'res': new, 'what': ctl.ensure_tiebreaker(new)})
        except errors.ClusterError as exc:
            LOG.warning('%(res)s was adopted without a tiebreaker; the '
                        'stats task places one later: %(err)s',
                        {'res': new, 'err': exc})
        spec = ctl.find(new).spec or spec
    return spec


def _adopt(ctl: ctl_mod.Controller, name: str, new: str,
           replicas: int, zone_policy: str) -> model.ResourceSpec:
    done = ctl.find(new)
    entry = next((m for m in manageable(ctl) if m.name == name), None)
    if entry is None and name != new and done.spec is not None:
        _check_done(ctl, done)
        LOG.info('%(old)s is already adopted as %(new)s',
                 {'old': name, 'new': new})
        return done.spec
    if entry is None:
        raise errors.ResourceNotFound(
            f'no resource or bare thin LV {name} on the storage nodes')
    if entry.kind == 'resource':
        # a rename that ended half-way has the new name on some
        # replicas: _rename counts them and converges
        return _rename(ctl, name, new, done, zone_policy)
    if entry.reason_not_safe:
        raise errors.InvalidRequest(
            f'{name} cannot be managed: {entry.reason_not_safe}')
    if done.spec is not None or done.unreachable:
        raise errors.InvalidRequest(
            f'{new} exists on the storage nodes (or cannot be ruled '
            f'out): not wrapping {name} under that name')
    return _wrap(ctl, name, entry, new, replicas, zone_policy)


def _check_done(ctl: ctl_mod.Controller, done: core.Found) -> None:
    missing = [h.name for h in done.spec.diskful_hosts
               if h.name not in done.states]
    if missing or done.unreachable:
        raise errors.ClusterError(
            f'{done.spec.name} is not on every replica yet '
            f'({", ".join(sorted(missing or done.unreachable))}); retry '
            'when every replica answers')


def _rename(ctl: ctl_mod.Controller, old: str, new: str,
            done: core.Found, zone_policy: str | None = None
            ) -> model.ResourceSpec:
    found = ctl.find(old)
    spec = found.spec
    if spec is None:
        raise errors.ResourceNotFound(f'resource {old} not found')
    if old == new:
        return spec
    reason = _not_adoptable([h.name for h in spec.diskful_hosts],
                            [h.name for h in spec.client_hosts],
                            {**done.states, **found.states},
                            found.unreachable)
    if reason:
        raise errors.InvalidRequest(f'{old} cannot be managed: {reason}')
    wrong = [h.name for h in spec.diskful_hosts
             if h.disk != ctl.config.lv_path(old)]
    if wrong:
        raise errors.InvalidRequest(
            f'{old} cannot be managed: its replica on '
            f'{", ".join(wrong)} is not in pool {ctl.config.pool}')
    if done.spec is not None and (
            (done.spec.minor, done.spec.port) != (spec.minor, spec.port)
            or set(done.states) - {h.name for h in spec.diskful_hosts}):
        # not the rest of a rename of this resource: another volume
        raise errors.InvalidRequest(
            f'{new} exists on {", ".join(sorted(done.states))}: not '
            f'renaming {old} to it')
    old_tiebreaker = spec.tiebreaker_host
    if old_tiebreaker is not None:
        # no LV to rename there: taken down (a delete without a pool
        # removes a .res only), placed again under the new name by adopt()
        ctl.each_or_raise(f'rename of {old}: its tiebreaker',
                          ctl.nodes([old_tiebreaker]),
                          {'op': 'delete', 'resource': old})
        spec = spec.with_hosts(tuple(h for h in spec.hosts
                                     if not h.tiebreaker))
    # its replicas stay where they are; a heal places by the new type's
    renamed = dataclasses.replace(_renamed(spec, new, ctl.config),
                                  zone_policy=zone_policy or spec.zone_policy)
    nodes = ctl.nodes(spec.diskful_hosts)
    results, failures = ctl.each(nodes, _rename_request(ctl, renamed, old))
    if failures:
        back = [n for n in nodes if n.name in results]
        _, stuck = ctl.each(back, _rename_request(ctl, spec, new))
        for node, exc in stuck.items():
            LOG.error('Rename of %(new)s back to %(old)s on %(node)s failed '
                      '(a retry of the manage converges): %(err)s',
                      {'new': new, 'old': old, 'node': node, 'err': exc})
        raise errors.NodeOperationFailed(f'rename of {old} to {new}',
                                         failures)
    if len(nodes) > 1:
        sync.wait_connected(ctl, renamed, nodes[0])
    LOG.info('Adopted resource %(old)s as %(new)s on %(nodes)s',
             {'old': old, 'new': new,
              'nodes': ', '.join(n.name for n in nodes)})
    return renamed


def _renamed(spec: model.ResourceSpec, new: str,
             config: model.ClusterConfig) -> model.ResourceSpec:
    hosts = tuple(dataclasses.replace(h, disk=config.lv_path(new))
                  if h.diskful else h for h in spec.hosts)
    return dataclasses.replace(spec, name=new, hosts=hosts)


def _rename_request(ctl: ctl_mod.Controller, target: model.ResourceSpec,
                    current: str) -> dict:
    request = ctl.res_request('rename', target, pool=ctl.config.pool,
                              new_name=target.name)
    request['resource'] = current
    return request


def _wrap(ctl: ctl_mod.Controller, lv: str, entry: Manageable, new: str,
          replicas: int, zone_policy: str) -> model.ResourceSpec:
    cfg = ctl.config
    holder = entry.nodes[0]
    size = entry.size
    with ctl.lock(core.ALLOCATION_LOCK):
        inventories, down, used = ctl.survey()
        refused = ctl.refused(inventories)
        if holder in refused or holder not in inventories:
            raise errors.InvalidRequest(
                f'{lv} cannot be managed: its node {holder} does not '
                f'serve: {refused.get(holder) or down.get(holder)}')
        others: list[str] = []
        if replicas > 1:
            zone = cfg.node(holder).zone
            cands = [c for c in ctl.candidates(inventories)
                     if c.name != holder and not (
                         zone_policy == 'spread' and zone is not None
                         and c.zone == zone)]
            others = placement.place(cands, size, replicas - 1, zone_policy,
                                     cfg.over_subscription,
                                     ctl.unavailable(inventories, down))
        job = create.start(ctl, new, size, size, [
            (n, i) for i, n in enumerate([holder] + others)], used)
    spec = create.new_spec(ctl, new, job.reservation.minor,
                           job.reservation.port, job.hosts, size,
                           zone_policy)
    first = ctl.node(holder)
    peers = [ctl.node(n) for n in others]
    create_id = secrets.token_hex(16)
    try:
        try:
            ctl.call(first, ctl.res_request(
                'wrap', spec, pool=cfg.pool, lv=lv, size=size,
                max_peers=cfg.max_peers))
        except Exception as exc:
            raise errors.NodeOperationFailed(
                f'wrap of {lv}', {holder: exc}) from exc
        try:
            ctl.each_or_raise('create', peers, ctl.res_request(
                'create', spec, pool=cfg.pool, size=size,
                max_peers=cfg.max_peers, create_id=create_id))
            if peers:
                sync.wait_replicas(ctl, spec, [first] + peers,
                                   sync.ready_to_skip_sync,
                                   'connected to each other and '
                                   'Inconsistent')
            ctl.call(first, {'op': 'sync-source', 'resource': new})
            sync.wait_replicas(ctl, spec, [first], sync.sync_started,
                               f'syncing from {holder}')
        except BaseException:
            _unwrap(ctl, spec, lv, first, peers, create_id)
            raise
    finally:
        create.end(ctl, job)
    LOG.info('Adopted thin LV %(lv)s of %(holder)s as %(new)s (%(size)s '
             'bytes), full sync to %(peers)s',
             {'lv': lv, 'holder': holder, 'new': new, 'size': size,
              'peers': ', '.join(others) or 'no other replica'})
    return spec


def _unwrap(ctl: ctl_mod.Controller, spec: model.ResourceSpec, lv: str,
            first: model.Node, peers: list[model.Node],
            create_id: str) -> None:
    """Roll a wrap back: new replicas removed, the LV bare again."""
    _, failures = ctl.each(peers, {'op': 'delete', 'resource': spec.name,
                                   'pool': ctl.config.pool,
                                   'create_id': create_id})
    try:
        ctl.call(first, ctl.res_request(
            'wrap', spec, pool=ctl.config.pool, lv=lv, size=spec.size,
            max_peers=ctl.config.max_peers, undo=True))
    except Exception as exc:
        failures[first.name] = exc
    for node, exc in failures.items():
        LOG.error('Rollback of the wrap of %(lv)s as %(res)s on %(node)s '
                  'failed: %(err)s', {'lv': lv, 'res': spec.name,
                                      'node': node, 'err': exc})


# -- snapshots --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ManageableSnapshot:
    """A snapshot LV of ours on the storage nodes, and of which volume."""

    name: str
    volume: str | None          # the resource it is a snapshot of
    size: int                   # bytes (whole GiB)
    nodes: tuple[str, ...]
    reason_not_safe: str | None = None


def manageable_snapshots(ctl: ctl_mod.Controller
                         ) -> list[ManageableSnapshot]:
    """Snapshot LVs on the storage nodes (temporary clone ones left out)."""
    inventories, down = ctl.inventories()
    held: dict[str, dict[str, tuple[str | None, int]]] = {}
    for node, report in sorted(inventories.items()):
        for name, size in report.snapshots.items():
            if name.startswith(snapshots.CLONE_PREFIX):
                continue
            held.setdefault(name, {})[node] = (
                report.snapshot_origins.get(name), size)
    found = []
    for name, on in sorted(held.items()):
        origins = {origin for origin, _ in on.values()}
        volume = origins.pop() if len(origins) == 1 else None
        found.append(_snapshot_entry(name, volume, on, inventories, down))
    return found


def _snapshot_entry(name: str, volume: str | None,
                    on: dict[str, tuple[str | None, int]],
                    inventories: dict[str, inv.NodeInventory],
                    down: dict[str, Any]) -> ManageableSnapshot:
    nodes = tuple(sorted(on))
    if volume is None:
        return ManageableSnapshot(
            name, None, 0, nodes, 'the volume it was taken of is gone or '
            'differs between nodes')
    definition = next((r.resources[volume]['definition']
                       for r in inventories.values()
                       if (r.resources.get(volume) or {}).get('definition')),
                      None)
    if definition is None:
        return ManageableSnapshot(name, volume, 0, nodes,
                                  f'no resource {volume} on the nodes')
    replicas = sorted(h['name'] for h in definition['hosts']
                      if h['diskful'])
    lost = [n for n in replicas if n in down]
    missing = [n for n in replicas if n not in on and n not in down]
    reason = None
    if lost:
        reason = f'replica on {", ".join(lost)} unreachable'
    elif missing:
        reason = f'not on the replica(s) {", ".join(missing)} of {volume}'
    # As large as the volume was when it was taken: its LV the size of
    # the volume's LV means the volume's size; else what it holds
    smallest = min(size for _, size in on.values())
    volume_lv = min((inventories[n].volumes.get(volume, 0) for n in on
                     if n in inventories), default=0)
    device = inv.definition_size(definition)
    size = (-(-device // GiB) * GiB if device and smallest >= volume_lv
            else smallest // GiB * GiB)
    return ManageableSnapshot(name, volume, size, nodes, reason)


def find_snapshot(ctl: ctl_mod.Controller, name: Any,
                  volume: str) -> ManageableSnapshot:
    """The snapshot ``name`` of ``volume``, or InvalidRequest/NotFound."""
    name = check_reference(name)
    entry = next((s for s in manageable_snapshots(ctl) if s.name == name),
                 None)
    if entry is None:
        raise errors.ResourceNotFound(
            f'no snapshot {name} on the storage nodes')
    if entry.volume != volume:
        raise errors.InvalidRequest(
            f'{name} is a snapshot of {entry.volume or "no known volume"}, '
            f'not of {volume}')
    if entry.reason_not_safe:
        raise errors.InvalidRequest(
            f'{name} cannot be managed: {entry.reason_not_safe}')
    return entry


def adopt_snapshot(ctl: ctl_mod.Controller, volume: str, name: Any,
                   new: str) -> None:
    """Rename the snapshot ``name`` of ``volume`` on every replica."""
    name = check_reference(name)
    with ctl.resource_locks(volume):
        found = ctl.find(volume)
        if found.spec is None:
            raise errors.ResourceNotFound(f'resource {volume} not found')
        ctl.require_replicas(found, f'manage of snapshot {name}')
        nodes = ctl.nodes(found.spec.diskful_hosts)
        if name != new:
            try:
                find_snapshot(ctl, name, volume)
            except errors.ResourceNotFound:
                if not any(new in r.snapshots
                           for r in ctl.inventories()[0].values()):
                    raise           # else a retry: the renames converge
        results, failures = ctl.each(nodes, lambda n: {
            'op': 'snapshot-rename', 'resource': volume,
            'pool': ctl.config.pool, 'snapshot': name, 'new_name': new})
        if failures:
            back = [n for n in nodes if (results.get(n.name) or {}).get(
                'renamed')]
            ctl.each(back, {'op': 'snapshot-rename', 'resource': volume,
                            'pool': ctl.config.pool, 'snapshot': new,
                            'new_name': name})
            raise errors.NodeOperationFailed(
                f'rename of snapshot {name} to {new}', failures)
    LOG.info('Adopted snapshot %(old)s of %(vol)s as %(new)s',
             {'old': name, 'vol': volume, 'new': new})
