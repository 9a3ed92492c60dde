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
"""Move every replica off a storage node: it is lost, or it leaves.

:func:`node_lost` (the node is down and will not come back with its data)
gives each resource that had a replica there a new one elsewhere, in the
same change that takes the lost node out of every .res (its replica can
sync nothing and must not reconnect), waits until the new replica is
UpToDate and ``forget-peer``\\ s the lost node-id. :func:`evacuate` (the
node is up) adds the new replica first and removes the old one (LV,
.res, its snapshot copies) once the new one is UpToDate.

Planning (:func:`plan`) keeps each volume's replica count (one new
replica per one that leaves), its zones (with the spread policy no two
replicas share a zone: the policy its .res records, its type's, else the
backend's ``blackstor_zone_policy``) and the nodes' room (thin space
promised, ``max_over_subscription_ratio``), the moves planned so far
counted.
:func:`run` runs at most ``parallel`` moves at once on any node (as the
new replica's node or as one it syncs from), each under the resource's
lock, and re-reads the resource there: a move already done is not done
again, so a run stopped half-way converges when run again. The lock is
released while the new replica syncs (``membership.wait_unlocked``): an
attach or detach of the volume does not wait for the sync.

The new replica's LV is tagged with the move (:func:`move_id`, the
agent's ``create_id``): a run again after one stopped half-way (its sync
timed out, the removal failed) finishes that move with the same replica
instead of adding one more.

The tiebreaker's node is a new replica's last choice (on three nodes the
only one left): its diskless peer becomes the replica there, with its
node-id (``membership.add_replica``). The volume then has no tiebreaker
until a node can take one (``Report.tiebreakers`` says which).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import logging
import threading
import time
from typing import Any, Callable

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import membership
from blackstor_cinder.cluster import placement

LOG = logging.getLogger(__name__)

LOST = 'lost'
EVACUATE = 'evacuate'
#: how long a move waits for its new replica's sync (seconds)
SYNC_TIMEOUT = 3600.0


@dataclasses.dataclass(frozen=True)
class Move:
    """One resource leaving ``source`` for ``target``."""

    resource: str
    source: str
    target: str
    size: int
    sync_from: tuple[str, ...]      # its other replicas

    @property
    def nodes(self) -> frozenset[str]:
        """The nodes whose resyncs it counts on."""
        return frozenset((self.target,) + self.sync_from)


@dataclasses.dataclass
class Report:
    """What a heal or evacuate did, per resource."""

    node: str
    kind: str
    moved: dict[str, str] = dataclasses.field(default_factory=dict)
    done_before: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    unplaced: dict[str, str] = dataclasses.field(default_factory=dict)
    # resource -> its snapshots that lost their copy on the node
    snapshots: dict[str, list[str]] = dataclasses.field(
        default_factory=dict)
    # resource -> what became of its tiebreaker on the node
    tiebreakers: dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.failed or self.unplaced)


class Progress:
    """The healing under way in this process, for the stats."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.node: str | None = None
        self.total = self.done = self.failed = 0
        self.running: set[str] = set()

    def start(self, node: str, total: int) -> None:
        with self._lock:
            self.node, self.total, self.done, self.failed = node, total, 0, 0
            self.running = set()

    def update(self, resource: str, running: bool,
               failed: bool = False) -> None:
        with self._lock:
            if running:
                self.running.add(resource)
                return
            self.running.discard(resource)
            self.done += 1
            self.failed += failed

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {'node': self.node, 'total': self.total,
                    'done': self.done, 'failed': self.failed,
                    'running': len(self.running)}


def _definitions(inventories: dict[str, inv.NodeInventory], node: str,
                 role: str = 'diskful', own: bool = True) -> dict[str, dict]:
    """Resource -> a .res definition that gives ``node`` the ``role``.

    ``role``: the host entry's flag (``diskful``: a replica,
    ``tiebreaker``). Read from every node but ``node`` first (a lost node
    answers nothing; an evacuated one may be behind), then, with ``own``,
    from ``node``.
    """
    found: dict[str, dict] = {}
    order = sorted(n for n in inventories if n != node) + [
        n for n in inventories if n == node and own]
    for name in order:
        for res, entry in sorted(inventories[name].resources.items()):
            definition = (entry or {}).get('definition') or {}
            if res not in found and any(
                    h.get('name') == node and h.get(role)
                    for h in definition.get('hosts') or ()):
                found[res] = definition
    return found


