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
"""Snapshots of a replica here, and reverting a replica to one.

A snapshot is a thin snapshot LV of the resource's LV. A revert makes
the resource's LV a thin snapshot of the snapshot again: in one shot,
or in two phases (prepare, swap, then commit or undo) whose LVs are
``<res>.rollback``, the thin snapshot of the snapshot that becomes
``<res>``, and ``<res>.previous``, the old ``<res>`` kept until the
revert is committed. No protocol name has a '.', so they never clash
with a resource or snapshot.
"""

from __future__ import annotations

from typing import Any

from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import lvm as lvm_mod
from blackstor_cinder.node.steps import Node
from blackstor_cinder import protocol

ROLLBACK_SUFFIX = '.rollback'
PREVIOUS_SUFFIX = '.previous'
#: The LVs of a revert in progress by suffix, and their inventory role.
REVERT_SUFFIXES = {ROLLBACK_SUFFIX: 'rollback', PREVIOUS_SUFFIX: 'previous'}


def snapshot_create(node: Node, req: dict) -> dict:
    resource, snapshot = req['resource'], req['snapshot']
    pool = node.lvm.pool(req['pool'])
    lv = node.require_lv(pool, resource)
    snap = node.lvm.find_ours(pool, snapshot, 'snapshot', snapshot=True)
    if snap is not None and snap.origin != resource:
        raise AgentError(
            protocol.E_CONFLICT,
            f'snapshot: {pool.vg}/{snapshot} exists and is a snapshot '
            f'of {snap.origin or "nothing"}, not of {resource}',
            'snapshot')
    if snap is None:
        node.lvm.snapshot(pool, resource, snapshot,
                          (lvm_mod.TAG, lvm_mod.SNAPSHOT_TAG))
    return {'snapshot': snapshot, 'pool': pool.name,
            'size_bytes': snap.size if snap else lv.size,
            'origin': resource, 'created': snap is None}


def snapshot_delete(node: Node, req: dict) -> dict:
    snapshot = req['snapshot']
    pool = node.lvm.pool(req['pool'])
    snap = node.lvm.find_ours(pool, snapshot, 'snapshot', snapshot=True)
    removed = node.lvm.remove(pool, snapshot) if snap else False
    return {'snapshot': snapshot, 'pool': pool.name, 'removed': removed}


def snapshot_rollback(node: Node, req: dict) -> dict:
    phase = req.get('phase')
    if phase is not None:
        return _PHASES[phase](node, req['resource'],
                              node.lvm.pool(req['pool']), req)
    resource, snapshot = req['resource'], req['snapshot']
    pool = node.lvm.pool(req['pool'])
    snap = node.require_snapshot(pool, snapshot)
    node.check_fits(snap.size, req.get('size'))
    temp = resource + ROLLBACK_SUFFIX
    lv = node.lvm.find_ours(pool, resource, 'resource', snapshot=False)
    temp_lv = node.lvm.find_ours(pool, temp, 'resource', snapshot=False)
    if lv is None and temp_lv is None:
        raise AgentError(protocol.E_NOT_FOUND,
                         f'resource: LV {pool.vg}/{resource} not found',
                         'resource')
    was_up = node.take_down(resource)
    # The new LV is made under a temporary name first, so a crash at
    # any point leaves the old LV or the new one (a rerun finishes).
    if lv is not None:
        if temp_lv is not None and temp_lv.origin != snapshot:
            node.lvm.remove(pool, temp)
            temp_lv = None
        if temp_lv is None:
            node.clone(pool, snapshot, temp)
        node.lvm.remove(pool, resource)
    node.lvm.rename(pool, temp, resource)
    return {'resource': resource, 'snapshot': snapshot,
            'lv_size': snap.size, 'down': was_up}


# -- two-phase revert: prepare, swap, then commit or undo -----------------

def _revert_lvs(node: Node, pool: lvm_mod.Pool, resource: str) -> tuple:
    find = node.lvm.find_ours
    return (find(pool, resource, 'resource', snapshot=False),
            find(pool, resource + ROLLBACK_SUFFIX, 'resource',
                 snapshot=False),
            find(pool, resource + PREVIOUS_SUFFIX, 'resource',
                 snapshot=False))


def _revert_reply(node: Node, phase: str, resource: str,
                  pool: lvm_mod.Pool, **extra: Any) -> dict:
    lv, rollback, previous = _revert_lvs(node, pool, resource)
    return {'resource': resource, 'phase': phase,
            'lv': lv is not None, 'rollback_lv': rollback is not None,
            'previous_lv': previous is not None, **extra}


