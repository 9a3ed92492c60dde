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
"""A replica's life here: create, create-from-snapshot, adjust, delete.

Each is idempotent: it looks at what exists (the LV, the .res, the
running DRBD state) and does only what is missing; a failure undoes
what the request created itself.

A ``create`` on a node where the resource runs diskless (its tiebreaker
becomes its replica) makes the LV and its metadata while DRBD runs
there, then the adjust attaches it: drbdmeta refuses to write metadata
only for a minor that is attached (drbd-utils, drbdmeta.c: is_attached
is a disk state above Diskless).
"""

from __future__ import annotations

import logging

from blackstor_cinder.node import drbd as drbd_mod
from blackstor_cinder.node import drbdstatus
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import lvm as lvm_mod
from blackstor_cinder.node import ops_snapshot
from blackstor_cinder.node import sizing
from blackstor_cinder.node.steps import Node
from blackstor_cinder.node.undo import Undo
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)


def create(node: Node, req: dict) -> dict:
    resource, size = req['resource'], req['size']
    pool, disk, me, max_peers = node.replica_here(req)
    if len(req['spec']['hosts']) > max_peers + 1:
        raise AgentError(
            protocol.E_INVALID,
            f'spec.hosts: {len(req["spec"]["hosts"])} hosts, but the '
            f'metadata is made for max_peers {max_peers}', 'spec.hosts')
    node.lvm.thin_pool(pool)
    lv = node.lvm.find_ours(pool, resource, 'resource', snapshot=False)
    need = node.lv_size_for(pool, size, max_peers, lv)
    state = node.drbd.state(resource)
    running = state is not None
    # running without its disk: a diskless peer (the tiebreaker) that
    # becomes a replica
    attached = running and drbdstatus.of(state).attached
    uuid = None
    if lv is not None and not attached:
        uuid = node.drbd.current_uuid(me['minor'], disk, me['node_id'])
        if uuid is not None and (uuid & ~drbd_mod.UUID_FLAGS
                                 != drbd_mod.UUID_JUST_CREATED):
            # A replica that was in use: never write over it.
            raise AgentError(
                protocol.E_CONFLICT,
                f'resource: LV {pool.vg}/{resource} holds DRBD metadata '
                f'of a replica that was in use (current UUID '
                f'{uuid:016X}) and {resource} is not running '
                f'{"on it " if running else ""}here; not creating over '
                'it', 'resource')
    grow = False
    if lv is not None and lv.size < need:
        if attached or uuid is not None:
            raise AgentError(
                protocol.E_CONFLICT,
                f'size: LV {pool.vg}/{resource} exists with {lv.size} '
                f'bytes and DRBD metadata; {need} are needed. Grow it '
                'with "resize" while the resource is up', 'size')
        grow = True
    res_created = not node.store.exists(resource)
    with Undo().on_failure() as undo:
        changed = node.write_res(resource, req, disk, undo)
        if lv is None:
            undo.push(f'lvremove {pool.vg}/{resource}',
                      lambda: node.lvm.remove(pool, resource))
            tags = (lvm_mod.TAG,)
            if 'create_id' in req:
                tags += (lvm_mod.create_tag(req['create_id']),)
            node.lvm.create_thin(pool, resource, need, tags)
        elif grow:
            node.lvm.extend(pool, resource, need)
        md_created = False
        if not attached and (lv is None or uuid is None):
            node.drbd.create_md(resource, max_peers)
            md_created = True
        action = node.up_or_adjust(resource, running, changed, undo)
    lv_size = max(need, lv.size if lv is not None else 0)
    return {'resource': resource, 'lv': f'{pool.vg}/{resource}',
            'lv_size': lv_size,
            'usable_size': sizing.usable_size_of(lv_size, max_peers),
            'lv_created': lv is None, 'res_created': res_created,
            'res_changed': changed, 'md_created': md_created,
            'brought_up': action == 'up', 'drbd': action}


def create_from_snapshot(node: Node, req: dict) -> dict:
    resource, snapshot = req['resource'], req['snapshot']
    pool, disk, _, _ = node.replica_here(req)
    node.lvm.thin_pool(pool)
    snap = node.require_snapshot(pool, snapshot)
    lv = node.lvm.find_ours(pool, resource, 'resource', snapshot=False)
    if lv is not None and lv.origin != snapshot:
        raise AgentError(
            protocol.E_CONFLICT,
            f'resource: LV {pool.vg}/{resource} exists and is not a '
            f'thin snapshot of {snapshot}', 'resource')
    node.check_fits(lv.size if lv is not None else snap.size, req['size'])
    running = node.drbd.state(resource) is not None
    with Undo().on_failure() as undo:
        changed = node.write_res(resource, req, disk, undo)
        if lv is None:
            undo.push(f'lvremove {pool.vg}/{resource}',
                      lambda: node.lvm.remove(pool, resource))
            node.clone(pool, snapshot, resource)
        action = node.up_or_adjust(resource, running, changed, undo)
    lv_size = lv.size if lv is not None else snap.size
    return {'resource': resource, 'lv': f'{pool.vg}/{resource}',
            'lv_size': lv_size, 'origin': snapshot,
            'lv_created': lv is None, 'res_changed': changed,
            'drbd': action}