def plan(ctl, node: str, inventories: dict[str, inv.NodeInventory]
         ) -> tuple[list[Move], dict[str, str]]:
    """The moves off ``node``, and the resources no node can take (why)."""
    cfg = ctl.config
    cands = {c.name: c for c in ctl.candidates(inventories)
             if c.name != node}
    planned: dict[str, list[int]] = {n: [] for n in cands}
    moves, unplaced = [], {}
    for res, definition in sorted(_definitions(inventories, node).items()):
        hosts = definition.get('hosts') or ()
        holders = {h.get('name') for h in hosts}
        # its node may take the replica: the last choice
        tie = next((h.get('name') for h in hosts if h.get('tiebreaker')
                    and not h.get('diskful')), None)
        others = tuple(sorted(h['name'] for h in hosts
                              if h.get('diskful') and h['name'] != node))
        size = inv.definition_size(definition) or max(
            (r.volumes.get(res, 0) for r in inventories.values()), default=0)
        zones = {_zone(cfg, n) for n in others}
        policy = _policy(cfg, res, definition)

        def fits(cand: placement.Candidate) -> bool:
            if cand.name in holders and cand.name != tie:
                return False
            if policy == placement.SPREAD and _zone(
                    cfg, cand.name) in zones:
                return False
            free = cand.virtual_free(cfg.over_subscription) - sum(
                planned[cand.name])
            return free >= size

        mark = move_id(node, res)
        added = [n for n in others if n in inventories and mark in
                 inventories[n].volume_create_ids.get(res, ())]
        if added:
            # a run before added it (its create is tagged with the move)
            moves.append(Move(res, node, added[0], size, tuple(
                n for n in others if n != added[0])))
            continue
        fitting = sorted((c for c in cands.values() if fits(c)),
                         key=lambda c: (c.name == tie, len(planned[c.name]),
                                        -c.free_bytes, c.resources, c.name))
        if not size or not fitting:
            unplaced[res] = _why_unplaced(node, cands, holders - {tie},
                                          size, policy)
            continue
        target = fitting[0].name
        planned[target].append(size)
        moves.append(Move(res, node, target, size, others))
    return moves, unplaced


def move_id(node: str, resource: str) -> str:
    """The ``create_id`` of the new replica of ``resource`` off ``node``.

    The same in every run: a run again finds the replica a run before
    added (``volume_create_ids`` of the inventories) and finishes that
    move instead of adding one more.
    """
    digest = hashlib.sha256(f'move\0{node}\0{resource}'.encode())
    return digest.hexdigest()[:32]


def _policy(cfg, res: str, definition: dict) -> str:
    """The zone policy ``res`` is placed by: its .res's, else the backend's."""
    recorded = inv.zone_policy(definition)
    if recorded is not None:
        return recorded
    LOG.info('%(res)s has no zone policy in its .res (written before it was '
             'recorded): its new replica is placed by the backend\'s '
             'blackstor_zone_policy (%(policy)s)',
             {'res': res, 'policy': cfg.zone_policy})
    return cfg.zone_policy


def _zone(cfg, name: str) -> str:
    known = cfg.node(name)
    return (known.zone if known is not None and known.zone else name)


def _why_unplaced(node: str, cands: dict, holders: set[str],
                  size: int, policy: str) -> str:
    """Why no node of ``cands`` takes a replica (``holders``: may not)."""
    if not size:
        return 'its size is not known'
    free = [c for c in cands.values() if c.name not in holders]
    if not free:
        return (f'every usable storage node but {node} holds it already '
                f'(usable: {", ".join(sorted(cands)) or "none"})')
    if policy == placement.SPREAD:
        return (f'no usable node in a zone its other replicas do not use '
                f'has room for {size} bytes')
    return f'no usable node has room for {size} bytes'


