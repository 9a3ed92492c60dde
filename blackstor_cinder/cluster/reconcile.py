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
majority of the replicas (some replicas unreachable).

A replica the majority's .res does not list (a node lost and healed,
see ``heal``, that came back with its old replica; a replica a removal
could not delete) is an orphan: its node deletes it (down, wipe-md, LV,
.res) once every replica the majority lists answered and is UpToDate and
the orphan is neither Primary nor connected to any of them. It never
re-joins: its data is older than theirs.

Clients (diskless hosts) are read too: the clients the replicas' .res
list and the configured clients whose last inventory holds the resource.
A client whose .res has another shape than the majority's (an old
``allow-two-primaries``, with which DRBD refuses its next reconnect)
gets the majority's .res; a client the majority no longer lists (it was
detached while unreachable: the replicas fenced it off) is detached,
never forced, so a device still open there stays and is reported.
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
    status = {'op': 'status', 'resource': name}
    replies, failures = controller.each(controller.config.storage_nodes,
                                        status)
    res = divergence.from_status(name, replies)
    clients = _clients_to_read(controller, res, set(replies) | set(failures))
    client_failures: dict = {}
    if clients:
        more, client_failures = controller.each(clients, status)
        res = divergence.from_status(name, {**more, **replies})
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
    unread = {n: 'unreachable client: ' + _clean(exc)
              for n, exc in sorted(client_failures.items())
              if only is None or n in only}
    if not (res.divergent or res.stale_clients
            or res.left_clients) and only is None:
        nodes = {n: 'unreachable: ' + _clean(failures[n]) for n in down}
        nodes.update(unread)
        text = ('in sync' if not res.copies or not down else
                f'in sync on the replicas read; unreachable: '
                f'{", ".join(down)}')
        if zeroed:
            text = '; '.join(f'{n}: {t}' for n, t in
                             sorted(zeroed.items())) + '; ' + text
        if unread:
            text += '; ' + '; '.join(f'{n}: {t}' for n, t in unread.items())
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
            nodes[node] = _remove_unlisted(controller, res, node, replies,
                                           failures)
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
    stale = [n for n in res.stale_clients if only is None or n in only]
    nodes.update(unread)
    if targets or stale:
        try:
            spec = inv.spec_from_definition(res.majority, controller.config)
            request = controller.res_request('adjust', spec)
        except (KeyError, TypeError, ValueError,
                errors.InvalidRequest) as exc:
            text = 'failed: the majority\'s .res does not fit the spec: ' + (
                _clean(exc))
            LOG.warning('Repair of the .res of %(res)s: %(err)s',
                        {'res': name, 'err': text})
            return Outcome(name, text, {n: text for n in targets + stale})
    if stale:
        _push(controller, name, [_client_node(controller, res, n)
                                 for n in stale],
              request, sources, nodes, who='client ')
    left = [n for n in res.left_clients if only is None or n in only]
    if left:
        _remove_left_clients(controller, res, left, nodes)
    if targets:
        _push(controller, name, [controller.config.node(n) for n in targets],
              request, sources, nodes)
    for node, text in sorted(nodes.items()):
        if not text.startswith(('adjusted', 'in sync', 'zeroed', 'removed',
                                'client adjusted', 'client detached')):
            LOG.warning('The .res of %(res)s on %(node)s is not repaired: '
                        '%(why)s', {'res': name, 'node': node, 'why': text})
    return Outcome(name, '; '.join(f'{n}: {t}' for n, t in
                                   sorted(nodes.items())) or 'in sync',
                   nodes)