def adjust(node: Node, req: dict) -> dict:
    resource = req['resource']
    me = node.host_entry(resource, req['spec'])
    disk = me['disk']
    if disk is not None:
        found = node.lvm.pool_of_device(disk)
        if found is None or found[1] != resource:
            raise AgentError(
                protocol.E_INVALID,
                f'{me["field"]}.vg: {me["vg"]} is not the volume group '
                f'of a pool configured on node {node.conf.node_name}',
                f'{me["field"]}.vg')
        lv = node.lvm.find_ours(found[0], resource, 'resource',
                                snapshot=False)
        if lv is None:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'resource: LV {found[0].vg}/{resource} '
                             'not found', 'resource')
        # drbdadm adjust applies the connection changes before it
        # finds the size too big, so a refusal would leave them
        # half-made (found by fuzzing): refuse before anything runs.
        node.check_fits(lv.size, req['spec'].get('size'),
                        'spec.size', f'LV {found[0].vg}/{lv.name}',
                        'with its metadata at its end; grow it '
                        'with "resize" first. Nothing changed')
    running = node.drbd.state(resource) is not None
    with Undo().on_failure() as undo:
        changed = node.write_res(resource, req, disk, undo)
        if running and not changed:
            action = 'unchanged'
        else:
            if not running:
                # adjust of a resource that is down is a full up; one
                # that fails half-way (attach refused) leaves it half
                # up (found by fuzzing).
                undo.push(f'down {resource}',
                          lambda: node.drbd.down(resource))
            node.drbd.adjust(resource)
            action = 'adjusted'
    return {'resource': resource, 'res_changed': changed, 'drbd': action}


def delete(node: Node, req: dict) -> dict:
    resource = req['resource']
    pool = node.lvm.pool(req['pool']) if 'pool' in req else None
    definition = None
    if node.store.exists(resource):
        try:
            definition = node.store.read_definition(resource)
        except AgentError as e:
            LOG.warning('Deleting %s with an unreadable .res: %s',
                        resource, e.message)
    mine = [h for h in (definition or {}).get('hosts', ())
            if h['name'] == node.conf.node_name]
    my_disk = mine[0]['disk'] if mine else None
    if pool is None and my_disk:
        found = node.lvm.pool_of_device(my_disk)
        if found is not None and found[1] == resource:
            pool = found[0]
    if 'create_id' in req:
        reason, pool = _rollback_check(node, resource, req['create_id'],
                                       pool)
        if reason:
            LOG.warning('Not deleting %s: %s', resource, reason)
            return _reported(req, definition, {
                'resource': resource, 'down': False,
                'lv_removed': False, 'res_removed': False,
                'revert_lvs_removed': [], 'kept': True, 'reason': reason})
    lv = (node.lvm.find_ours(pool, resource, 'resource', snapshot=False)
          if pool is not None else None)
    was_up = node.take_down(resource)
    if (lv is not None and definition is not None
            and my_disk == node.lvm.device_path(pool.vg, resource)):
        try:
            node.drbd.wipe_md(resource)
        except AgentError as e:
            # The LV goes next; a thin LV's blocks go with it.
            LOG.warning('wipe-md of %s failed: %s', resource, e.message)
    # A revert interrupted before its commit or undo leaves these; the
    # volume is going, so they go with it rather than leak.
    revert_lvs = [resource + suffix for suffix in ops_snapshot.REVERT_SUFFIXES
                  if pool is not None and node.lvm.find_ours(
                      pool, resource + suffix, 'resource',
                      snapshot=False) is not None]
    lv_removed = node.lvm.remove(pool, resource) if lv is not None else False
    revert_removed = [name for name in revert_lvs
                      if node.lvm.remove(pool, name)]
    res_removed = node.store.remove(resource)
    # what an unfinished extend recorded goes with the LV
    node.marks.remove(resource)
    return _reported(req, definition, {
        'resource': resource, 'down': was_up, 'lv_removed': lv_removed,
        'res_removed': res_removed, 'revert_lvs_removed': revert_removed,
        'kept': False, 'reason': None})


def _reported(req: dict, definition: dict | None, reply: dict) -> dict:
    """``reply``, with what the .res said before when ``report`` asks.

    The controller learns from it which hosts held the resource (its
    clients, its tiebreaker) without asking ``status`` first; the
    secret stays out of it.
    """
    if req.get('report'):
        reply['definition'] = ({k: v for k, v in definition.items()
                                if k != 'secret'}
                               if definition is not None else None)
    return reply


def _rollback_check(node: Node, resource: str, create_id: str,
                    pool: lvm_mod.Pool | None
                    ) -> tuple[str | None, lvm_mod.Pool | None]:
    """(why the rollback of create ``create_id`` keeps it, its pool).

    No reason when the delete may go on: the LV was made by that
    create, or there is no LV of that name in any pool it could be in
    and the resource is not running here (the create failed before
    making the LV).
    """
    pools = [pool] if pool is not None else list(node.lvm.pools.values())
    for candidate in pools:
        lv = node.lvm.find(candidate, resource)
        if lv is None:
            continue
        if (lv.ours and lv.pool_lv == candidate.thin
                and not lv.is_snapshot and lv.made_by(create_id)):
            return None, candidate
        return (f'LV {candidate.vg}/{resource} was not made by create '
                f'{create_id}', pool)
    if node.drbd.state(resource) is not None:
        return (f'{resource} is running here without an LV made by '
                f'create {create_id}', pool)
    return None, pool


OPS = {
    'create': (create, 'thin LV sized for DRBD metadata, .res, create-md, '
                       'up'),
    'create-from-snapshot': (create_from_snapshot,
                             'thin snapshot of a snapshot as the LV, .res, '
                             'up (no create-md)'),
    'adjust': (adjust, 'validate and write a new .res, drbdadm adjust'),
    'delete': (delete, 'down, wipe-md, lvremove, remove the .res'),
}
