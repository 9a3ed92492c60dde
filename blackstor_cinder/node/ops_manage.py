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
"""Manage (adopt) steps here: rename, wrap, sync-source, snapshot-rename.

What ``cluster/adopt.py`` asks of each node to take a volume BlackStor
did not make under its care, or to give one back. Run again after one
ended half-way, each converges.
"""

from __future__ import annotations

from blackstor_cinder.node import drbdstatus
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import lvm as lvm_mod
from blackstor_cinder.node import sizing
from blackstor_cinder.node.steps import Node
from blackstor_cinder.node.undo import Undo
from blackstor_cinder import protocol


def rename(node: Node, req: dict) -> dict:
    """Rename a resource of ours here: LV, .res and DRBD resource.

    DRBD knows a resource by its name on this node only (peers match
    by node-id and address), so each replica is renamed on its own:
    down, ``lvrename``, the .res under the new name, up. Refused while
    the resource is Primary here (in use). Run again after it ended
    half-way, it converges: a done rename is brought up and reported.
    """
    old, new = req['resource'], req['new_name']
    pool, disk, _, _ = node.replica_here(req, new)
    old_lv = node.lvm.find_ours(pool, old, 'resource', snapshot=False)
    new_lv = node.lvm.find_ours(pool, new, 'new_name', snapshot=False)
    if old_lv is None and new_lv is not None and node.store.exists(new):
        return {'resource': new, 'renamed': False,
                'drbd': node.ensure_up(new)}
    if old_lv is None or not node.store.exists(old):
        raise AgentError(protocol.E_NOT_FOUND,
                         f'resource: {old} (LV {pool.vg}/{old} and its '
                         '.res) not found', 'resource')
    if new_lv is not None or node.lvm.find(pool, new) is not None \
            or node.store.exists(new):
        raise AgentError(protocol.E_CONFLICT,
                         f'new_name: {new} exists here', 'new_name')
    state = drbdstatus.of(node.drbd.state(old))
    if state is not None and state.role == drbdstatus.PRIMARY:
        raise AgentError(protocol.E_BUSY,
                         f'resource: {old} is in use here (Primary); '
                         'not renamed', 'resource')
    old_text = node.store.path(old).read_bytes()
    with Undo().on_failure() as undo:
        if state is not None:
            node.drbd.down(old)
            undo.push(f'up {old}', lambda: node.drbd.up(old))
        node.lvm.rename(pool, old, new)
        undo.push(f'lvrename {new} {old}',
                  lambda: node.lvm.rename(pool, new, old))
        # the old .res goes first: drbdadm checks the new one against
        # the others, and the minor and port are the same
        node.store.remove(old)
        undo.push(f'restore the .res of {old}',
                  lambda: node.store.restore(old, old_text))
        node.write_res(new, req, disk, undo)
        node.marks.remove(old)
        node.drbd.up(new)
    return {'resource': new, 'renamed': True, 'drbd': 'up'}


def wrap(node: Node, req: dict) -> dict:
    """Make the bare thin LV ``lv`` this node's replica of a new resource.

    The LV keeps its data: it is renamed to the resource, tagged, and
    gets internal metadata in the room past ``size`` (refused, saying
    how much is missing, when there is not enough). ``undo`` takes it
    back to the bare LV it was (metadata left in its tail).
    """
    resource, name = req['resource'], req['lv']
    pool, disk, me, max_peers = node.replica_here(req)
    node.lvm.thin_pool(pool)
    if req.get('undo'):
        return _unwrap(node, pool, resource, name)
    ours = node.lvm.find_ours(pool, resource, 'resource', snapshot=False)
    lv = node.lvm.find(pool, name)
    if lv is None and ours is not None and node.store.exists(resource):
        return {'resource': resource, 'wrapped': False,
                'drbd': node.ensure_up(resource)}
    if lv is None or lv.pool_lv != pool.thin:
        raise AgentError(protocol.E_NOT_FOUND,
                         f'lv: no thin LV {pool.vg}/{name} in pool '
                         f'{pool.name}', 'lv')
    if lv.ours:
        raise AgentError(protocol.E_CONFLICT,
                         f'lv: {pool.vg}/{name} is a BlackStor LV, not '
                         'a bare one', 'lv')
    if ours is not None or node.store.exists(resource):
        raise AgentError(protocol.E_CONFLICT,
                         f'resource: {resource} exists here', 'resource')
    if len(lv.attr) > 5 and lv.attr[5] == 'o':
        raise AgentError(protocol.E_BUSY,
                         f'lv: {pool.vg}/{name} is open (in use)', 'lv')
    need = sizing.lv_size_for(req['size'], max_peers,
                              node.lvm.vg(pool.vg).extent)
    if lv.size < need:
        raise AgentError(
            protocol.E_INVALID, f'lv: {missing_room(lv.size, need)}', 'lv')
    if node.drbd.current_uuid(me['minor'],
                              node.lvm.device_path(pool.vg, name),
                              me['node_id']) is not None:
        raise AgentError(
            protocol.E_CONFLICT,
            f'lv: {pool.vg}/{name} holds DRBD metadata (a replica of '
            'some resource); not wrapping it', 'lv')
    with Undo().on_failure() as undo:
        node.lvm.rename(pool, name, resource)
        undo.push(f'lvrename {resource} {name}',
                  lambda: node.lvm.rename(pool, resource, name))
        node.lvm.add_tag(pool, resource, lvm_mod.TAG)
        undo.push(f'untag {resource}', lambda: node.lvm.del_tag(
            pool, resource, lvm_mod.TAG))
        node.write_res(resource, req, disk, undo)
        node.drbd.create_md(resource, max_peers)
        undo.push(f'down {resource}', lambda: node.drbd.down(resource))
        node.drbd.up(resource)
    return {'resource': resource, 'wrapped': True, 'drbd': 'up',
            'lv_size': lv.size}