def _revert_prepare(node: Node, resource: str, pool: lvm_mod.Pool,
                    req: dict) -> dict:
    """``<res>.rollback`` = the snapshot; nothing else is touched."""
    snapshot = req['snapshot']
    lv, rollback, previous = _revert_lvs(node, pool, resource)
    temp = resource + ROLLBACK_SUFFIX
    if previous is not None and rollback is None and lv is not None:
        # Swapped already: a late rerun of prepare changes nothing.
        return _revert_reply(node, 'prepare', resource, pool,
                             created=False, swapped=True)
    if lv is None:
        raise AgentError(protocol.E_NOT_FOUND,
                         f'resource: LV {pool.vg}/{resource} not found',
                         'resource')
    snap = node.require_snapshot(pool, snapshot)
    node.check_fits(snap.size, req.get('size'))
    created = False
    if rollback is not None and rollback.origin != snapshot:
        node.lvm.remove(pool, temp)     # ours, of another revert
        rollback = None
    if rollback is None:
        node.clone(pool, snapshot, temp)
        created = True
    return _revert_reply(node, 'prepare', resource, pool,
                         created=created, swapped=False, lv_size=snap.size)


def _revert_swap(node: Node, resource: str, pool: lvm_mod.Pool,
                 req: dict) -> dict:
    """Down here; ``<res>`` -> ``.previous``, ``.rollback`` -> ``<res>``.

    Each rename is done only when still needed, so a rerun after a
    crash between them finishes the swap.
    """
    lv, rollback, previous = _revert_lvs(node, pool, resource)
    if rollback is None and previous is not None and lv is not None:
        return _revert_reply(node, 'swap', resource, pool, down=False,
                             swapped=False)
    if rollback is None:
        raise AgentError(protocol.E_NOT_FOUND,
                         f'resource: LV {pool.vg}/{resource}'
                         f'{ROLLBACK_SUFFIX} not found (prepare first)',
                         'resource')
    if lv is not None and previous is not None:
        raise AgentError(
            protocol.E_CONFLICT,
            f'resource: {pool.vg}/{resource}, its {ROLLBACK_SUFFIX} and '
            f'its {PREVIOUS_SUFFIX} LV all exist; undo or commit the '
            'earlier revert first', 'resource')
    was_up = node.take_down(resource)
    if lv is not None:
        node.lvm.rename(pool, resource, resource + PREVIOUS_SUFFIX)
    node.lvm.rename(pool, resource + ROLLBACK_SUFFIX, resource)
    return _revert_reply(node, 'swap', resource, pool, down=was_up,
                         swapped=True)


def _revert_undo(node: Node, resource: str, pool: lvm_mod.Pool,
                 req: dict) -> dict:
    """The old ``<res>`` back, whatever prepare and swap did here."""
    lv, rollback, previous = _revert_lvs(node, pool, resource)
    was_up = restored = False
    if previous is not None:
        was_up = node.take_down(resource)
        if lv is not None:
            if rollback is not None:
                # The swapped-in LV goes first: only one can be kept
                # under the temporary name.
                node.lvm.remove(pool, resource + ROLLBACK_SUFFIX)
            node.lvm.rename(pool, resource, resource + ROLLBACK_SUFFIX)
            rollback = True
        node.lvm.rename(pool, resource + PREVIOUS_SUFFIX, resource)
        restored = True
    removed = (node.lvm.remove(pool, resource + ROLLBACK_SUFFIX)
               if rollback is not None else False)
    return _revert_reply(node, 'undo', resource, pool, down=was_up,
                         restored=restored, rollback_removed=removed)


def _revert_commit(node: Node, resource: str, pool: lvm_mod.Pool,
                   req: dict) -> dict:
    """Remove ``<res>.previous``: the revert is final here."""
    lv, rollback, previous = _revert_lvs(node, pool, resource)
    if rollback is not None and previous is None:
        raise AgentError(
            protocol.E_CONFLICT,
            f'resource: {pool.vg}/{resource} was not swapped here yet '
            f'({resource}{ROLLBACK_SUFFIX} is still there); swap or '
            'undo, not commit', 'resource')
    removed = (node.lvm.remove(pool, resource + PREVIOUS_SUFFIX)
               if previous is not None else False)
    return _revert_reply(node, 'commit', resource, pool,
                         previous_removed=removed)


_PHASES = {'prepare': _revert_prepare, 'swap': _revert_swap,
           'undo': _revert_undo, 'commit': _revert_commit}

OPS = {
    'snapshot-create': (snapshot_create, 'thin snapshot of a resource\'s '
                                         'LV'),
    'snapshot-delete': (snapshot_delete, 'remove a snapshot LV'),
    'snapshot-rollback': (snapshot_rollback,
                          'take the resource down here and make its LV a '
                          'thin snapshot of the snapshot again'),
}
