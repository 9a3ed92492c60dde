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
"""``nodes list``, ``resources list``, ``resource show``: read-only views."""

from __future__ import annotations

import argparse

from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import divergence
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.manage import command
from blackstor_cinder.manage import config
from blackstor_cinder.manage import survey as sv
from blackstor_cinder import protocol


class NodesList(command.Lister):
    """Every configured node: state, role, zone, pool capacity, DRBD versions.

    One inventory per node, in parallel. An unreachable node is shown as
    such; exit 1 only when no node answered.
    """

    def collect(self, controller: ctl.Controller, args: argparse.Namespace
                ) -> tuple[command.Table, int]:
        cfg_ = controller.config
        survey = sv.Survey.take(controller,
                                cfg_.storage_nodes + cfg_.client_nodes)
        heads = ('Name', 'Role', 'Zone', 'State', 'Free GiB', 'Total GiB',
                 'Provisioned GiB', 'DRBD Utils', 'DRBD Kernel', 'Resources',
                 'Problem')
        rows = []
        for node in survey.nodes:
            role = 'storage' if node.storage else 'client'
            failure = survey.failures.get(node.name)
            if failure is not None:
                rows.append((node.name, role, node.zone, sv.state_of(failure),
                             None, None, None, None, None, None,
                             sv.clean(failure.message)))
                continue
            reply = survey.replies[node.name]
            report = inv.NodeInventory.from_reply(node.name, reply)
            problems = []
            pool = report.pools.get(cfg_.pool) if node.storage else None
            if node.storage and pool is None:
                problems.append(f'thin pool {cfg_.pool} not found')
            if report.hostname != node.name:
                problems.append(f'the agent\'s DRBD host name is '
                                f'{report.hostname}')
            if not report.drbd_kernel_version:
                problems.append('no DRBD kernel module')
            rows.append((
                node.name, role, node.zone, 'up',
                sv.gib(pool.free_bytes) if pool else None,
                sv.gib(pool.total_bytes) if pool else None,
                sv.gib(pool.provisioned_bytes) if pool else None,
                report.drbd_utils_version, report.drbd_kernel_version,
                len(report.resources), '; '.join(problems) or None))
        if survey.nodes and not survey.replies:
            config.warn('no node answered')
            return (heads, rows), config.EXIT_PROBLEMS
        return (heads, rows), config.EXIT_OK


class ResourcesList(command.Lister):
    """Every resource on the storage nodes: replicas, clients, disk states.

    Out-of-sync bytes and problems per resource; degraded ones marked.
    """

    def collect(self, controller: ctl.Controller, args: argparse.Namespace
                ) -> tuple[command.Table, int]:
        survey = sv.Survey.take(controller, controller.config.storage_nodes)
        survey.require_some()
        storage = {n.name for n in controller.config.storage_nodes}
        heads = ('Name', 'Minor', 'Port', 'Replicas', 'Clients', 'Disk States',
                 'Out Of Sync', 'Degraded', 'Problems')
        rows = []
        for name, res in sorted(divergence.collect(survey.replies).items()):
            definition = res.definition
            disks, oos, troubles = sv.health(res, survey, storage)
            problems = [str(t) for t in troubles]
            if res.divergent:
                problems.insert(0, '.res differs on ' +
                                ', '.join(sorted(res.divergent)))
            rows.append((name, (definition or {}).get('minor'),
                         sv.port(definition), sv.hosts(definition, True),
                         sv.hosts(definition, False), disks, oos,
                         bool(problems), problems))
        return (heads, rows), config.EXIT_OK


class ResourceShow(command.ShowOne):
    """Definition (without its secret) and state on every node."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument('name', metavar='NAME',
                            help='resource name (volume-<name_id>)')
        return parser

    def collect(self, controller: ctl.Controller, args: argparse.Namespace
                ) -> tuple[dict, int]:
        name = args.name
        try:
            protocol.check_name('resource', name)
        except protocol.ProtocolError as exc:
            raise config.CommandError(str(exc)) from None
        cfg_ = controller.config
        survey = sv.Survey.take(controller, cfg_.storage_nodes)
        res = divergence.collect(survey.replies).get(name)
        if res is None:
            if survey.failures:
                raise config.CommandError(
                    f'resource {name} not found on the reachable storage '
                    f'nodes; unreachable: '
                    f'{", ".join(sorted(survey.failures))}')
            raise config.CommandError(
                f'resource {name} not found on any storage node')
        definition = res.definition or {}
        storage = {n.name for n in cfg_.storage_nodes}
        disks, oos, troubles = sv.health(res, survey, storage)
        problems = [str(t) for t in troubles]
        for node, mine in sorted(res.divergent.items()):
            problems.insert(0, f'{node}: .res differs: ' + (
                sv.differences(mine, res.majority) if res.majority
                else 'no majority among the replicas'))
        shown_nodes = (set(res.entries) | set(sv.hosts(definition, True))
                       | (set(survey.failures) & storage))
        nodes = {n: sv.node_view(res.entries.get(n), survey.failures.get(n))
                 for n in sorted(shown_nodes)}
        clients = [h for h in definition.get('hosts') or ()
                   if not h.get('diskful')]
        if clients:
            targets = []
            for host in clients:
                try:
                    targets.append(controller.node(host['name'],
                                                   host.get('address')))
                except errors.ClusterError as exc:
                    nodes[host['name']] = f'not reachable: {exc}'
            replies, failures = controller.each(
                targets, {'op': 'status', 'resource': name})
            for node, reply in replies.items():
                nodes[node] = (sv.node_view(reply, None) if reply.get('exists')
                               else 'no .res')
            for node, exc in failures.items():
                nodes[node] = sv.node_view(None, exc)
        hosts = [{'name': h.get('name'), 'node_id': h.get('node_id'),
                  'role': 'replica' if h.get('diskful') else 'client',
                  'address': h.get('address'), 'disk': h.get('disk')}
                 for h in sorted(definition.get('hosts') or (),
                                 key=lambda h: repr(h.get('node_id')))]
        shown = {
            'Name': name, 'Minor': definition.get('minor'),
            'Port': sv.port(definition),
            'Replicas': sv.hosts(definition, True),
            'Clients': sv.hosts(definition, False),
            'Allow Two Primaries': (divergence.key(definition)[2]
                                    if definition else None),
            'Hosts': hosts,
            'Options': sv.public(definition.get('options') or {}),
            'Net': sv.public(definition.get('net') or {}),
            'Disk': sv.public(definition.get('disk') or {}),
            'Disk States': disks, 'Out Of Sync': oos,
            'Nodes': sv.public(nodes), 'Degraded': bool(problems),
            'Problems': problems}
        return shown, config.EXIT_OK
