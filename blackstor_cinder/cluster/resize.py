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
"""Resize and revert: the flows that change a volume's LVs in place.

An extend grows every replica's LV, then the DRBD device, online
(:func:`grow`); a revert rolls every replica back to a snapshot, or none
(:func:`revert_to_snapshot`), and grows it again when the volume was
extended since the snapshot. Both run under the volume's resource lock,
which the facade (``Controller``) takes.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import sync

LOG = logging.getLogger(__name__)


def extend_volume(ctl: core.Core, name: str, size: int,
                  old_size: int | None = None) -> None:
    """Grow ``name`` to ``size`` bytes.

    ``old_size``: the size the volume has for its user (Cinder's);
    nothing below it is ever zeroed. Without it, the smallest size a
    replica's .res gives stands for it.
    """
    core.check_size(size, 'volume size')
    found = ctl.require(name)
    ctl.require_replicas(found, 'extend of ' + name)
    if found.spec.size is not None and size < found.spec.size:
        raise errors.InvalidRequest(
            f'{name} has {found.spec.size} bytes; it cannot shrink to '
            f'{size}')
    grow(ctl, found.spec, size,
         found.smallest_size if old_size is None else old_size)


def grow(ctl: core.Core, spec: model.ResourceSpec, size: int,
         known: int | None = None) -> model.ResourceSpec:
    """Grow every replica's LV, then the DRBD device, online.

    The LVs first: DRBD is never larger than a replica can hold. Then
    one replica gets the .res with the new size and runs ``drbdadm
    resize``, which hands the size to ``drbdsetup resize --size=``;
    DRBD passes it to the connected peers, which take it as their own
    (the kernel's "Peer sets u_size"). Then the other replicas get the
    new .res (their ``adjust`` finds the size already in place).

    The grown range is marked in sync (--assume-clean): new thin
    blocks read zeros on every replica, except where the old internal
    metadata was (it moves to the LV's new end, and what it leaves
    behind differs per node: node-id, bitmaps). That replica zeroes
    the range from the old size (``known``, default the spec's) to
    the old end of the largest LV (``lv_size_base``: the LVs' size
    before the first grow of this extend, also on a retry) through
    the device, so every replica gets the same zeros; when it cannot
    (another node is Primary) it lets DRBD resync the grown range
    instead. A zeroing an earlier attempt left pending on another
    replica is finished before, and the one on that replica by its
    own resize, so no replica gets the larger .res while one is
    pending. Returns the grown spec.
    """
    grown = dataclasses.replace(spec, size=size)
    nodes = ctl.nodes(spec.diskful_hosts)
    grown_lvs = ctl.each_or_raise('resize', nodes, {
        'op': 'resize', 'resource': spec.name, 'pool': ctl.config.pool,
        'size': size, 'lv': True, 'drbd': False})
    lower = spec.size if known is None else known
    fields: dict[str, Any] = {}
    bases = [r.get('lv_size_base', r.get('lv_size_before'))
             for r in grown_lvs.values()]
    if spec.size is not None and lower is not None:
        fields['zero_from'] = lower
        if bases and all(isinstance(b, int) for b in bases) and max(
                bases) > lower:
            # the old metadata ended at the end of each old LV
            fields['zero_to'] = max(bases)
    for node in nodes[1:]:
        if grown_lvs[node.name].get('zero_pending'):
            ctl.each_or_raise('zeroing left by an earlier extend',
                              [node], zeroing_request(
                                  ctl, spec.name, lower, spec.size or size))
    reply = ctl.each_or_raise('resize', nodes[:1], ctl.res_request(
        'resize', grown, pool=ctl.config.pool, size=size, lv=False,
        drbd=True, assume_clean=True, **fields))[nodes[0].name]
    if len(nodes) > 1:
        ctl.each_or_raise('adjust', nodes[1:],
                          ctl.res_request('adjust', grown))
    LOG.info('Grew %(res)s to %(size)s bytes%(how)s',
             {'res': spec.name, 'size': size,
              'how': ' (DRBD resyncs the grown range)'
              if reply.get('resynced') else ''})
    return grown


def zeroing_request(ctl: core.Core, name: str, zero_from: int | None,
                    size: int) -> dict:
    """The request that finishes a zeroing pending on a replica.

    ``zero_from``: the size the volume has (the agent refuses a
    pending range below it); ``size``: the device's size (its .res).
    """
    request = {'op': 'resize', 'resource': name,
               'pool': ctl.config.pool, 'size': size, 'lv': False,
               'drbd': True, 'assume_clean': True}
    if zero_from is not None:
        request['zero_from'] = zero_from
    return request


def revert_to_snapshot(ctl: core.Core, volume: str, snapshot: str,
                       snapshot_size: int, size: int) -> None:
    """Every replica becomes the snapshot again, or none does.

    Two phases, so that replicas never end with different data under
    the same generation identifiers: every replica first makes its
    rolled-back LV beside the live one (``prepare``), then swaps them
    while down (``swap``, the old LV kept as ``<res>.previous``). If
    either phase fails anywhere, every replica undoes both (``undo``)
    and comes back up with its old data. Only once every replica runs
    the snapshot's data again is the old LV removed (``commit``).

    It comes up at the snapshot's size (what its LV holds) and is
    grown online to ``size`` when the volume was extended since.
    """
    core.check_fits(snapshot_size, size)
    found = ctl.require(volume)
    old = found.spec
    ctl.require_replicas(found, 'revert of ' + volume)
    if old.client_hosts:
        raise errors.InvalidRequest(
            f'{volume} is attached to '
            f'{", ".join(h.name for h in old.client_hosts)}; detach '
            f'it before reverting')
    nodes = ctl.nodes(old.diskful_hosts)
    spec = dataclasses.replace(old, size=snapshot_size)
    rollback = {'op': 'snapshot-rollback', 'resource': volume,
                'pool': ctl.config.pool, 'snapshot': snapshot}
    try:
        for phase in ('prepare', 'swap'):
            ctl.each_or_raise(f'revert ({phase})', nodes,
                              dict(rollback, phase=phase))
    except errors.ClusterError:
        _undo_revert(ctl, old, nodes, rollback)
        raise
    ctl.each_or_raise('adjust', nodes,
                      ctl.res_request('adjust', spec))
    if len(nodes) > 1:
        sync.wait_connected(ctl, spec, nodes[0])
    _, failures = ctl.each(nodes, dict(rollback, phase='commit'))
    for node_name, exc in failures.items():
        LOG.error('Revert of %(res)s: the old LV %(res)s.previous is '
                  'left on %(node)s (the next revert or the delete '
                  'removes it): %(err)s',
                  {'res': volume, 'node': node_name, 'err': exc})
    if size > snapshot_size:
        grow(ctl, spec, size)
    LOG.info('Reverted %(res)s to %(snap)s on %(nodes)s',
             {'res': volume, 'snap': snapshot,
              'nodes': ', '.join(n.name for n in nodes)})


def _undo_revert(ctl: core.Core, old: model.ResourceSpec,
                 nodes: list[model.Node], rollback: dict) -> None:
    """Every replica back to its old LV and up; loud when it cannot."""
    _, failures = ctl.each(nodes, dict(rollback, phase='undo'))
    if not failures:
        _, failures = ctl.each(nodes, ctl.res_request('adjust', old))
    for node_name, exc in failures.items():
        LOG.error('Revert of %(res)s failed and could not be undone on '
                  '%(node)s: %(err)s. Do not use the volume until '
                  'every replica has its old LV back (retry the revert '
                  'or blackstor-manage check)',
                  {'res': old.name, 'node': node_name, 'err': exc})
