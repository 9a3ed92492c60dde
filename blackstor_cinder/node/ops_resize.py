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
"""``resize``: grow a replica's LV and/or its DRBD device here.

A grow with ``--assume-clean`` zeroes where the old internal metadata
was, through the DRBD device (:mod:`.zeroing` keeps what a crash must
not lose: the LV's size before the grow and a pending zeroing).
"""

from __future__ import annotations

import logging
import os

from blackstor_cinder.node import drbd as drbd_mod
from blackstor_cinder.node import drbdstatus
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node.steps import Node
from blackstor_cinder.node.undo import Undo
from blackstor_cinder.node import zeroing
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)


def resize(node: Node, req: dict) -> dict:
    resource, size = req['resource'], req['size']
    pool = node.lvm.pool(req['pool'])
    resize_drbd = req.get('drbd', False)
    disk = node.lvm.device_path(pool.vg, resource)
    if 'spec' in req or 'secret' in req:
        # The new .res carries the device's new size (disk { size }),
        # which drbdadm resize hands to drbdsetup resize --size.
        for field in ('spec', 'secret'):
            if field not in req:
                raise AgentError(protocol.E_INVALID, f'{field}: '
                                 'missing (spec and secret go '
                                 'together)', field)
        if not resize_drbd:
            raise AgentError(protocol.E_INVALID, 'spec: only with '
                             'drbd (a new .res for drbdadm resize)',
                             'spec')
        node.check_disk(node.host_entry(resource, req['spec']), disk)
    if resize_drbd and (_zeroes(req) or node.marks.pending(resource)):
        _refuse_suspended(node, resource)
    lv = node.require_lv(pool, resource)
    lv_size, grown = lv.size, False
    lv_size_before = lv.size
    mark = _live_mark(node, resource)
    if req.get('lv', True):
        # The metadata was made with an unknown --max-peers: size for
        # the most, so the device can always expose ``size``.
        need = node.lv_size_for(pool, size, protocol.MAX_PEERS_MAX, lv)
        if lv.size < need:
            state = drbdstatus.of(node.drbd.state(resource))
            if state is None or not state.attached:
                raise AgentError(
                    protocol.E_CONFLICT,
                    f'resource: {resource} is not attached on this node;'
                    ' its LV grows only while DRBD is attached (the '
                    'metadata at the end of the LV moves with "drbdadm '
                    'resize")', 'resource')
            if mark is None:
                # Before the first lvextend: a retry after a crash
                # must still find where the old metadata ended.
                mark = zeroing.GrowMark(lv.size, state.size)
                node.marks.write(resource, mark)
            node.lvm.extend(pool, resource, need)
            lv_size, grown = need, True
    changed, zeroed, resynced = False, None, False
    if resize_drbd:
        with Undo().on_failure() as undo:
            if 'spec' in req:
                changed = node.write_res(resource, req, disk, undo)
            zeroed, resynced = _resize_drbd(node, resource, req, undo,
                                            mark, lv_size_before)
    return {'resource': resource, 'lv_size': lv_size,
            'lv_size_before': lv_size_before,
            'lv_size_base': (mark.lv_size if mark is not None
                             else lv_size_before),
            'lv_grown': grown, 'drbd_resized': resize_drbd,
            'res_changed': changed, 'zeroed': zeroed,
            'resynced': resynced,
            'zero_pending': node.marks.pending(resource)}


def _live_mark(node: Node, resource: str) -> zeroing.GrowMark | None:
    """The resource's grow mark; a stale one is removed first."""
    mark = node.marks.read(resource)
    if mark is not None and mark.zero is None and mark.stale(
            drbdstatus.device_size(node.drbd.state(resource))):
        node.marks.remove(resource)
        return None
    return mark