def run(moves: list[Move], parallel: int,
        do: Callable[[Move], str], progress: Progress | None = None
        ) -> dict[str, tuple[bool, str]]:
    """Run ``do`` for each move, at most ``parallel`` at once per node.

    Returns resource -> (ok, what happened); an exception of one move is
    its outcome, never stops the others.
    """
    parallel = max(1, parallel)
    busy: dict[str, int] = {}
    pending = list(moves)
    running: dict[concurrent.futures.Future, Move] = {}
    results: dict[str, tuple[bool, str]] = {}
    workers = max(1, min(len(moves), parallel * 4))
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix='blackstor-heal') as pool:
        while pending or running:
            for move in list(pending):
                if all(busy.get(n, 0) < parallel for n in move.nodes):
                    pending.remove(move)
                    for n in move.nodes:
                        busy[n] = busy.get(n, 0) + 1
                    if progress:
                        progress.update(move.resource, True)
                    running[pool.submit(do, move)] = move
            finished, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                move = running.pop(future)
                for n in move.nodes:
                    busy[n] -= 1
                try:
                    results[move.resource] = (True, future.result())
                except Exception as exc:    # one move never stops others
                    why = str(getattr(exc, 'message', exc))
                    LOG.warning('Move of %(res)s off %(node)s failed: '
                                '%(err)s', {'res': move.resource,
                                            'node': move.source, 'err': why})
                    results[move.resource] = (False, why)
                if progress:
                    progress.update(move.resource, False,
                                    not results[move.resource][0])
    return results


def _require_storage_node(ctl, node: str) -> None:
    known = ctl.config.node(node)
    if known is None or not known.storage:
        raise errors.InvalidRequest(
            f'{node!r} is not a configured storage node (configured: '
            f'{", ".join(n.name for n in ctl.config.storage_nodes)})')


def node_lost(ctl, node: str, parallel: int = 2,
              progress: Progress | None = None,
              sync_timeout: float = SYNC_TIMEOUT) -> Report:
    """Replace every replica of the lost ``node`` (it must be down)."""
    _require_storage_node(ctl, node)
    inventories, _down = ctl.inventories()
    if node in inventories:
        raise errors.InvalidRequest(
            f'{node} answers: it is not lost. Use "node evacuate" to move '
            f'the replicas off a node that is up')

    def move(m: Move) -> str:
        lock = ctl.resource_lock(m.resource)
        with lock:
            found = ctl.find(m.resource)
            if found.spec is None or found.spec.host(m.source) is None:
                return 'done before'
            lost_id = found.spec.host(m.source).node_id
            _note_tiebreaker(found.spec, m, converted)
            spec = membership.add_replica(
                ctl, m.resource, m.target, m.size, replacing=m.source,
                create_id=move_id(m.source, m.resource))
            found = membership.wait_unlocked(ctl, lock, spec, m.target,
                                             sync_timeout)
            ctl.forget_peers(found.spec, [lost_id])
        return m.target

    converted: dict[str, str] = {}
    return _heal(ctl, node, LOST, inventories, parallel, move, progress,
                 converted)


def evacuate(ctl, node: str, parallel: int = 2,
             progress: Progress | None = None,
             sync_timeout: float = SYNC_TIMEOUT) -> Report:
    """Move every replica off ``node`` (up), live."""
    _require_storage_node(ctl, node)
    inventories, failures = ctl.inventories()
    if node not in inventories:
        raise errors.NodeOperationFailed(
            f'evacuate of {node} (if it is lost, use "node lost")',
            {node: failures.get(node) or errors.ClusterError(
                'no inventory')})
    snaps = inventories[node].snapshot_origins

    def move(m: Move) -> str:
        lock = ctl.resource_lock(m.resource)
        with lock:
            found = ctl.find(m.resource)
            held = found.spec.host(m.source) if found.spec else None
            if held is None or not held.diskful:
                return 'done before'
            if inv.is_primary(found.states.get(m.source)):
                raise errors.ClusterError(
                    f'{m.resource} is Primary on {m.source} (a guest uses '
                    f'it there): not moved')
            target = found.spec.host(m.target)
            if target is None or not target.diskful:
                _note_tiebreaker(found.spec, m, converted)
                spec = membership.add_replica(
                    ctl, m.resource, m.target, m.size,
                    create_id=move_id(m.source, m.resource))
            else:
                spec = found.spec       # a run before added it
            membership.wait_unlocked(ctl, lock, spec, m.target,
                                     sync_timeout)
            membership.remove_replica(ctl, m.resource, m.source)
            for snap in sorted(s for s, o in snaps.items()
                               if o == m.resource):
                ctl.call(ctl.node(m.source), {
                    'op': 'snapshot-delete', 'pool': ctl.config.pool,
                    'snapshot': snap})
        return m.target

    converted: dict[str, str] = {}
    return _heal(ctl, node, EVACUATE, inventories, parallel, move, progress,
                 converted)


