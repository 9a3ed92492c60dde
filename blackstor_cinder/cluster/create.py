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
"""Create: the placement decision, then the provisioning.

A create is decided under the allocation lock (one inventory for every
create of this process waiting by then: :func:`_decided`) and provisioned
outside it, concurrently with other creates (:func:`run`); a volume made
from a snapshot (``snapshots``) goes the same way with its own decision.
What fails is rolled back; the values (minor, port) stay reserved and
the volume counted in flight until its .res files hold them.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from typing import Callable, Iterable

from blackstor_cinder.cluster import allocation
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import placement
from blackstor_cinder.cluster import resize
from blackstor_cinder.cluster import sync
from blackstor_cinder.cluster import tiebreaker
from blackstor_cinder.cluster import transport as tp

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Job:
    """A create between its decision and its end."""

    name: str
    size: int                           # what it is brought up with
    hosts: list[tuple[str, int]]        # (node, node-id) of the replicas
    reservation: allocation.Reservation
    sent: bool = False                  # it may exist on the replicas
    # tags what a 'create' makes, so its rollback removes only that
    create_id: str | None = None
    # storage nodes that hold something of that name already: what an
    # earlier attempt left (see _remove_leftovers)
    leftovers: tuple[str, ...] = ()
    tiebreaker: str | None = None       # its node, chosen at the decision
    zone_policy: str | None = None      # recorded in its .res


@dataclasses.dataclass(eq=False)
class _Decision:
    """A create waiting for its decision (see _decided)."""

    name: str
    size: int
    final_size: int
    decide: Callable[[dict, dict], list[tuple[str, int]]]
    done: bool = False
    job: Job | None = None
    error: BaseException | None = None


def create_volume(ctl: core.Core, name: str, size: int,
                  replicas: int | None = None,
                  zone_policy: str | None = None) -> model.ResourceSpec:
    """A new volume on ``replicas`` nodes placed by ``zone_policy``.

    None: the backend's default replica count and zone policy.
    """
    cfg = ctl.config
    replicas = replicas or cfg.replicas
    policy = zone_policy or cfg.zone_policy
    core.check_size(size, 'volume size')
    if replicas > len(cfg.storage_nodes):
        raise errors.InvalidRequest(
            f'{replicas} replicas asked but the backend has only '
            f'{len(cfg.storage_nodes)} storage nodes')
    if replicas + 1 > cfg.max_peers + 1:
        raise errors.InvalidRequest(
            f'{replicas} replicas exceed blackstor_max_peers '
            f'({cfg.max_peers}) + 1')

    def decide(inventories: dict[str, inv.NodeInventory],
               down: dict[str, tp.NodeError]) -> list[tuple[str, int]]:
        if down:
            LOG.warning('Placing %(name)s without unreachable nodes '
                        '%(down)s', {'name': name,
                                     'down': ', '.join(sorted(down))})
        chosen = placement.place(ctl.candidates(inventories), size,
                                 replicas, policy,
                                 cfg.over_subscription,
                                 ctl.unavailable(inventories, down))
        return [(node, i) for i, node in enumerate(chosen)]

    spec = run(ctl, name, size, size, decide,
               lambda spec: ctl.res_request('create', spec, pool=cfg.pool,
                                            size=size,
                                            max_peers=cfg.max_peers),
               fresh=True, zone_policy=policy)
    LOG.info('Created %(name)s (%(size)s bytes) on %(nodes)s, minor '
             '%(minor)s, port %(port)s',
             {'name': name, 'size': size,
              'nodes': ', '.join(h.name for h in spec.diskful_hosts),
              'minor': spec.minor, 'port': spec.port})
    return spec


def run(ctl: core.Core, name: str, size: int, final_size: int,
        decide: Callable[[dict[str, inv.NodeInventory],
                          dict[str, tp.NodeError]],
                         list[tuple[str, int]]],
        make_request: Callable[[model.ResourceSpec], dict],
        fresh: bool, zone_policy: str | None = None) -> model.ResourceSpec:
    """Decide under the allocation lock, provision outside it.

    ``zone_policy``: the one the volume was placed by, recorded in its
    .res (see ``model.ResourceSpec.zone_policy``).

    The decision picks a two-replica volume's tiebreaker too (see
    :func:`tiebreaker.choose_at_create`); it gets the .res last, while the
    values are still reserved, best effort.

    Under the allocation lock: the inventory, ``decide`` (the replicas'
    nodes and node-ids), the minor/port reservation and the volume's
    entry in the in-flight account. Outside it, concurrently with other
    creates: the creating request on every replica (brought up at
    ``size``), the initial sync, the growth to ``final_size``. The
    volume's own resource lock is held from start to end, so that a
    delete of the same name (Cinder deletes volumes a crashed create
    left behind) waits for the create to succeed or be rolled back
    instead of missing replicas not written yet. Whatever fails, what
    was created is removed and the reservation and in-flight entry
    are given back; on success they are given back under the
    allocation lock once the .res files hold the values.
    """
    with ctl.resource_lock(name):
        job = _decided(ctl, _Decision(name, size, final_size, decide))
        job.zone_policy = zone_policy
        try:
            _remove_leftovers(ctl, job)
            spec = _provision(ctl, job, make_request)
            _finish_create(ctl, spec, fresh)
            if final_size > size:
                spec = resize.grow(ctl, spec, final_size)
            if tiebreaker.wanted(spec):
                spec = tiebreaker.push(
                    ctl, spec, spec, core.Found(spec, {}, {}),
                    job.tiebreaker)
        except BaseException:
            _abandon(ctl, job)
            raise
        end(ctl, job)
    return spec


def _decided(ctl: core.Core, decision: _Decision) -> Job:
    """Queue a decision and wait until it is taken; its job.

    One thread of this process at a time (the leader) takes the
    allocation lock, reads the inventory once and decides every create
    queued by then, one after the other: each sees the reservations
    and in-flight entries of the ones before, so they share the
    inventory safely, and concurrent creates wait for one inventory
    instead of one each.
    """
    queue = ctl.decisions
    with queue.changed:
        queue.pending.append(decision)
    while True:
        with queue.changed:
            while not decision.done and queue.leading:
                queue.changed.wait()
            if decision.done:
                break
            queue.leading = True
        try:
            _decide_queued(ctl)
        except BaseException:
            # The allocation lock failed us (taking or giving it back)
            with queue.changed:
                if decision in queue.pending:
                    queue.pending.remove(decision)
            if decision.job is not None:
                _abandon(ctl, decision.job)
            raise
        finally:
            with queue.changed:
                queue.leading = False
                queue.changed.notify_all()
    if decision.error is not None:
        raise decision.error
    return decision.job


def _decide_queued(ctl: core.Core) -> None:
    queue = ctl.decisions
    with ctl.lock(core.ALLOCATION_LOCK):
        failed: BaseException | None = None
        try:
            inventories, down, used = ctl.survey(brief=True)
        except BaseException as exc:
            failed = exc
        with queue.changed:
            batch, queue.pending = queue.pending, []
        for decision in batch:
            try:
                if failed is not None:
                    raise failed
                hosts = decision.decide(inventories, down)
                decision.job = start(ctl, decision.name, decision.size,
                                     decision.final_size, hosts, used)
                decision.job.tiebreaker = tiebreaker.choose_at_create(
                    ctl, inventories, [node for node, _ in hosts])
                decision.job.leftovers = tuple(sorted(
                    node for node, report in inventories.items()
                    if decision.name in report.resources
                    or decision.name in report.volumes))
            except BaseException as exc:
                decision.error = exc
            finally:
                with queue.changed:
                    decision.done = True
                    queue.changed.notify_all()


def start(ctl: core.Core, name: str, size: int, final_size: int,
          hosts: list[tuple[str, int]],
          used: tuple[set[int], set[int]]) -> Job:
    """Reserve minor/port and count the volume in flight (locked).

    ``used``: the (minors, ports) used on the nodes (see Core.survey).
    """
    reservation = ctl.allocator.reserve(*used)
    try:
        ctl.in_flight.add(name, (node for node, _ in hosts),
                          final_size)
    except BaseException:
        reservation.release()
        raise
    return Job(name, size, hosts, reservation)


def new_spec(ctl: core.Core, name: str, minor: int, port: int,
             hosts: Iterable[tuple[str, int]],
             size: int, zone_policy: str | None = None
             ) -> model.ResourceSpec:
    cfg = ctl.config
    return model.ResourceSpec(
        name=name, minor=minor, port=port,
        hosts=tuple(model.ResourceHost(
            name=node_name, node_id=node_id,
            address=cfg.node(node_name).replication_address,
            diskful=True, disk=cfg.lv_path(name))
            for node_name, node_id in hosts),
        secret=allocation.new_secret(), quorum=cfg.quorum,
        on_no_quorum=cfg.on_no_quorum, net_options=dict(cfg.net_options),
        disk_options=dict(cfg.disk_options), max_peers=cfg.max_peers,
        size=size, zone_policy=zone_policy)


def _remove_leftovers(ctl: core.Core, job: Job) -> None:
    """Remove what an earlier create of the same name left.

    A create that fails rolls back wherever it can; a node that was
    unreachable then (it crashed during the initial sync) keeps its
    replica and brings it up again at boot, with the node-ids, minor
    and port of that attempt, which the agent never lets a new .res
    change. Cinder retries a failed create under the same name
    (reschedule), and a volume being created holds no data of anyone
    yet: what a storage node has of that name is such a leftover
    (the resource lock, held here, keeps every other flow of the name
    out). It goes before anything is created, so that the create
    converges whatever its placement and values are this time.
    """
    if not job.leftovers:
        return
    LOG.warning('%(name)s exists on %(nodes)s: what an earlier create '
                'of it left; removing it before creating it again',
                {'name': job.name, 'nodes': ', '.join(job.leftovers)})
    ctl.each_or_raise(
        f'removal of what an earlier create of {job.name} left',
        [ctl.node(n) for n in job.leftovers],
        {'op': 'delete', 'resource': job.name, 'pool': ctl.config.pool})


def _provision(ctl: core.Core, job: Job,
               make_request: Callable[[model.ResourceSpec], dict]
               ) -> model.ResourceSpec:
    """Run the creating request on every replica.

    Any failure removes what the request created on the replicas. A
    clash reported by an agent (another controller took the value,
    and the claims did not tell: a node it holds it on was
    unreachable, or it runs an older version) is retried with values
    reserved anew from a fresh inventory.
    """
    avoid_minors: set[int] = set()
    avoid_ports: set[int] = set()
    for attempt in range(3):
        reservation = job.reservation
        spec = new_spec(ctl, job.name, reservation.minor,
                        reservation.port, job.hosts, job.size,
                        job.zone_policy)
        request = make_request(spec)
        if request['op'] == 'create':
            job.create_id = secrets.token_hex(16)
            request['create_id'] = job.create_id
        nodes = ctl.nodes(spec.diskful_hosts)
        job.sent = True
        _, failures = ctl.each(nodes, request)
        if not failures:
            return spec
        _remove(ctl, spec.name, nodes, job.create_id)
        job.sent = False
        exc = errors.NodeOperationFailed(request['op'], failures)
        if not exc.conflict or attempt == 2:
            raise exc
        LOG.warning('Minor %(minor)s/port %(port)s of %(name)s '
                    'clashed on a node; allocating again',
                    {'minor': reservation.minor,
                     'port': reservation.port, 'name': job.name})
        avoid_minors.add(reservation.minor)
        avoid_ports.add(reservation.port)
        _reallocate(ctl, job, avoid_minors, avoid_ports)
    raise AssertionError('unreachable')


def _reallocate(ctl: core.Core, job: Job, avoid_minors: set[int],
                avoid_ports: set[int]) -> None:
    """New values for a create whose values clashed."""
    with ctl.lock(core.ALLOCATION_LOCK):
        used_minors, used_ports = ctl.survey(brief=True)[2]
        fresh = ctl.allocator.reserve(used_minors | avoid_minors,
                                      used_ports | avoid_ports)
        old, job.reservation = job.reservation, fresh
        old.release()


def _finish_create(ctl: core.Core, spec: model.ResourceSpec,
                   fresh: bool) -> None:
    """Wait for the replicas to connect; skip the initial sync.

    A fresh thin volume reads zeros on every replica (the pools zero
    new blocks: see ``NodeInventory.problem``), so one
    ``new-current-uuid --clear-bitmap`` makes them all UpToDate without
    copying anything. It is given only once every replica sees every
    other one Established and Inconsistent (else a replica not yet
    connected would miss the new UUID and resync in full, or worse,
    keep stale bits); afterwards every replica must be UpToDate
    towards every other with no resync. Volumes made from snapshots
    already share their generation identifiers and need nothing. The
    caller rolls back.
    """
    nodes = ctl.nodes(spec.diskful_hosts)
    first = nodes[0]
    try:
        if not fresh:
            if len(nodes) > 1:
                sync.wait_connected(ctl, spec, first)
            return
        if len(nodes) > 1:
            sync.wait_replicas(
                ctl, spec, nodes, sync.ready_to_skip_sync,
                'connected to each other and Inconsistent')
        ctl.call(first, {'op': 'new-current-uuid',
                         'resource': spec.name, 'clear_bitmap': True})
        if len(nodes) > 1:
            sync.wait_replicas(
                ctl, spec, nodes, sync.in_sync,
                'UpToDate on every replica with no resync')
    except tp.NodeError as exc:
        raise errors.NodeOperationFailed(
            'initial sync', {exc.node: exc}) from exc


def _abandon(ctl: core.Core, job: Job) -> None:
    """Roll a failed create back; give its reservation back."""
    try:
        if job.sent:
            _remove(ctl, job.name, _nodes_of(ctl, job), job.create_id)
            job.sent = False
    finally:
        ctl.in_flight.discard(job.name)
        job.reservation.release()


def end(ctl: core.Core, job: Job) -> None:
    """The create is on the nodes (or rolled back): free its values."""
    try:
        # Under the lock: a decision under way may have read its
        # inventory before these .res files were written, and must
        # find the values still reserved.
        with ctl.lock(core.ALLOCATION_LOCK):
            ctl.in_flight.discard(job.name)
            job.reservation.release()
    finally:
        ctl.in_flight.discard(job.name)
        job.reservation.release()


def _nodes_of(ctl: core.Core, job: Job) -> list[model.Node]:
    return [ctl.node(node) for node, _ in job.hosts]


def _remove(ctl: core.Core, name: str, nodes: list[model.Node],
            create_id: str | None = None) -> None:
    """Best-effort rollback of a create: delete it everywhere.

    With ``create_id`` a node removes the LV only if that create made
    it (a node whose create was refused keeps what it had, even when
    its refusal never reached us).
    """
    request = {'op': 'delete', 'resource': name,
               'pool': ctl.config.pool}
    if create_id:
        request['create_id'] = create_id
    _, failures = ctl.each(nodes, request)
    for node_name, exc in failures.items():
        LOG.error('Rollback of %(res)s on %(node)s failed, it may be '
                  'left behind: %(err)s',
                  {'res': name, 'node': node_name, 'err': exc})