def _resize_drbd(node: Node, resource: str, req: dict, undo: Undo,
                 mark: zeroing.GrowMark | None, lv_size: int
                 ) -> tuple[list[int] | None, bool]:
    """drbdadm resize; (zeroed range, resynced) as the reply says.

    With --assume-clean the grown range is taken as identical on every
    replica, but where the old internal metadata was (zero_from ..
    zero_to) each replica holds its own bytes (node-id, bitmaps):
    those are overwritten with zeros through the DRBD device, which
    this node holds open (Primary, by auto-promote) from before the
    resize on, so no other node can write there first. The range is
    recorded as pending (:mod:`.zeroing`) before the resize and
    forgotten once zeroed and flushed; a pending one is finished here
    by any later resize with ``drbd``. Only a range this resize
    exposes, or one pending, is zeroed, and never below ``zero_from``
    (the size the volume has). When the device cannot be opened
    (another node is Primary), DRBD resyncs the grown range instead
    (no --assume-clean); a pending zeroing then waits.
    """
    assume_clean = req.get('assume_clean', False)
    lower, upper = req.get('zero_from'), req.get('zero_to')
    pending = mark.zero if mark is not None else None
    state = drbdstatus.of(node.drbd.state(resource))
    device_size = state.size if state is not None else None
    ranges = [pending] if pending else []
    if _zeroes(req) and (device_size is None or device_size <= lower):
        ranges.append((lower, upper))       # this resize exposes it
    if not ranges:
        node.drbd.resize(resource, assume_clean)
        return None, False
    start, end = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if pending:
        _check_pending(node, resource, pending, lower)
    if state is None or state.minor is None:
        raise AgentError(protocol.E_NOT_FOUND, f'resource: {resource} '
                         'is not up on this node', 'resource')
    device = os.path.join(node.conf.device_root, f'drbd{state.minor}')
    try:
        fd = os.open(device, os.O_WRONLY)
    except OSError as e:
        if pending:
            raise AgentError(
                protocol.E_BUSY,
                f'resource: a zeroing of [{pending[0]}, {pending[1]}) '
                f'of {resource} is pending on {node.conf.node_name} '
                f'and needs {device} open for writing, which failed '
                f'({e.strerror}; another node Primary?): retry while '
                'no other node uses the volume', 'resource') from None
        LOG.warning('Cannot open %(dev)s for writing (%(err)s); '
                    'resizing %(res)s without --assume-clean: DRBD '
                    'resyncs the grown range',
                    {'dev': device, 'err': e.strerror, 'res': resource})
        node.drbd.resize(resource, False)
        return None, True
    try:
        node.marks.write(resource, zeroing.GrowMark(
            mark.lv_size if mark is not None else lv_size,
            mark.device_size if mark is not None else device_size,
            (start, end)))
        if not pending or _smaller_than_res(node, resource, device_size):
            node.drbd.resize(resource, True)
        # the device has its new size: the new .res stays
        undo.forget()
        end = min(end, os.lseek(fd, 0, os.SEEK_END))
        how = zeroing.zero_range(fd, start, end)
        node.marks.remove(resource)
    except OSError as e:
        raise AgentError(protocol.E_FAILED,
                         f'zeroing {device} from {start} to {end} '
                         f'failed: {e.strerror}; it stays pending on '
                         f'{node.conf.node_name} (the next resize with '
                         'drbd finishes it)') from None
    finally:
        os.close(fd)
    LOG.info('Zeroed %(dev)s from %(start)s to %(end)s (%(how)s)',
             {'dev': device, 'start': start, 'end': end, 'how': how})
    return [start, max(start, end)], False


def _check_pending(node: Node, resource: str, pending: tuple[int, int],
                   lower: int | None) -> None:
    """Refuse to finish a pending zeroing that may destroy data."""
    where = (f'a zeroing of [{pending[0]}, {pending[1]}) of {resource} '
             f'is pending on {node.conf.node_name}')
    if lower is None:
        raise AgentError(protocol.E_INVALID,
                         f'zero_from: missing; {where} and finishes '
                         'only with the size the volume has (zero_from)',
                         'zero_from')
    if pending[0] < lower:
        raise AgentError(
            protocol.E_CONFLICT,
            f'zero_from: {where}, but the volume has {lower} bytes: '
            'that range may hold data now. Not zeroing it, nothing '
            'changed; compare the replicas (drbdadm verify) and remove '
            f'{node.marks.path(resource)} once they agree', 'zero_from')


def _smaller_than_res(node: Node, resource: str,
                      device_size: int | None) -> bool:
    """Whether the running device is below its .res's size (or unknown).

    A pending zeroing is finished without ``drbdadm resize`` when the
    device already has its size (an older .res must not shrink it).
    """
    text = ((node.store.read_definition(resource) or {}).get('disk')
            or {}).get('size')
    if device_size is None or text is None:
        return True
    try:
        return device_size < drbd_mod.size_bytes(text)
    except ValueError:
        return True


def _refuse_suspended(node: Node, resource: str) -> None:
    # Writes to a device with suspended I/O wait until it resumes: the
    # zeroing would hang holding the lock (found by fuzzing).
    state = drbdstatus.of(node.drbd.state(resource))
    if state is not None and state.suspended_reasons:
        raise AgentError(
            protocol.E_CONFLICT,
            f'resource: I/O of {resource} is suspended on this node; '
            'a resize that zeroes the old metadata area writes through '
            'the device: resume I/O first', 'resource')


def _zeroes(req: dict) -> bool:
    """Whether a resize request asks to zero the old metadata area."""
    start, end = req.get('zero_from'), req.get('zero_to')
    return bool(req.get('assume_clean') and start is not None
                and end is not None and end > start)


OPS = {
    'resize': (resize, 'grow the LV (lv) and/or DRBD (drbd, assume_clean; '
                       'spec: the .res with the new size first)'),
}
