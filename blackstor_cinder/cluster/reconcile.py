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
"""Push the majority's .res to replicas that missed a change.

A replica unreachable while a flow rewrote the .res (attach, detach,
extend) comes back with its old .res: without a new client, with an old
``allow-two-primaries``. :func:`reconcile` gives it the .res most replicas
hold, under the resource's lock (``blackstor-resource-<name>``, held by
every flow that rewrites a .res) taken without waiting: a resource whose
lock is held is left alone ('busy'), the flow holding it pushes its .res
itself. Under the lock every storage node's copy is read again and the
majority is computed from that fresh view.

A replica with a pending zeroing (an extend whose zeroing of the old
metadata area did not finish: the replicas may differ there while DRBD
believes them in sync) is asked to finish it first, from the smallest
size a replica's .res gives (nothing below it is zeroed); while that
fails, nothing is pushed: the larger size would reach the others with the
divergence still in it.

Never acted on: a tie, or a majority of the copies read that is not a
majority of the replicas (some replicas unreachable); a replica the
majority's .res does not list. Clients (diskless hosts) are not storage
nodes and are not read: a client keeps its .res until its next attach.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Iterable

from oslo_utils import strutils

from blackstor_cinder.cluster import divergence
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv

LOG = logging.getLogger(__name__)

BUSY = 'busy'


@dataclasses.dataclass
class Outcome:
    """What one repair did: a summary and a word per node it concerned."""

    name: str
    text: str
    nodes: dict[str, str] = dataclasses.field(default_factory=dict)


def _clean(value: Any) -> str:
    return strutils.mask_password(str(getattr(value, 'message', value)))


def reconcile(controller: Any, names: Iterable[str] | None = None
              ) -> dict[str, str]:
    """Repair the divergent .res of ``names`` (default: all that diverge).

    Returns what happened per resource. Without ``names`` the storage
    nodes' inventories are read to find them. A failure on one resource is
    its outcome ('failed: ...'), never an exception.
    """
    if names is None:
        inventories, _failures = controller.inventories()
        names = divergence.divergent_names(
            {node: report.resources for node, report in inventories.items()})
    outcomes = {}
    for name in sorted(set(names)):
        try:
            outcomes[name] = repair(controller, name).text
        except Exception as exc:    # one resource never stops the others
            outcomes[name] = 'failed: ' + _clean(exc)
            LOG.warning('Repair of the .res of %(res)s failed: %(err)s',
                        {'res': name, 'err': outcomes[name]})
    return outcomes


def repair(controller: Any, name: str,
           only: Iterable[str] | None = None) -> Outcome:
    """Push the majority's .res to the divergent replicas of ``name``.

    ``only``: push to these nodes only; a replica listed there whose .res
    is missing (its LV known to exist, as ``blackstor-manage check`` finds)
    gets the majority's .res too.
    """
    lock = controller.resource_lock(name)
    if not lock.acquire(blocking=False):
        LOG.info('The .res of %s is not checked now: an operation on it is '
                 'running', name)
        return Outcome(name, BUSY)
    try:
        return _repair(controller, name,
                       None if only is None else set(only))
    finally:
        lock.release()


def _repair(controller: Any, name: str, only: set[str] | None) -> Outcome:
    replies, failures = controller.each(
        controller.config.storage_nodes, {'op': 'status', 'resource': name})
    res = divergence.from_status(name, replies)
    zeroed, failed = _finish_zeroing(controller, res)
    if failed:
        text = 'failed: ' + '; '.join(f'{n}: {t}' for n, t in
                                      sorted(failed.items()))
        LOG.warning('The .res of %(res)s is not repaired: a zeroing is '
                    'pending and could not be finished: %(why)s',
                    {'res': name, 'why': text})
        return Outcome(name, text, {**zeroed, **failed})
    listed = set()
    for copy in res.copies.values():
        listed |= set(divergence.replicas(copy))
    down = sorted(listed & set(failures))
    if not res.divergent and only is None:
        nodes = {n: 'unreachable: ' + _clean(failures[n]) for n in down}
        text = ('in sync' if not res.copies or not down else
                f'in sync on the replicas read; unreachable: '
                f'{", ".join(down)}')
        if zeroed:
            text = '; '.join(f'{n}: {t}' for n, t in
                             sorted(zeroed.items())) + '; ' + text
        return Outcome(name, text, {**zeroed, **nodes})
    if not divergence.confirmed(res, failures):
        why = ('no majority among the replicas' if res.majority is None else
               f'the copies of {", ".join(res.sources)} are not a majority '
               f'of the replicas')
        if down:
            why += f' (unreachable: {", ".join(down)})'
        LOG.warning('The .res of %(res)s differs between its replicas and '
                    'is not repaired: %(why)s', {'res': name, 'why': why})
        text = 'skipped: ' + why
        return Outcome(name, text, {n: text for n in only or ()})
    listed = set(divergence.replicas(res.majority))
    nodes: dict[str, str] = dict(zeroed)
    targets = []
    for node in sorted(set(res.divergent) | (only or set())):
        if only is not None and node not in only:
            continue
        if node not in listed:
            nodes[node] = ('skipped: holds a replica the majority\'s .res '
                           'does not list')
        elif node in failures:
            nodes[node] = 'unreachable: ' + _clean(failures[node])
        elif node in res.divergent or (node in replies and not replies[
                node].get('exists')):
            targets.append(node)
        else:
            nodes.setdefault(node, 'in sync')
    for node in sorted(listed & set(failures)):
        nodes.setdefault(node, 'unreachable: ' + _clean(failures[node]))
    sources = ', '.join(res.sources)
    if targets:
        try:
            spec = inv.spec_from_definition(res.majority, controller.config)
            request = controller.res_request('adjust', spec)
        except (KeyError, TypeError, ValueError,
                errors.InvalidRequest) as exc:
            text = 'failed: the majority\'s .res does not fit the spec: ' + (
                _clean(exc))
            LOG.warning('Repair of the .res of %(res)s: %(err)s',
                        {'res': name, 'err': text})
            return Outcome(name, text, {n: text for n in targets})
        done, failed = controller.each(
            [controller.config.node(n) for n in targets], request)
        for node in sorted(done):
            nodes[node] = f'adjusted with the .res of {sources}'
        for node, exc in sorted(failed.items()):
            nodes[node] = 'failed: ' + _clean(exc)
        if done:
            LOG.info('Repaired the .res of %(res)s on %(nodes)s: pushed the '
                     '.res of %(sources)s',
                     {'res': name, 'sources': sources,
                      'nodes': ', '.join(sorted(done))})
    for node, text in sorted(nodes.items()):
        if not text.startswith(('adjusted', 'in sync', 'zeroed')):
            LOG.warning('The .res of %(res)s on %(node)s is not repaired: '
                        '%(why)s', {'res': name, 'node': node, 'why': text})
    return Outcome(name, '; '.join(f'{n}: {t}' for n, t in
                                   sorted(nodes.items())) or 'in sync',
                   nodes)


def _finish_zeroing(controller: Any, res: divergence.Resource
                    ) -> tuple[dict[str, str], dict[str, str]]:
    """Have each replica with a pending zeroing finish it; (done, failed).

    From the smallest size a replica's .res gives: what every replica
    held before the extend that left the zeroing, the lower bound of
    what may be zeroed (the agent refuses a pending range below it).
    """
    pending = res.zero_pending
    if not pending:
        return {}, {}
    sizes = [s for s in (inv.definition_size(d) for d in res.copies.values())
             if s is not None]
    if not sizes:
        why = ('zeroing pending, not finished: no replica\'s .res gives '
               'the volume\'s size')
        return {}, {node: why for node in pending}
    request = controller.zeroing_request(res.name, min(sizes), max(sizes))
    done, failures = controller.each(
        [controller.config.node(n) for n in pending], request)
    zeroed = {n: f'zeroed the pending [{r[0]}, {r[1]})'
              for n, r in pending.items() if n in done}
    for node in sorted(zeroed):
        LOG.info('Finished the zeroing of %(res)s pending on %(node)s',
                 {'res': res.name, 'node': node})
    return zeroed, {n: 'zeroing pending, not finished: ' + _clean(e)
                    for n, e in failures.items()}