def _remove_unlisted(controller: Any, res: divergence.Resource, node: str,
                     replies: dict, failures: dict) -> str:
    """Delete the replica on ``node`` the majority's .res no longer lists."""
    if node in failures:
        return 'unreachable: ' + _clean(failures[node])
    listed = divergence.replicas(res.majority)
    not_ready = sorted(
        n for n in listed
        if n in failures or inv.disk_states(
            (replies.get(n) or {}).get('state')).get('local') != 'UpToDate')
    if not listed or not_ready:
        return ('skipped: holds a replica the majority\'s .res does not '
                'list; kept while the listed replicas are not all '
                'UpToDate' + (f' ({", ".join(not_ready)})'
                              if not_ready else ''))
    state = (replies.get(node) or {}).get('state')
    connected = sorted(n for n in inv.connected_peers(state) if n in listed)
    if inv.is_primary(state) or connected:
        return ('skipped: holds a replica the majority\'s .res does not '
                'list, and it is ' + ('Primary' if not connected else
                                      'connected to ' + ', '.join(connected)))
    target = controller.config.node(node)
    try:
        # Its snapshots there are as old as it: the copies on the listed
        # replicas are the ones that count. Read before the delete (the
        # volume LV links a reverted family).
        snapshots = _snapshots_of(controller, target, res.name)
        controller.call(target, {
            'op': 'delete', 'resource': res.name,
            'pool': controller.config.pool})
        for snapshot in snapshots:
            controller.call(target, {
                'op': 'snapshot-delete', 'pool': controller.config.pool,
                'snapshot': snapshot})
    except Exception as exc:        # reported per node, as the others
        return 'failed: ' + _clean(exc)
    LOG.warning('Removed the replica of %(res)s on %(node)s: the .res of '
                '%(listed)s no longer lists it (a node lost and healed, or '
                'a removal that did not finish there); its data is older '
                'than theirs. Its snapshots there went with it: '
                '%(snaps)s', {'res': res.name, 'node': node,
                              'listed': ', '.join(listed),
                              'snaps': ', '.join(snapshots) or 'none'})
    return ('removed: a replica the majority\'s .res no longer lists '
            '(its data is older than the replicas\' it lists)'
            + (f', with its snapshots {", ".join(snapshots)}'
               if snapshots else ''))


def _snapshots_of(controller: Any, node: Any, volume: str) -> list[str]:
    """The snapshots on ``node`` that only ``volume`` holds together.

    Its LV family (linked by origin either way) less what another volume
    LV of the node also links: those stay with that volume.
    """
    reply = controller.call(node, {'op': 'inventory'})
    volumes = inv.by_name(reply.get('volumes'))
    snapshots = inv.by_name(reply.get('snapshots'))
    families = inv.lv_families(volumes, snapshots)
    if not families or volume not in families:
        return []
    family = families[volume]
    if any(other in volumes for other in family - {volume}):
        return []
    return sorted(family & set(snapshots))


def _clients_to_read(controller: Any, res: divergence.Resource,
                     read: set[str]) -> list[Any]:
    """The clients of ``res`` to ask, but not those in ``read``.

    Those a replica's .res lists, and the configured clients whose last
    inventory holds the resource.
    """
    wanted: dict[str, str | None] = {}
    for copy in res.copies.values():
        for host in copy.get('hosts') or ():
            if not host.get('diskful'):
                wanted.setdefault(host.get('name'), host.get('address'))
    for node in controller.clients_holding(res.name):
        wanted.setdefault(node.name, None)
    nodes = []
    for node_name, address in sorted(wanted.items()):
        if node_name in read:
            continue
        try:
            nodes.append(controller.node(node_name, address))
        except errors.InvalidRequest as exc:
            LOG.warning('Client %(node)s of %(res)s is not checked: %(err)s',
                        {'node': node_name, 'res': res.name, 'err': exc})
    return nodes


def _client_node(controller: Any, res: divergence.Resource,
                 node_name: str) -> Any:
    address = next((h.get('address') for h in (
        res.clients.get(node_name) or {}).get('hosts') or ()
        if h.get('name') == node_name), None)
    return controller.node(node_name, address)


def _push(controller: Any, name: str, targets: list[Any], request: dict,
          sources: str, nodes: dict[str, str], who: str = '') -> None:
    """The majority's .res (``request``) to ``targets``; words in ``nodes``.

    ``who``: 'client ' for clients (a diskless host's .res).
    """
    done, failed = controller.each(targets, request)
    for node in sorted(done):
        nodes[node] = f'{who}adjusted with the .res of {sources}'
    for node, exc in sorted(failed.items()):
        nodes[node] = 'failed: ' + _clean(exc)
    if done:
        LOG.info('Repaired the .res of %(res)s on %(who)s%(nodes)s: pushed '
                 'the .res of %(sources)s',
                 {'res': name, 'sources': sources, 'who': who,
                  'nodes': ', '.join(sorted(done))})


def _remove_left_clients(controller: Any, res: divergence.Resource,
                         left: list[str], nodes: dict[str, str]) -> None:
    """Detach the clients the replicas no longer list (never forced)."""
    done, failed = controller.each(
        [_client_node(controller, res, n) for n in left],
        {'op': 'detach', 'resource': res.name})
    for node in sorted(done):
        nodes[node] = ('client detached: the replicas no longer list it '
                       '(detached while it was unreachable)')
    for node, exc in sorted(failed.items()):
        nodes[node] = ('left behind, the replicas no longer list it; its '
                       'detach failed: ' + _clean(exc))
    if done:
        LOG.info('Removed the .res of %(res)s left on %(nodes)s, which the '
                 'replicas no longer list',
                 {'res': res.name, 'nodes': ', '.join(sorted(done))})


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
