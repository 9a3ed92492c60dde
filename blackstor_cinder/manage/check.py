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
"""``check``: orphans and inconsistencies, and the repairs of ``--fix``.

What it reports is listed in :mod:`blackstor_cinder.manage`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Callable

from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import divergence
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import reconcile
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder.manage import command
from blackstor_cinder.manage import config
from blackstor_cinder.manage import survey as sv
from blackstor_cinder import protocol

#: Prefix of the temporary snapshot of Controller.clone_volume.
CLONE_PREFIX = ctl.CLONE_PREFIX


@dataclasses.dataclass
class Problem:
    """One finding of ``check``; ``repair`` is set when --fix may act."""

    kind: str
    node: str | None
    name: str | None
    detail: str
    fix: str = ''                         # what --fix does ('' = nothing)
    needs_orphan_flag: bool = False
    repair: Callable[[ctl.Controller], str] | None = dataclasses.field(
        default=None, repr=False, compare=False)
    result: str = ''

    def row(self, with_result: bool) -> tuple:
        fix = self.fix or 'report only'
        if self.needs_orphan_flag:
            fix += ' (with --fix-orphan-lvs)'
        base = (self.kind, self.node, self.name, self.detail, fix)
        return base + (self.result,) if with_result else base


def _cinder_names(path: str) -> set[str]:
    """Resource names from a JSON list of volumes.

    Items are resource names (``volume-<name_id>``), bare volume IDs, or
    objects such as ``openstack volume list -f json`` prints (``ID``; a
    migrated volume's ``name_id`` differs from its ID and wins when given).
    """
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise config.ConfigError(f'--cinder-volumes {path}: {exc}') from None
    if not isinstance(data, list):
        raise config.ConfigError(f'--cinder-volumes {path}: not a JSON list')
    names = set()
    for item in data:
        if isinstance(item, dict):
            item = next((item[k] for k in (
                'name_id', 'os-vol-mig-status-attr:name_id', 'ID', 'id')
                if item.get(k)), None)
        if not isinstance(item, str) or not item:
            raise config.ConfigError(f'--cinder-volumes {path}: {item!r} '
                                     f'is not a volume name or ID')
        names.add(item if item.startswith('volume-') else 'volume-' + item)
    return names


def find_problems(cluster: model.ClusterConfig, survey: sv.Survey,
                  cinder: set[str] | None = None) -> list[Problem]:
    """Everything ``check`` reports, with the repairs --fix may run."""
    problems: list[Problem] = []
    storage = {n.name for n in cluster.storage_nodes}
    resources = divergence.collect(survey.replies)
    for node, exc in sorted(survey.failures.items()):
        problems.append(Problem(f'node-{sv.state_of(exc)}', node, None,
                                sv.clean(exc.message)))
    listed_on: dict[tuple[str, str], list[str]] = {}
    for res in resources.values():
        for holder, definition in res.copies.items():
            for replica in sv.hosts(definition, True):
                listed_on.setdefault((replica, res.name), []).append(holder)
    for node in sorted(survey.replies):
        problems += _node_problems(cluster, node, survey, resources,
                                   listed_on, cinder)
    for name, res in sorted(resources.items()):
        problems += _resource_problems(cluster, res, survey, storage)
    if cinder is not None:
        names = set(resources)
        for reply in survey.replies.values():
            names |= set(inv.by_name(reply.get('volumes')))
        for name in sorted(names - cinder):
            holders = sorted(n for n, r in survey.replies.items()
                             if name in (r.get('resources') or {})
                             or name in inv.by_name(r.get('volumes')))
            problems.append(Problem(
                'no-cinder-volume', ', '.join(holders), name,
                'no Cinder volume has this name'))
    return problems


def _node_problems(cluster: model.ClusterConfig, node: str, survey: sv.Survey,
                   resources: dict[str, divergence.Resource],
                   listed_on: dict[tuple[str, str], list[str]],
                   cinder: set[str] | None) -> list[Problem]:
    reply = survey.replies[node]
    found: list[Problem] = []
    report = inv.NodeInventory.from_reply(node, reply)
    if cluster.pool not in report.pools:
        found.append(Problem('node-setup', node, None,
                             f'thin pool {cluster.pool} not found'))
    if report.hostname != node:
        found.append(Problem('node-setup', node, None,
                             f'the agent\'s DRBD host name is '
                             f'{report.hostname}'))
    volumes = inv.by_name(reply.get('volumes'))
    snapshots = inv.by_name(reply.get('snapshots'))
    entries = reply.get('resources') or {}
    for name, entry in sorted(entries.items()):
        definition = (entry or {}).get('definition')
        if not definition:
            found.append(Problem('unreadable-res', node, name, sv.clean(
                (entry or {}).get('error') or 'the .res cannot be read')))
            continue
        me = next((h for h in definition.get('hosts') or ()
                   if h.get('name') == node), None)
        if me is None:
            found.append(Problem('res-not-for-node', node, name,
                                 'the .res has no "on" section for this '
                                 'node'))
        elif me.get('diskful') and name not in volumes:
            found.append(Problem('res-without-lv', node, name,
                                 f'the .res gives this node the disk '
                                 f'{me.get("disk")}, which does not exist'))
    for lv in reply.get('revert_lvs') or ():
        # While a revert runs these are expected; the check cannot tell,
        # so it names them and the ways to finish, and removes nothing.
        found.append(Problem(
            'leftover-lv', node, lv.get('name'),
            f'{lv.get("role")} LV of an interrupted revert of '
            f'{lv.get("resource")} (revert the volume again, or delete '
            f'it, to finish)'))
    families = inv.lv_families(volumes, snapshots)
    origins = {lv.get('origin') for lv in list(volumes.values())
               + list(snapshots.values())}
    for name, lv in sorted(volumes.items()):
        if name in entries:
            continue
        if not protocol.NAME_RE.match(name):
            found.append(Problem(
                'leftover-lv', node, name,
                'LV name the agent does not handle; inspect it by hand'))
            continue
        if (node, name) in listed_on:
            continue        # a replica that lost its .res: see below
        problem = Problem('orphan-lv', node, name,
                          'LV without a .res on this node; no replica lists '
                          'this node')
        if cinder is not None and name in cinder:
            problem.detail += '; a Cinder volume has this name'
        elif name in origins:
            problem.detail += '; other LVs are snapshots of it'
        elif families is None:
            problem.detail += '; snapshot origins unknown'
        elif survey.failures:
            problem.detail += ('; not removed while storage nodes are '
                               'unreachable (their .res may list it)')
        else:
            problem.fix = 'remove the LV'
            problem.needs_orphan_flag = True
            problem.repair = _remove_orphan_lv(node, name, lv.get('pool')
                                               or cluster.pool)
        found.append(problem)
    for name, snap in sorted(snapshots.items()):
        if name.startswith(CLONE_PREFIX):
            found.append(Problem(
                'clone-snapshot', node, name,
                f'temporary snapshot of a clone left behind (origin '
                f'{snap.get("origin") or "unknown"})',
                fix='remove the snapshot',
                repair=_remove_snapshot(node, name, snap.get('pool')
                                        or cluster.pool)))
        elif families is not None and not any(
                member in volumes for member in families[name]):
            found.append(Problem('orphan-snapshot', node, name,
                                 'no volume LV of its family on this node '
                                 f'(origin {snap.get("origin") or "gone"})'))
    return found


def _resource_problems(cluster: model.ClusterConfig,
                       res: divergence.Resource,
                       survey: sv.Survey, storage: set[str]) -> list[Problem]:
    found: list[Problem] = []
    majority = res.majority
    divergent = res.divergent
    for node, mine in sorted(divergent.items()):
        if majority is None:
            found.append(Problem('divergent-res', node, res.name,
                                 'replicas disagree and no .res has a '
                                 'majority'))
        elif node not in sv.hosts(majority, True):
            found.append(Problem(
                'divergent-res', node, res.name,
                'holds a replica the majority\'s .res does not list: '
                + sv.differences(mine, majority),
                fix='remove it (it never re-joins: see node lost)',
                repair=_push_majority(node, res.name)))
        else:
            found.append(_adjust_problem(
                'divergent-res', node, res, sv.differences(mine, majority)))
    wanted: set[str] = set()
    for definition in res.copies.values():
        wanted |= set(sv.hosts(definition, True))
    in_majority = set(sv.hosts(majority, True)) if majority else set()
    for node in sorted(wanted):
        if node in res.copies or node in survey.failures:
            continue
        if node not in storage:
            found.append(Problem('unknown-replica-node', node, res.name,
                                 'a replica is listed on a node that is '
                                 'not a configured storage node'))
            continue
        reply = survey.replies.get(node) or {}
        if res.name in (reply.get('resources') or {}):
            found.append(Problem('divergent-res', node, res.name,
                                 'its .res does not make it a replica; '
                                 'other replicas list it as one'))
        elif res.name not in inv.by_name(reply.get('volumes')):
            found.append(Problem('missing-replica', node, res.name,
                                 'listed as a replica but neither LV nor '
                                 '.res exists on the node'))
        elif node in in_majority:
            found.append(_adjust_problem(
                'replica-missing-res', node, res,
                'the LV is there but the .res is missing'))
        else:
            found.append(Problem('replica-missing-res', node, res.name,
                                 'the LV is there but the .res is missing;'
                                 ' no majority .res lists it'))
    for node, pending in res.zero_pending.items():
        found.append(Problem(
            'zeroing-pending', node, res.name,
            f'the zeroing of [{pending[0]}, {pending[1]}) (the old DRBD '
            'metadata area of an extend) did not finish: the replicas may '
            'differ there', fix='finish the zeroing (resize)',
            repair=_push_majority(node, res.name)))
    _disks, _oos, troubles = sv.health(res, survey, storage)
    drbd = [t.text for t in troubles if t.drbd]
    if drbd:
        found.append(Problem('degraded', None, res.name, '; '.join(drbd)))
    return found


def _adjust_problem(kind: str, node: str, res: divergence.Resource,
                    detail: str) -> Problem:
    return Problem(kind, node, res.name, detail,
                   fix=f'push the .res of {", ".join(res.sources)} (adjust)',
                   repair=_push_majority(node, res.name))


def _push_majority(target: str, name: str
                   ) -> Callable[[ctl.Controller], str]:
    """The repair of the driver's periodic task, for one replica.

    On a fresh read of every storage node, under the resource's lock taken
    without waiting ('busy' while it is held). The lock factory is the
    controller's: in-process here, Cinder's tooz locks in the driver.
    """
    def repair(controller: ctl.Controller) -> str:
        outcome = reconcile.repair(controller, name, only=[target])
        return outcome.nodes.get(target) or outcome.text
    return repair


def _remove_snapshot(node: str, snapshot: str, pool: str
                     ) -> Callable[[ctl.Controller], str]:
    def repair(controller: ctl.Controller) -> str:
        controller.call(controller.config.node(node), {
            'op': 'snapshot-delete', 'pool': pool, 'snapshot': snapshot})
        return 'removed'
    return repair


def _remove_orphan_lv(node: str, name: str, pool: str
                      ) -> Callable[[ctl.Controller], str]:
    def repair(controller: ctl.Controller) -> str:
        where = controller.config.node(node)
        status = controller.call(where, {'op': 'status', 'resource': name})
        if status.get('exists'):
            return 'skipped: a .res appeared meanwhile'
        if status.get('state') is not None:
            return 'skipped: DRBD runs the resource on this node'
        controller.call(where, {'op': 'delete', 'resource': name,
                                'pool': pool})
        return 'removed'
    return repair


class Check(command.Lister):
    """Find orphans and inconsistencies; exit 1 when any is left.

    Finds LVs without .res (and .res without LV), .res files that differ
    between replicas, missing replicas, snapshots without a volume,
    temporary clone snapshots left behind and, with --cinder-volumes,
    resources Cinder does not know. --fix removes clone-* snapshots and
    pushes the majority's .res to a divergent replica; with
    --fix-orphan-lvs also removes LVs no .res refers to. Run --fix while
    no clone or attach is in progress.
    """

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument('--cinder-volumes', metavar='FILE',
                            help='JSON list of the Cinder volumes (names '
                                 'volume-<name_id>, IDs, or the output of '
                                 '"openstack volume list -f json")')
        parser.add_argument('--fix', action='store_true',
                            help='repair what is safe and print what was '
                                 'done')
        parser.add_argument('--fix-orphan-lvs', action='store_true',
                            help='with --fix: also remove LVs that no .res '
                                 'refers to and no snapshot depends on')
        return parser

    def collect(self, controller: ctl.Controller, args: argparse.Namespace
                ) -> tuple[command.Table, int]:
        if args.fix_orphan_lvs and not args.fix:
            raise config.ConfigError('--fix-orphan-lvs needs --fix')
        cinder = (_cinder_names(args.cinder_volumes)
                  if args.cinder_volumes else None)
        survey = sv.Survey.take(controller, controller.config.storage_nodes)
        problems = find_problems(controller.config, survey, cinder)
        if args.fix:
            for problem in problems:
                if problem.repair is None:
                    continue
                if problem.needs_orphan_flag and not args.fix_orphan_lvs:
                    problem.result = 'not fixed: needs --fix-orphan-lvs'
                    continue
                try:
                    problem.result = problem.repair(controller)
                except (tp.NodeError, errors.ClusterError, ValueError) as exc:
                    problem.result = 'failed: ' + sv.clean(
                        getattr(exc, 'message', exc))
        heads = ['Kind', 'Node', 'Name', 'Detail', 'Fix']
        if args.fix:
            heads.append('Result')
        left = [p for p in problems
                if not (p.result in ('removed', 'in sync')
                        or p.result.startswith(('adjusted', 'zeroed',
                                                'removed')))]
        if args.fix:
            config.warn(f'{len(problems)} problem(s) found, '
                        f'{len(problems) - len(left)} fixed')
        elif problems:
            config.warn(f'{len(problems)} problem(s) found')
        return ((heads, [p.row(args.fix) for p in problems]),
                config.EXIT_PROBLEMS if left else config.EXIT_OK)