def _note_tiebreaker(spec, m: Move, converted: dict[str, str]) -> None:
    """Note a move whose new replica is the volume's tiebreaker now."""
    host = spec.host(m.target)
    if host is not None and host.tiebreaker:
        converted[m.resource] = m.target


def _heal(ctl, node: str, kind: str, inventories: dict,
          parallel: int, move: Callable[[Move], str],
          progress: Progress | None,
          converted: dict[str, str]) -> Report:
    started = time.monotonic()
    moves, unplaced = plan(ctl, node, inventories)
    report = Report(node, kind, unplaced=unplaced)
    report.snapshots = _snapshots(inventories, node, [m.resource
                                                      for m in moves])
    for res, snaps in sorted(report.snapshots.items()):
        LOG.warning('%(res)s leaves %(node)s: its snapshots %(snaps)s have '
                    'no copy on its new replica (they stay on the other '
                    'replicas%(gone)s)',
                    {'res': res, 'node': node, 'snaps': ', '.join(snaps),
                     'gone': '' if kind == LOST else
                     f'; their copies on {node} are removed'})
    for res, why in sorted(unplaced.items()):
        LOG.error('%(res)s keeps its replica on %(node)s: %(why)s',
                  {'res': res, 'node': node, 'why': why})
    if progress:
        progress.start(node, len(moves))
    LOG.info('%(kind)s %(node)s: %(n)d resource(s) to move, at most '
             '%(p)d at once per node', {'kind': kind, 'node': node,
                                        'n': len(moves), 'p': parallel})
    for res, (ok, text) in run(moves, parallel, move, progress).items():
        if not ok:
            report.failed[res] = text
        elif text == 'done before':
            report.done_before.append(res)
        else:
            report.moved[res] = text
    for res in sorted(_definitions(inventories, node, 'tiebreaker',
                                   own=False)):
        # not a replica: a new tiebreaker elsewhere, or none (see log)
        report.tiebreakers[res] = _new_tiebreaker(ctl, res, node)
    for res, target in sorted(converted.items()):
        if report.moved.get(res) == target:
            report.tiebreakers[res] = (
                f'its tiebreaker on {target} became its new replica; '
                + _new_tiebreaker(ctl, res, node))
    report.seconds = time.monotonic() - started
    return report


def _new_tiebreaker(ctl, res: str, node: str) -> str:
    """A tiebreaker for ``res`` not on ``node``, if one is placed: what."""
    try:
        return ctl.ensure_tiebreaker(res, lost=[node])
    except errors.ClusterError as exc:
        LOG.error('%(res)s has no tiebreaker (its node was %(node)s or it '
                  'became a replica there): %(err)s',
                  {'res': res, 'node': node, 'err': exc})
        return f'failed: {exc}'


def _snapshots(inventories: dict[str, inv.NodeInventory], node: str,
               resources: list[str]) -> dict[str, list[str]]:
    """Resource -> its snapshots known on any node.

    A snapshot is taken on every replica: ``node`` had a copy of each.
    """
    wanted = set(resources)
    found: dict[str, set[str]] = {}
    for report in inventories.values():
        for snap, origin in report.snapshot_origins.items():
            if origin in wanted:
                found.setdefault(origin, set()).add(snap)
    return {res: sorted(snaps) for res, snaps in found.items()}
