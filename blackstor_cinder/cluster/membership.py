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
"""Change the replicas of a running resource: add one, remove one.

The caller holds the resource's lock (``Controller.resource_lock``).

DRBD semantics this relies on (LINBIT/drbd 9.2.18):

- A replica that joins with fresh metadata (``create-md``: current UUID
  ``UUID_JUST_CREATED``) and meets an UpToDate peer becomes its
  SyncTarget with every block out of sync (drbd_receiver.c,
  ``drbd_uuid_compare``: ``RULE_JUST_CREATED_SELF`` gives
  ``SYNC_TARGET_SET_BITMAP``): a full sync. It is never given
  ``new-current-uuid --clear-bitmap``: that is the initial-sync skip of a
  fresh volume whose replicas all read zeros; here it would declare a
  replica UpToDate that holds none of the data.
- ``forget-peer`` (drbd_nl.c, ``drbd_adm_forget_peer``) is refused while
  a connection to that node-id exists: it comes after the adjust that
  removed the peer from the .res (drbdadm's ``del-peer``). It frees the
  peer's bitmap slot (``clear_peer_slot``).
- A joining replica gets a node-id no host of the resource has (the
  removed one's included): the survivors' bitmap slots are keyed by
  node-id.
- A diskless peer (the tiebreaker) becomes a replica with its node-id:
  drbdadm gives a peer that is ``disk none`` in the .res ``--bitmap=no``
  (drbd-utils, drbdadm_postparse.c: add_no_bitmap_opt), so the replicas
  keep no bitmap slot for it; the adjust that gives it a disk in their
  .res turns the option on and the kernel allocates the slot then
  (drbd_nl.c, drbd_adm_peer_device_opts: allocate_bitmap_index). So
  they get the new .res first, and only then does its node make the LV,
  ``create-md`` (refused only on an attached minor) and attach: it
  joins with fresh metadata and syncs in full, as a new replica does.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from typing import Any

from blackstor_cinder.cluster import allocation
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import transport as tp

LOG = logging.getLogger(__name__)


def add_replica(ctl, name: str, target: str, size: int,
                replacing: str | None = None,
                create_id: str | None = None) -> model.ResourceSpec:
    """Give ``name`` a new replica on storage node ``target``; the new spec.

    ``replacing``: a replica on a lost node that leaves the .res in the
    same change (its node is down: its data cannot be synced from, and
    its return must not reconnect). The replica is created on ``target``
    (LV, .res, ``create-md``, up), then every other replica and client
    gets the new .res (``adjust``); the new replica syncs from the
    survivors (see :func:`wait_up_to_date`). A failure before that is
    rolled back: the survivors get the old .res back and what was made on
    ``target`` is removed. Run again when ``target`` is already in the
    .res, it pushes the same .res again (converges). ``create_id`` tags
    the new LV (the agent's ``create``; inventories report it): a rollback
    removes only an LV it tagged. A ``target`` that is the tiebreaker
    becomes the replica, with its node-id (see the module's docstring);
    the volume has no tiebreaker then.
    """
    found = ctl.require(name)
    old = found.spec
    node = ctl.config.node(target)
    if node is None or not node.storage:
        raise errors.InvalidRequest(f'{target} is not a configured storage '
                                    f'node')
    current = old.host(target)
    converts = current is not None and current.tiebreaker
    if current is not None and not current.diskful and not converts:
        raise errors.InvalidRequest(
            f'{target} is a diskless client of {name}: detach it there '
            f'before it can hold a replica')
    survivors = [h for h in old.diskful_hosts
                 if h.name not in (target, replacing)]
    missing = {h.name: found.unreachable[h.name] for h in survivors
               if h.name in found.unreachable}
    if missing:
        raise errors.NodeOperationFailed(
            f'new replica of {name} on {target}: every other replica must '
            f'be reachable', missing)
    if not any(inv.disk_states(found.states.get(h.name)).get('local')
               == 'UpToDate' for h in survivors):
        raise errors.ClusterError(
            f'{name} has no UpToDate replica to sync a new one on {target} '
            f'from')
    hosts = [h for h in old.hosts if h.name != replacing
             and not (converts and h.name == target)]
    if converts:
        # the tiebreaker keeps its node-id and address, gets a disk
        hosts.append(dataclasses.replace(
            current, diskful=True, tiebreaker=False,
            disk=ctl.config.lv_path(name)))
    elif current is None:
        # every node-id of the old .res stays taken, the leaving one's too
        hosts.append(model.ResourceHost(
            name=target, node_id=allocation.next_node_id(
                h.node_id for h in old.hosts),
            address=node.replication_address, diskful=True,
            disk=ctl.config.lv_path(name)))
    # bitmap slots: the leaving peer's stays allocated until forget-peer
    if len(hosts) + (replacing is not None) > old.max_peers + 1:
        raise errors.InvalidRequest(
            f'{name} has {len(old.hosts)} hosts: its metadata has no '
            f'bitmap slot for one more (blackstor_max_peers = '
            f'{old.max_peers}); detach a client first')
    new = old.with_hosts(tuple(sorted(hosts, key=lambda h: h.node_id)))
    _push(ctl, found, old, new, target, size,
          create_id or secrets.token_hex(16), converts)
    LOG.info('%(res)s: new replica on %(target)s%(instead)s%(tie)s; it '
             'syncs from %(from)s',
             {'res': name, 'target': target,
              'instead': f' instead of {replacing}' if replacing else '',
              'tie': ' (its tiebreaker there until now)' if converts
              else '',
              'from': ', '.join(h.name for h in survivors)})
    return new


def _push(ctl, found, old: model.ResourceSpec, new: model.ResourceSpec,
          target: str, size: int, create_id: str,
          converts: bool = False) -> None:
    """Create on ``target``, adjust the others; undo on failure.

    ``converts`` (the target is the tiebreaker): the others first.
    """
    target_node = ctl.node(target)
    others = [ctl.node(h.name) for h in new.diskful_hosts
              if h.name != target and h.name not in found.unreachable]

    def undo(done: list[model.Node]) -> None:
        _, stuck = ctl.each(done, ctl.res_request('adjust', old))
        for node_name, exc in stuck.items():
            LOG.error('%(res)s on %(node)s keeps the .res with the new '
                      'replica; the periodic repair gives it the old one: '
                      '%(err)s', {'res': new.name, 'node': node_name,
                                  'err': exc})
        _remove_new(ctl, target_node, new.name, create_id)
        if converts:
            _restore_tiebreaker(ctl, target_node, old)

    def create() -> None:
        try:
            ctl.call(target_node, ctl.res_request(
                'create', new, pool=ctl.config.pool, size=size,
                max_peers=new.max_peers, create_id=create_id))
        except tp.NodeError as exc:
            undo(others if converts else [])
            raise errors.NodeOperationFailed(
                f'new replica of {new.name} on {target}', {target: exc}
            ) from exc

    if not converts:
        create()
    _, failures = ctl.each(others, ctl.res_request('adjust', new))
    if failures:
        undo([n for n in others if n.name not in failures])
        raise errors.NodeOperationFailed('adjust', failures)
    if converts:
        create()
    adjust_clients(ctl, new)


def _restore_tiebreaker(ctl, node: model.Node,
                        old: model.ResourceSpec) -> None:
    """The tiebreaker ``node`` was before a failed change; logged."""
    try:
        ctl.call(node, ctl.res_request('adjust', old))
    except tp.NodeError as exc:
        LOG.error('The tiebreaker of %(res)s on %(node)s is not back; the '
                  'periodic tiebreaker check places one: %(err)s',
                  {'res': old.name, 'node': node.name, 'err': exc})


def _remove_new(ctl, node: model.Node, name: str, create_id: str) -> None:
    """Remove what the create on ``node`` made (only that)."""
    try:
        ctl.call(node, {'op': 'delete', 'resource': name,
                        'pool': ctl.config.pool, 'create_id': create_id})
    except tp.NodeError as exc:
        LOG.error('Rollback of the new replica of %(res)s on %(node)s '
                  'failed; check --fix removes what is left: %(err)s',
                  {'res': name, 'node': node.name, 'err': exc})


def adjust_clients(ctl, spec: model.ResourceSpec) -> None:
    """The diskless hosts get the new .res; best effort (logged).

    The attached clients and the tiebreaker: a tiebreaker left with the
    old .res would not connect to the new replica, and would not count.
    """
    clients = [ctl.node(h.name, h.address) for h in spec.diskless_hosts]
    if not clients:
        return
    _, failures = ctl.each(clients, ctl.res_request('adjust', spec))
    for node_name, exc in failures.items():
        LOG.warning('Diskless %(node)s of %(res)s did not take the new '
                    '.res; the periodic repair gives it: %(err)s',
                    {'node': node_name, 'res': spec.name, 'err': exc})


def wait_up_to_date(ctl, spec: model.ResourceSpec, node: str,
                    timeout: float, poll: float = 0.5) -> None:
    """Wait until the replica on ``node`` is UpToDate (its sync is over)."""
    deadline = time.monotonic() + timeout
    target = ctl.node(node)
    while True:
        try:
            state = ctl.call(target, {'op': 'status',
                                      'resource': spec.name}).get('state')
        except tp.NodeError as exc:
            raise errors.NodeOperationFailed(
                f'sync of the new replica of {spec.name}', {node: exc}
            ) from exc
        disks = inv.disk_states(state)
        if disks.get('local') == 'UpToDate':
            return
        if time.monotonic() > deadline:
            raise errors.ClusterError(
                f'the new replica of {spec.name} on {node} is not UpToDate '
                f'after {timeout:.0f}s (disks: {disks}); its sync goes on: '
                f'run the command again to wait for it')
        time.sleep(poll)


def wait_unlocked(ctl, lock: Any, spec: model.ResourceSpec, node: str,
                  timeout: float) -> core.Found:
    """:func:`wait_up_to_date` with ``lock`` released; what holds after.

    ``lock``: the resource's, held by the caller. A full sync takes as
    long as the volume is big; every other flow of the volume (an
    attach or detach, a heal, the periodic repair) would wait that long
    for the lock. It is released while the sync runs (nothing is
    changed then) and taken again before the caller goes on, which
    reads the resource again (``Found``): refused (nothing more
    changed) when the replica on ``node`` is gone or no longer UpToDate
    in the meantime.
    """
    lock.release()
    try:
        wait_up_to_date(ctl, spec, node, timeout)
    finally:
        lock.acquire()
    found = ctl.require(spec.name)
    host = found.spec.host(node)
    disk = inv.disk_states(found.states.get(node)).get('local')
    if host is None or not host.diskful:
        now = 'no replica there'
    elif disk != 'UpToDate':
        now = disk or 'not reported'
    else:
        return found
    raise errors.ClusterError(
        f'{spec.name} changed while its new replica on {node} synced (it '
        f'is {now} now); nothing more was changed: run again')


def remove_replica(ctl, name: str, node: str) -> model.ResourceSpec | None:
    """Take the replica on ``node`` (up and reachable) out of ``name``.

    Refused unless every other replica is reachable and UpToDate, and
    when the replica is Primary (a guest uses it). The others and the
    clients get the .res without it, ``forget-peer`` its node-id, then
    ``node`` deletes its replica (down, wipe-md, LV, .res). Gone already
    is success (None).
    """
    found = ctl.find(name)
    old = found.spec
    if old is None or old.host(node) is None or not old.host(node).diskful:
        return None
    leaving = old.host(node)
    rest = [h for h in old.diskful_hosts if h.name != node]
    bad = {h.name: inv.disk_states(found.states.get(h.name)).get('local')
           for h in rest}
    bad = {n: d for n, d in bad.items() if d != 'UpToDate'}
    if not rest or bad or node in found.unreachable:
        raise errors.ClusterError(
            f'replica of {name} on {node} not removed: '
            + (f'{node} is unreachable' if node in found.unreachable else
               'it is the last one' if not rest else
               'the other replicas are not all UpToDate: ' + ', '.join(
                   f'{n}={d}' for n, d in sorted(bad.items()))))
    if inv.is_primary(found.states.get(node)):
        raise errors.ClusterError(
            f'replica of {name} on {node} not removed: it is Primary (in '
            f'use there)')
    new = old.with_hosts(tuple(h for h in old.hosts if h.name != node))
    ctl.each_or_raise('adjust', [ctl.node(h.name) for h in rest],
                      ctl.res_request('adjust', new))
    adjust_clients(ctl, new)
    ctl.forget_peers(new, [leaving.node_id])
    ctl.each_or_raise(f'removal of the replica of {name} on {node}',
                      [ctl.node(node)],
                      {'op': 'delete', 'resource': name,
                       'pool': ctl.config.pool})
    LOG.info('%(res)s: replica on %(node)s removed', {'res': name,
                                                      'node': node})
    return new