def _unwrap(node: Node, pool: lvm_mod.Pool, resource: str,
            name: str) -> dict:
    lv = node.lvm.find_ours(pool, resource, 'resource', snapshot=False)
    if lv is None:
        if node.lvm.find(pool, name) is None:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'lv: neither {pool.vg}/{resource} nor '
                             f'{pool.vg}/{name} exists', 'lv')
        return {'resource': resource, 'unwrapped': False}
    if node.lvm.find(pool, name) is not None:
        # checked before anything changes: the rename back would fail
        raise AgentError(protocol.E_CONFLICT,
                         f'lv: {pool.vg}/{name} exists: {resource} '
                         'cannot get that name back', 'lv')
    node.take_down(resource)
    node.store.remove(resource)
    node.lvm.del_tag(pool, resource, lvm_mod.TAG)
    node.lvm.rename(pool, resource, name)
    return {'resource': resource, 'unwrapped': True}


def missing_room(lv_size: int, need: int) -> str:
    """Why an LV of ``lv_size`` bytes is too small, and by how much."""
    mib = -(-(need - lv_size) // (1 << 20))
    return (f'has {lv_size} bytes, no room for DRBD\'s internal metadata '
            f'past the volume ({need} bytes needed): extend it by {mib} '
            'MiB')


def sync_source(node: Node, req: dict) -> dict:
    """Make this replica's data the resource's: a full sync to peers.

    ``primary --force`` on an Inconsistent replica makes it UpToDate
    with a new data generation; peers whose metadata was just created
    take a full sync from it. Then back to Secondary. Nothing to do
    when the replica is UpToDate already (a retry).
    """
    resource = req['resource']
    state = drbdstatus.of(node.drbd.state(resource))
    if state is None:
        raise AgentError(protocol.E_NOT_FOUND,
                         f'resource: {resource} is not running here',
                         'resource')
    disk = state.disk
    if disk == drbdstatus.UP_TO_DATE:
        return {'resource': resource, 'forced': False}
    if disk != 'Inconsistent':
        raise AgentError(protocol.E_CONFLICT,
                         f'resource: {resource} is {disk} here, not '
                         'Inconsistent; not forcing it', 'resource')
    node.drbd.drbdadm('primary', '--force', resource)
    node.drbd.drbdadm('secondary', resource)
    return {'resource': resource, 'forced': True}


def snapshot_rename(node: Node, req: dict) -> dict:
    """Rename a snapshot of ``resource`` here; done already is fine."""
    resource, old, new = req['resource'], req['snapshot'], req['new_name']
    pool = node.lvm.pool(req['pool'])
    snap = node.lvm.find_ours(pool, old, 'snapshot', snapshot=True)
    if snap is None:
        done = node.lvm.find_ours(pool, new, 'new_name', snapshot=True)
        if done is not None and done.origin == resource:
            return {'snapshot': new, 'renamed': False}
        raise AgentError(protocol.E_NOT_FOUND,
                         f'snapshot: {pool.vg}/{old} not found',
                         'snapshot')
    if snap.origin != resource:
        raise AgentError(
            protocol.E_CONFLICT,
            f'snapshot: {pool.vg}/{old} is a snapshot of '
            f'{snap.origin or "an LV that is gone"}, not of {resource}',
            'snapshot')
    if node.lvm.find(pool, new) is not None:
        raise AgentError(protocol.E_CONFLICT,
                         f'new_name: {pool.vg}/{new} exists', 'new_name')
    node.lvm.rename(pool, old, new)
    return {'snapshot': new, 'renamed': True}


OPS = {
    'rename': (rename, 'down, rename LV and .res to new_name (spec: the '
                       'renamed resource), up again (manage)'),
    'wrap': (wrap, 'make a bare thin LV lv the replica of a new resource: '
                   'rename, tag, .res, create-md, up (undo: back to the '
                   'bare LV)'),
    'sync-source': (sync_source, 'make this replica the source of a full '
                                 'sync to its peers (primary --force, '
                                 'secondary)'),
    'snapshot-rename': (snapshot_rename, 'rename a snapshot LV of the '
                                         'resource to new_name (manage)'),
}
