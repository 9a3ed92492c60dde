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
"""The snapshot family: snapshots, volumes from them, clones.

A snapshot is taken on every replica at one instant, I/O suspended on
every node of the volume (:func:`create_snapshot`); a volume from a
snapshot is a create on the snapshot's nodes with the source's node-ids
(:func:`create_volume_from_snapshot`); a clone is a temporary snapshot, a
volume from it, the snapshot removed (:func:`clone_volume`). Revert is in
``resize``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Iterable

from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import create
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import placement
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol

if TYPE_CHECKING:
    from blackstor_cinder.cluster import controller

LOG = logging.getLogger(__name__)

#: Prefix of clone_volume's temporary snapshots; nothing else uses it.
CLONE_PREFIX = 'clone-'


def clone_lock_name(temporary: str) -> str:
    """Held by the clone whose temporary snapshot is ``temporary``."""
    return f'blackstor-{temporary}'


def create_snapshot(ctl: core.Core, volume: str, snapshot: str) -> None:
    """Crash-consistent snapshot of every replica at one instant.

    I/O is suspended on every node of the resource (clients included)
    while the replicas are snapshotted; refused when a replica is
    unreachable, since a snapshot must exist wherever the volume does.
    A client that cannot be suspended (unreachable over SSH) may still
    write over DRBD: the snapshot goes on only while no replica is
    connected to it, checked before and after the thin snapshots.

    Each step has ``io_suspend_timeout``; every node was asked to
    resume by itself after ``SUSPEND_STEPS * io_suspend_timeout`` (a
    lease; the agent's drbdsetup gets a step's share of it), and
    the snapshot is discarded when its steps ended later than that.
    Every node a suspend was sent to is resumed, a timed-out one too
    (its suspend may have taken effect), retried until the lease ends.
    Under the volume's resource lock (the facade's ``core.one_resource``
    takes it).

    Three round trips per replica: the first suspend goes to every
    storage node and reports what ``status`` would (``report``; a node
    without the resource running changes nothing), so no ``status``
    comes first; the clients it names are suspended next, before any
    snapshot. A refusal found then (a replica unreachable) resumes what
    was suspended. When a node is known to run a DRBD kernel whose
    suspend does not drain, or an agent does not know ``report``, the
    volume is looked up first as before, so such a snapshot is refused
    before anything is suspended.
    """
    step = ctl.config.io_suspend_timeout
    lease = protocol.SUSPEND_STEPS * step
    request = {'op': 'suspend-io', 'resource': volume, 'lease': lease}
    if any(inv.kernel_too_old(version)
           for version in ctl.kernel_versions.values()):
        _snapshot(ctl, volume, snapshot, ctl.require(volume), request)
        return
    started = time.monotonic()
    results, failures = ctl.each(ctl.config.storage_nodes,
                                 dict(request, report=True), timeout=step)
    older = {name for name, exc in failures.items()
             if exc.code == protocol.E_INVALID and exc.field == 'report'}
    asked = [node for node in ctl.config.storage_nodes
             if results.get(node.name, {}).get('suspended')
             or (node.name in failures and node.name not in older
                 and not core.never_reached(failures[node.name]))]
    if older:
        # an agent before ``report``: suspended nothing; as before
        _resume(ctl, volume, asked, set(), started + lease)
        _snapshot(ctl, volume, snapshot, ctl.require(volume), request)
        return
    _snapshot(ctl, volume, snapshot, ctl.found(results, failures), request,
              first=(started, asked, failures, results))


def _snapshot(ctl: core.Core, volume: str, snapshot: str,
              found: core.Found, request: dict,
              first: tuple[float, list[model.Node],
                           dict[str, tp.NodeError],
                           dict[str, dict]] | None = None) -> None:
    """:func:`create_snapshot` once the volume's nodes are known.

    ``first``: the storage nodes were sent the suspend already (when,
    those to resume, those that failed, the replies); else every node
    is suspended here, after the checks.
    """
    step = ctl.config.io_suspend_timeout
    resume_on = list(first[1]) if first else []
    started = first[0] if first else time.monotonic()
    not_sent: set[str] = set()
    try:
        spec = ctl.require(volume, found).spec
        ctl.require_replicas(found, 'snapshot of ' + volume)
        diskful = ctl.nodes(spec.diskful_hosts)
        replicas = {n.name for n in diskful}
        # the tiebreaker is never Primary: it has no I/O to suspend
        everyone = ctl.nodes(h for h in spec.hosts if not h.tiebreaker)
        _require_draining_suspend(ctl, volume, everyone)
        # the storage nodes' suspend was sent already: each that runs
        # the resource and is not suspended (its .res there names it the
        # tiebreaker) is suspended now, with the clients
        storage = ({name for name, reply in first[3].items()
                    if reply.get('suspended') or not reply.get('running')}
                   if first else set()) | set(first[2] if first else ())
        to_suspend = [n for n in everyone if n.name not in storage]
        if not first:
            started = time.monotonic()
        resume_on += to_suspend
        _, unsuspended = ctl.each(to_suspend, request, timeout=step)
        not_sent = {name for name, exc in unsuspended.items()
                    if core.never_reached(exc)}
        if first:
            unsuspended.update(
                (n.name, first[2][n.name]) for n in everyone
                if n.name in first[2])
        on_replicas = {name: exc for name, exc in unsuspended.items()
                       if name in replicas}
        if on_replicas:
            raise errors.NodeOperationFailed('suspend-io', on_replicas)
        if unsuspended:
            _require_cut_off(ctl, volume, diskful, unsuspended, step)
        _, failures = ctl.each(diskful, {
            'op': 'snapshot-create', 'resource': volume,
            'pool': ctl.config.pool, 'snapshot': snapshot},
            timeout=step)
        if failures:
            delete_snapshot_on(ctl, diskful, snapshot, quiet=True)
            raise errors.NodeOperationFailed('snapshot-create',
                                             failures)
        try:
            if unsuspended:         # still cut off after the snapshots
                _require_cut_off(ctl, volume, diskful, unsuspended,
                                 step, warn=False)
            if time.monotonic() >= started + request['lease']:
                raise errors.ClusterError(
                    f'snapshot {snapshot} of {volume} took longer than '
                    f'the {request["lease"]:.0f}s lease of the suspended '
                    f'I/O: a node may have resumed I/O before every '
                    f'replica was snapshotted; discarded')
        except errors.ClusterError:
            delete_snapshot_on(ctl, diskful, snapshot, quiet=True)
            raise
    finally:
        # Never leave I/O suspended, whatever happened above.
        resume_failures = _resume(ctl, volume, resume_on, not_sent,
                                  started + request['lease'])
    if resume_failures:
        raise errors.NodeOperationFailed('resume-io', resume_failures)
    LOG.info('Snapshot %(snap)s of %(res)s taken on %(nodes)s',
             {'snap': snapshot, 'res': volume,
              'nodes': ', '.join(sorted(replicas))})


def _require_draining_suspend(ctl: core.Core, volume: str,
                              nodes: Iterable[model.Node]) -> None:
    """Refuse a snapshot when a node's suspend-io would not drain.

    Known from the nodes' last inventory (stats, creates, attaches).
    """
    old = {node.name: why for node in nodes
           if node.name in ctl.kernel_versions
           and (why := inv.kernel_too_old(
               ctl.kernel_versions[node.name]))}
    if old:
        raise errors.ClusterError(
            f'snapshot of {volume} refused: ' + '; '.join(
                f'{name}: {why}' for name, why in sorted(old.items())))


def _require_cut_off(ctl: core.Core, volume: str, replicas: list[model.Node],
                     why: dict[str, tp.NodeError], timeout: float,
                     warn: bool = True) -> None:
    """Refuse unless no replica is connected to a client of ``why``.

    ``why``: the clients whose suspend-io failed, and how.

    A client whose I/O could not be suspended writes through DRBD as
    long as it is connected: its writes would reach the replicas
    around their snapshots at different instants.
    """
    clients = sorted(why)
    results, failures = ctl.each(
        replicas, {'op': 'status', 'resource': volume}, timeout=timeout)
    if failures:
        raise errors.NodeOperationFailed(
            f'snapshot of {volume}: checking that the clients '
            f'{", ".join(clients)} which could not be suspended are '
            f'cut off', failures)
    connected = sorted(
        {client for reply in results.values()
         for client in inv.connected_peers(reply.get('state'))
         if client in clients})
    if connected:
        raise errors.ClusterError(
            f'snapshot of {volume} refused: I/O of client(s) '
            f'{", ".join(connected)} could not be suspended ('
            + '; '.join(f'{name}: {getattr(why.get(name), "message", "")}'
                        for name in connected)
            + ') and the replicas are still connected to them, so '
              'they may be writing; retry when the client answers or '
              'is detached')
    for client in clients if warn else ():
        LOG.warning('Client %(node)s of %(res)s could not be suspended '
                    'but no replica is connected to it; snapshotting '
                    'without it', {'node': client, 'res': volume})


def _resume(ctl: core.Core, volume: str, nodes: list[model.Node],
            not_sent: set[str], deadline: float
            ) -> dict[str, tp.NodeError]:
    """resume-io on every node, retried until ``deadline``.

    A node the suspend never reached (connection refused) gets one
    try; the others are retried while they fail, since their suspend
    may have taken effect; past the deadline their lease resumes them.
    """
    pending = list(nodes)
    request = {'op': 'resume-io', 'resource': volume}
    while True:
        _, failures = ctl.each(pending, request,
                               timeout=ctl.config.io_suspend_timeout)
        pending = [n for n in pending if n.name in failures
                   and n.name not in not_sent]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(ctl.poll_interval)
    for node_name, exc in failures.items():
        LOG.error('resume-io of %(res)s on %(node)s failed: %(err)s; '
                  'its lease resumes I/O by itself',
                  {'res': volume, 'node': node_name, 'err': exc})
    return {name: exc for name, exc in failures.items()
            if name not in not_sent}


def delete_snapshot_on(ctl: core.Core, nodes: list[model.Node], snapshot: str,
                       quiet: bool = False,
                       required: set[str] | None = None) -> None:
    """snapshot-delete on ``nodes``; raise for the ``required`` ones.

    ``required`` None: every node. A failure not raised is logged.
    """
    _, failures = ctl.each(nodes, {'op': 'snapshot-delete',
                                   'pool': ctl.config.pool,
                                   'snapshot': snapshot})
    needed = {name: exc for name, exc in failures.items()
              if required is None or name in required}
    if needed and not quiet:
        raise errors.NodeOperationFailed('snapshot-delete', needed)
    for node_name, exc in sorted(failures.items()):
        if node_name in needed:
            LOG.error('Snapshot %(snap)s may be left on %(node)s: '
                      '%(err)s',
                      {'snap': snapshot, 'node': node_name, 'err': exc})
        else:
            LOG.warning('Snapshot %(snap)s: %(node)s holds no replica '
                        'of its volume and could not be asked to '
                        'remove it (best effort): %(err)s',
                        {'snap': snapshot, 'node': node_name,
                         'err': exc})


def delete_snapshot(ctl: core.Core, snapshot: str,
                    volume: str | None = None) -> None:
    """Remove a snapshot from the storage nodes; gone is success.

    ``volume``: the snapshot's source. Its replicas (where the
    snapshot was taken) must all answer; the other storage nodes are
    asked too, best effort, so a node down that never held the volume
    does not fail the delete. Without ``volume``, or when no node that
    answers knows it, every storage node must answer. The delete runs
    under the source's resource lock, as the snapshot's create does,
    so a delete never races a create still running (Cinder lets a
    snapshot whose create timed out be deleted): it waits, then
    removes what the create made. The driver always names it.
    """
    if volume is None:
        delete_snapshot_on(ctl, list(ctl.config.storage_nodes),
                           snapshot)
        return
    with ctl.resource_lock(volume):
        required = None
        found = ctl.find(volume)
        if found.spec is not None:
            required = {h.name for h in found.spec.diskful_hosts}
        delete_snapshot_on(ctl, list(ctl.config.storage_nodes),
                           snapshot, required=required)


def create_volume_from_snapshot(ctl: core.Core, name: str, snapshot: str,
                                source: str, snapshot_size: int,
                                size: int) -> model.ResourceSpec:
    """Copy-on-write volume on the snapshot's nodes, same node-ids.

    Bitmap slots in the metadata that comes with the snapshot are keyed
    by node-id, so the new resource keeps the source's node-ids. It is
    brought up at the snapshot's size and grown online afterwards:
    internal metadata sits at the end of the LV and must move with it.

    Under the source's resource lock (the snapshot is one of its LVs)
    and the new volume's. The decision is a create's: every node of
    the snapshot must be available and have room for ``size`` more
    bytes within ``max_over_subscription_ratio``.
    """
    core.check_fits(snapshot_size, size)
    cfg = ctl.config
    with ctl.resource_lock(source):
        found = ctl.require(source)
        ctl.require_replicas(found, 'volume from snapshot ' + snapshot)
        hosts = [(h.name, h.node_id) for h in found.spec.diskful_hosts]

        def decide(inventories: dict[str, inv.NodeInventory],
                   down: dict[str, tp.NodeError]
                   ) -> list[tuple[str, int]]:
            placement.require_room(
                ctl.candidates(inventories), [n for n, _ in hosts],
                size, cfg.over_subscription,
                ctl.unavailable(inventories, down))
            return hosts

        return create.run(
            ctl, name, snapshot_size, size, decide,
            lambda spec: ctl.res_request(
                'create-from-snapshot', spec, pool=cfg.pool,
                snapshot=snapshot, size=snapshot_size),
            # on the source's nodes: placed as the source was
            fresh=False, zone_policy=found.spec.zone_policy)


def clone_volume(ctl: controller.Controller, name: str, source: str,
                 source_size: int, size: int) -> model.ResourceSpec:
    """A temporary snapshot, a volume from it, the snapshot removed.

    The temporary snapshot (``clone-<name>``) lives under the clone's
    lock. A storage node that cannot be reached at the end keeps it;
    the stats list it (``temporary_snapshots``) and
    :func:`remove_temporary_snapshots` removes it once the node
    answers again.
    """
    temp = f'{CLONE_PREFIX}{name}'[:63]
    with ctl.lock(clone_lock_name(temp)):
        try:
            # inside the try: a snapshot that failed late (its resume,
            # say) may exist on some replicas and is removed too
            ctl.create_snapshot(source, temp)
            return ctl.create_volume_from_snapshot(name, temp, source,
                                                   source_size, size)
        finally:
            try:
                ctl.delete_snapshot(temp, source)
            except errors.ClusterError as exc:
                LOG.warning('Temporary snapshot %(snap)s of the clone '
                            '%(name)s is left behind: %(err)s; the '
                            'stats update removes it once the node '
                            'answers', {'snap': temp, 'name': name,
                                        'err': exc})


def remove_temporary_snapshots(ctl: core.Core, snapshots: Iterable[str]
                               ) -> dict[str, str]:
    """Remove the temporary snapshots clones left; what happened.

    Only names with :data:`CLONE_PREFIX`. A clone holds its lock
    from its snapshot's create to its removal, so a temporary
    snapshot whose lock is free was left behind (a node unreachable
    at the end of its clone): it is removed from every storage node
    under that lock, taken without waiting ('busy': a clone is
    running). A node that does not answer keeps it for the next try.
    """
    outcomes = {}
    for snap in sorted(set(snapshots)):
        if not snap.startswith(CLONE_PREFIX):
            outcomes[snap] = 'skipped: not a temporary clone snapshot'
            continue
        lock = ctl.lock(clone_lock_name(snap))
        if not lock.acquire(blocking=False):
            outcomes[snap] = 'busy'
            continue
        try:
            _, failures = ctl.each(
                ctl.config.storage_nodes,
                {'op': 'snapshot-delete', 'pool': ctl.config.pool,
                 'snapshot': snap})
        finally:
            lock.release()
        if failures:
            outcomes[snap] = 'left on ' + '; '.join(
                f'{node}: {exc.message}'
                for node, exc in sorted(failures.items()))
        else:
            outcomes[snap] = 'removed'
            LOG.info('Removed %s, the temporary snapshot of a clone '
                     'left on a node unreachable at its end', snap)
    return outcomes
