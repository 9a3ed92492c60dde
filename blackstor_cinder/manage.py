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
"""``blackstor-manage``: the operator's view of a BlackStor backend.

Reads the backend's section of cinder.conf (no Cinder code needed) and asks
the nodes' agents, one ``inventory`` round trip per node, in parallel::

    blackstor-manage [--config-file F] [--backend NAME] nodes list
    blackstor-manage ... resources list
    blackstor-manage ... resource show NAME
    blackstor-manage ... check [--cinder-volumes FILE] [--fix
                                [--fix-orphan-lvs]]
    blackstor-manage ... node lost|evacuate NODE [--parallel N]

Every command takes ``-f table|json|yaml`` and ``-c COLUMN``, as
openstackclient does. Everything is read-only except ``check --fix`` and
``node lost|evacuate`` (see ``manage_node``).

Exit codes: 0 success (``check``: nothing left to repair); 1 problems found
or an operation failed; 2 bad usage or configuration. Lists show an
unreachable node as such (and exit 1 only when no node answered).

What ``check`` reports (``*``: repaired by ``--fix``; ``**``: only with
``--fix-orphan-lvs`` too, never while a storage node is unreachable, never
an LV other LVs are snapshots of or DRBD still runs):

- ``node-unreachable`` / ``node-error`` / ``node-setup`` (pool, host name)
- ``orphan-lv`` ``**``: a volume LV without .res that no replica lists
- ``res-without-lv``: a .res gives the node a disk that does not exist
- ``divergent-res`` ``*``: a replica's .res differs (minor, port, hosts)
  from the majority's; the majority's is pushed with ``adjust``, or, for a
  replica the majority no longer lists (a node lost and healed that came
  back), that replica is removed once the listed ones are UpToDate (as the
  driver's periodic repair does: cluster.reconcile, on a fresh read of
  every storage node; the volume's lock is this process's, not Cinder's)
- ``zeroing-pending`` ``*``: an extend left the zeroing of the old DRBD
  metadata area unfinished on this replica (the replicas may differ there
  while DRBD believes them in sync); the node is asked to finish it, as
  the periodic repair does, before any .res is pushed
- ``replica-missing-res`` ``*``: the LV is there, the .res is gone
- ``missing-replica``: listed as a replica, neither LV nor .res exists
- ``clone-snapshot`` ``*``: a temporary ``clone-*`` snapshot left behind
- ``orphan-snapshot``: no volume LV of its origin family on the node
- ``leftover-lv``: the ``.rollback`` / ``.previous`` LV of an interrupted
  revert (revert again or delete the volume), or an LV name the agent does
  not handle
- ``unreadable-res``, ``res-not-for-node``,
  ``unknown-replica-node``, ``degraded`` (DRBD state)
- ``no-cinder-volume`` (with ``--cinder-volumes``): not a Cinder volume
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from typing import Any, Callable, Iterable, Sequence

from oslo_config import cfg
from oslo_utils import strutils

from blackstor_cinder import backend
from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import divergence
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import reconcile
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import manage_node
from blackstor_cinder import options
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

PROG = 'blackstor-manage'
DEFAULT_CONFIG_FILE = '/etc/cinder/cinder.conf'
SHARED_GROUP = 'backend_defaults'
FORMATS = ('table', 'json', 'yaml')
GiB = 1 << 30
#: Prefix of the temporary snapshot of Controller.clone_volume.
CLONE_PREFIX = ctl.CLONE_PREFIX
#: Over-subscription does not matter to what this tool shows.
_OVER_SUBSCRIPTION = 20.0

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A failure reported as one line on stderr, without a traceback."""

    exit_code = EXIT_PROBLEMS


class ConfigError(CommandError):
    exit_code = EXIT_USAGE


# -- configuration ----------------------------------------------------------

class BackendConf:
    """The ``blackstor_*`` options of one backend section.

    As in Cinder, each option comes from the backend section when it is set
    there and from ``[backend_defaults]`` (or the option's default)
    otherwise.
    """

    def __init__(self, conf: cfg.ConfigOpts, group: str) -> None:
        self.conf = conf
        self.group = group

    def __getattr__(self, name: str) -> Any:
        if name.startswith('_') or name in ('conf', 'group'):
            raise AttributeError(name)
        value = None
        if self.group != SHARED_GROUP:
            value = getattr(getattr(self.conf, self.group), name)
        if value is None:
            value = getattr(getattr(self.conf, SHARED_GROUP), name)
        return value


def load_backend(config_files: Sequence[str],
                 backend_name: str | None = None) -> BackendConf:
    """Parse the files; the options of the named (or the only) backend."""
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.ListOpt('enabled_backends', default=[]))
    try:
        conf(args=[], default_config_files=list(config_files))
        sections = conf.list_all_sections()
        if backend_name is None:
            backend_name = _only_backend(conf, sections)
        if backend_name not in sections:
            raise ConfigError(
                f'no [{backend_name}] section in '
                f'{", ".join(config_files)}; name the backend section with '
                f'--backend')
        if backend_name != SHARED_GROUP:
            driver = _volume_driver(conf, backend_name)
            if driver and 'blackstor' not in driver.lower():
                raise ConfigError(f'[{backend_name}] is not a BlackStor '
                                  f'backend (volume_driver = {driver})')
        conf.register_opts(options.blackstor_opts, group=SHARED_GROUP)
        if backend_name != SHARED_GROUP:
            conf.register_opts(options.blackstor_opts, group=backend_name)
            for opt in options.blackstor_opts:
                conf.set_default(opt.name, None, group=backend_name)
    except cfg.Error as exc:
        raise ConfigError(f'cannot read the configuration: {exc}') from None
    return BackendConf(conf, backend_name)


def _volume_driver(conf: cfg.ConfigOpts, group: str) -> str | None:
    try:
        conf.register_opt(cfg.StrOpt('volume_driver'), group=group)
    except cfg.DuplicateOptError:
        pass
    return getattr(conf, group).volume_driver


def _only_backend(conf: cfg.ConfigOpts, sections: list[str]) -> str:
    ours = [name for name in conf.enabled_backends if name in sections
            and 'blackstor' in (_volume_driver(conf, name) or '').lower()]
    if len(ours) == 1:
        return ours[0]
    found = (f'BlackStor backends in enabled_backends: {", ".join(ours)}'
             if ours else 'no BlackStor backend in enabled_backends')
    raise ConfigError(f'{found}; name the backend section with --backend')


def make_controller(conf: BackendConf) -> ctl.Controller:
    try:
        config = backend.cluster_config(conf, _OVER_SUBSCRIPTION)
        factory = backend.transport_factory(conf)
    except (errors.ClusterError, cfg.Error, ValueError) as exc:
        raise ConfigError(f'backend [{conf.group}]: {exc}') from None
    return ctl.Controller(config, factory)


# -- what the nodes say -----------------------------------------------------

@dataclasses.dataclass
class Survey:
    """One ``inventory`` per node, in a single parallel round."""

    nodes: tuple[model.Node, ...]
    replies: dict[str, dict]
    failures: dict[str, tp.NodeError]

    @classmethod
    def take(cls, controller: ctl.Controller,
             nodes: Iterable[model.Node]) -> Survey:
        nodes = tuple(nodes)
        replies, failures = controller.each(nodes, {'op': 'inventory'})
        return cls(nodes, replies, failures)

    def require_some(self) -> None:
        for name, exc in sorted(self.failures.items()):
            _warn(f'node {name} {_state_of(exc)}: {_clean(exc.message)}')
        if self.nodes and not self.replies:
            raise CommandError('no node answered')


def _state_of(exc: tp.NodeError) -> str:
    return 'unreachable' if isinstance(exc, tp.NodeUnreachable) else 'error'


def _clean(text: Any) -> str:
    return strutils.mask_password(str(text))


def _public(value: Any) -> Any:
    """A copy of agent data without anything secret in it."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items()
                if 'secret' not in str(k).lower()}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def _gib(value: int | None) -> float | None:
    return None if value is None else round(value / GiB, 2)


def _hosts(definition: dict | None, diskful: bool) -> list[str]:
    hosts = sorted((definition or {}).get('hosts') or (),
                   key=lambda h: (h.get('node_id') is None,
                                  h.get('node_id') or 0))
    return [h['name'] for h in hosts if bool(h.get('diskful')) == diskful]


def _port(definition: dict | None) -> int | None:
    return next((h.get('port') for h in (definition or {}).get('hosts') or ()
                 if h.get('port') is not None), None)


def _differences(mine: dict, majority: dict) -> str:
    said = []
    if mine.get('minor') != majority.get('minor'):
        said.append(f'minor {mine.get("minor")} (majority '
                    f'{majority.get("minor")})')
    if _port(mine) != _port(majority):
        said.append(f'port {_port(mine)} (majority {_port(majority)})')
    my_hosts = {h.get('name'): divergence.key({'hosts': [h]})[1]
                for h in mine.get('hosts') or ()}
    their_hosts = {h.get('name'): divergence.key({'hosts': [h]})[1]
                   for h in majority.get('hosts') or ()}
    extra = sorted(set(my_hosts) - set(their_hosts), key=str)
    missing = sorted(set(their_hosts) - set(my_hosts), key=str)
    changed = sorted((n for n in set(my_hosts) & set(their_hosts)
                      if my_hosts[n] != their_hosts[n]), key=str)
    for label, names in (('hosts the majority lacks', extra),
                         ('lacks hosts', missing),
                         ('host entries differ', changed)):
        if names:
            said.append(f'{label}: {", ".join(map(str, names))}')
    if divergence.key(mine)[2] != divergence.key(majority)[2]:
        said.append('allow-two-primaries differs')
    my_size, their_size = (inv.definition_size(mine),
                           inv.definition_size(majority))
    if my_size != their_size:
        said.append(f'size {my_size} (repaired to {their_size})')
    return '; '.join(said) or 'differs'


def _local_disk(state: dict | None) -> str | None:
    return inv.disk_states(state).get('local')


def _out_of_sync(state: dict | None,
                 peers: Iterable[str] | None = None) -> int | None:
    """Most bytes this node's bitmap holds for one peer (None: unknown)."""
    most = None
    for conn in (state or {}).get('connections') or ():
        if peers is not None and conn.get('name') not in peers:
            continue
        for pdev in conn.get('peer_devices') or ():
            kib = pdev.get('out-of-sync')       # drbdsetup reports KiB
            if isinstance(kib, int) and not isinstance(kib, bool):
                most = max(most or 0, kib * 1024)
    return most


@dataclasses.dataclass(frozen=True)
class Trouble:
    """Why a resource is not healthy; ``drbd`` for DRBD-level causes."""

    text: str
    drbd: bool = True

    def __str__(self) -> str:
        return self.text


def health(res: divergence.Resource, survey: Survey,
           storage: set[str]) -> tuple[dict[str, str], int | None,
                                       list[Trouble]]:
    """(disk state per node, out-of-sync bytes, troubles) of a resource."""
    replicas = _hosts(res.definition, True)
    disks: dict[str, str] = {}
    troubles: list[Trouble] = []
    oos = None
    for node in replicas + sorted(set(res.entries) - set(replicas)):
        entry = res.entries.get(node)
        if node in survey.failures:
            disks[node] = _state_of(survey.failures[node])
            troubles.append(Trouble(f'{node} {disks[node]}', False))
        elif entry is None:
            disks[node] = 'missing' if node in storage else 'unknown'
            troubles.append(Trouble(
                f'{node}: no .res' if node in storage else
                f'{node} is not a configured storage node', False))
        elif entry.get('state') is None:
            disks[node] = 'down'
            if node in replicas:
                troubles.append(Trouble(f'{node}: not running'))
        else:
            state = entry['state']
            disks[node] = _local_disk(state) or 'Unknown'
            if node not in replicas:
                continue
            if disks[node] != 'UpToDate':
                troubles.append(Trouble(f'{node}: disk {disks[node]}'))
            for conn in state.get('connections') or ():
                if (conn.get('name') in replicas
                        and conn.get('connection-state') != 'Connected'):
                    troubles.append(Trouble(
                        f'{node}: {conn.get("connection-state")} to '
                        f'{conn.get("name")}'))
            mine = _out_of_sync(state, replicas)
            if mine is not None:
                oos = max(oos or 0, mine)
                if mine:
                    troubles.append(Trouble(
                        f'{node}: {mine} bytes out of sync'))
    return disks, oos, troubles


def _node_view(entry: dict | None, failure: tp.NodeError | None) -> Any:
    if failure is not None:
        return f'{_state_of(failure)}: {_clean(failure.message)}'
    if entry is None:
        return 'no .res'
    state = entry.get('state')
    if entry.get('error'):
        return f'unreadable .res: {_clean(entry["error"])}'
    if state is None:
        return {'running': False}
    connections = {}
    for conn in state.get('connections') or ():
        pdev = next(iter(conn.get('peer_devices') or ()), {})
        view = {'connection': conn.get('connection-state'),
                'peer_disk': pdev.get('peer-disk-state')}
        if isinstance(pdev.get('out-of-sync'), int):
            view['out_of_sync_bytes'] = pdev['out-of-sync'] * 1024
        connections[conn.get('name')] = view
    return {'running': True, 'role': state.get('role'),
            'disk': _local_disk(state), 'suspended':
            state.get('suspended-user', state.get('suspended')),
            'connections': connections}


# -- commands ---------------------------------------------------------------

Table = tuple[Sequence[str], list[Sequence[Any]]]


def nodes_list(controller: ctl.Controller, args: argparse.Namespace
               ) -> tuple[Table, int]:
    cfg_ = controller.config
    survey = Survey.take(controller, cfg_.storage_nodes + cfg_.client_nodes)
    heads = ('Name', 'Role', 'Zone', 'State', 'Free GiB', 'Total GiB',
             'Provisioned GiB', 'DRBD Utils', 'DRBD Kernel', 'Resources',
             'Problem')
    rows = []
    for node in survey.nodes:
        role = 'storage' if node.storage else 'client'
        failure = survey.failures.get(node.name)
        if failure is not None:
            rows.append((node.name, role, node.zone, _state_of(failure),
                         None, None, None, None, None, None,
                         _clean(failure.message)))
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
            _gib(pool.free_bytes) if pool else None,
            _gib(pool.total_bytes) if pool else None,
            _gib(pool.provisioned_bytes) if pool else None,
            report.drbd_utils_version, report.drbd_kernel_version,
            len(report.resources), '; '.join(problems) or None))
    if survey.nodes and not survey.replies:
        _warn('no node answered')
        return (heads, rows), EXIT_PROBLEMS
    return (heads, rows), EXIT_OK


def resources_list(controller: ctl.Controller, args: argparse.Namespace
                   ) -> tuple[Table, int]:
    survey = Survey.take(controller, controller.config.storage_nodes)
    survey.require_some()
    storage = {n.name for n in controller.config.storage_nodes}
    heads = ('Name', 'Minor', 'Port', 'Replicas', 'Clients', 'Disk States',
             'Out Of Sync', 'Degraded', 'Problems')
    rows = []
    for name, res in sorted(divergence.collect(survey.replies).items()):
        definition = res.definition
        disks, oos, troubles = health(res, survey, storage)
        problems = [str(t) for t in troubles]
        if res.divergent:
            problems.insert(0, '.res differs on ' +
                            ', '.join(sorted(res.divergent)))
        rows.append((name, (definition or {}).get('minor'),
                     _port(definition), _hosts(definition, True),
                     _hosts(definition, False), disks, oos,
                     bool(problems), problems))
    return (heads, rows), EXIT_OK


def resource_show(controller: ctl.Controller, args: argparse.Namespace
                  ) -> tuple[dict, int]:
    name = args.name
    try:
        protocol.check_name('resource', name)
    except protocol.ProtocolError as exc:
        raise CommandError(str(exc)) from None
    cfg_ = controller.config
    survey = Survey.take(controller, cfg_.storage_nodes)
    res = divergence.collect(survey.replies).get(name)
    if res is None:
        if survey.failures:
            raise CommandError(
                f'resource {name} not found on the reachable storage nodes;'
                f' unreachable: {", ".join(sorted(survey.failures))}')
        raise CommandError(f'resource {name} not found on any storage node')
    definition = res.definition or {}
    storage = {n.name for n in cfg_.storage_nodes}
    disks, oos, troubles = health(res, survey, storage)
    problems = [str(t) for t in troubles]
    for node, mine in sorted(res.divergent.items()):
        problems.insert(0, f'{node}: .res differs: ' + (
            _differences(mine, res.majority) if res.majority
            else 'no majority among the replicas'))
    nodes = {n: _node_view(res.entries.get(n), survey.failures.get(n))
             for n in sorted(set(res.entries) | set(_hosts(definition, True))
                             | (set(survey.failures) & storage))}
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
            nodes[node] = (_node_view(reply, None) if reply.get('exists')
                           else 'no .res')
        for node, exc in failures.items():
            nodes[node] = _node_view(None, exc)
    hosts = [{'name': h.get('name'), 'node_id': h.get('node_id'),
              'role': 'replica' if h.get('diskful') else 'client',
              'address': h.get('address'), 'disk': h.get('disk')}
             for h in sorted(definition.get('hosts') or (),
                             key=lambda h: repr(h.get('node_id')))]
    shown = {
        'Name': name, 'Minor': definition.get('minor'),
        'Port': _port(definition), 'Replicas': _hosts(definition, True),
        'Clients': _hosts(definition, False),
        'Allow Two Primaries': (divergence.key(definition)[2]
                                if definition else None),
        'Hosts': hosts, 'Options': _public(definition.get('options') or {}),
        'Net': _public(definition.get('net') or {}),
        'Disk': _public(definition.get('disk') or {}),
        'Disk States': disks, 'Out Of Sync': oos,
        'Nodes': _public(nodes), 'Degraded': bool(problems),
        'Problems': problems}
    return shown, EXIT_OK


# -- check ------------------------------------------------------------------

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
        raise ConfigError(f'--cinder-volumes {path}: {exc}') from None
    if not isinstance(data, list):
        raise ConfigError(f'--cinder-volumes {path}: not a JSON list')
    names = set()
    for item in data:
        if isinstance(item, dict):
            item = next((item[k] for k in (
                'name_id', 'os-vol-mig-status-attr:name_id', 'ID', 'id')
                if item.get(k)), None)
        if not isinstance(item, str) or not item:
            raise ConfigError(f'--cinder-volumes {path}: {item!r} is not '
                              f'a volume name or ID')
        names.add(item if item.startswith('volume-') else 'volume-' + item)
    return names


def _by_name(items: Any) -> dict[str, dict]:
    if isinstance(items, dict):
        return {k: dict(v or {}, name=k) for k, v in items.items()}
    return {i['name']: i for i in items or () if i.get('name')}


def find_problems(config: model.ClusterConfig, survey: Survey,
                  cinder: set[str] | None = None) -> list[Problem]:
    """Everything ``check`` reports, with the repairs --fix may run."""
    problems: list[Problem] = []
    storage = {n.name for n in config.storage_nodes}
    resources = divergence.collect(survey.replies)
    for node, exc in sorted(survey.failures.items()):
        problems.append(Problem(f'node-{_state_of(exc)}', node, None,
                                _clean(exc.message)))
    listed_on: dict[tuple[str, str], list[str]] = {}
    for res in resources.values():
        for holder, definition in res.copies.items():
            for replica in _hosts(definition, True):
                listed_on.setdefault((replica, res.name), []).append(holder)
    for node in sorted(survey.replies):
        problems += _node_problems(config, node, survey, resources,
                                   listed_on, cinder)
    for name, res in sorted(resources.items()):
        problems += _resource_problems(config, res, survey, storage)
    if cinder is not None:
        names = set(resources)
        for reply in survey.replies.values():
            names |= set(_by_name(reply.get('volumes')))
        for name in sorted(names - cinder):
            holders = sorted(n for n, r in survey.replies.items()
                             if name in (r.get('resources') or {})
                             or name in _by_name(r.get('volumes')))
            problems.append(Problem(
                'no-cinder-volume', ', '.join(holders), name,
                'no Cinder volume has this name'))
    return problems


def _node_problems(config: model.ClusterConfig, node: str, survey: Survey,
                   resources: dict[str, divergence.Resource],
                   listed_on: dict[tuple[str, str], list[str]],
                   cinder: set[str] | None) -> list[Problem]:
    reply = survey.replies[node]
    found: list[Problem] = []
    report = inv.NodeInventory.from_reply(node, reply)
    if config.pool not in report.pools:
        found.append(Problem('node-setup', node, None,
                             f'thin pool {config.pool} not found'))
    if report.hostname != node:
        found.append(Problem('node-setup', node, None,
                             f'the agent\'s DRBD host name is '
                             f'{report.hostname}'))
    volumes = _by_name(reply.get('volumes'))
    snapshots = _by_name(reply.get('snapshots'))
    entries = reply.get('resources') or {}
    for name, entry in sorted(entries.items()):
        definition = (entry or {}).get('definition')
        if not definition:
            found.append(Problem('unreadable-res', node, name, _clean(
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
                                               or config.pool)
        found.append(problem)
    for name, snap in sorted(snapshots.items()):
        if name.startswith(CLONE_PREFIX):
            found.append(Problem(
                'clone-snapshot', node, name,
                f'temporary snapshot of a clone left behind (origin '
                f'{snap.get("origin") or "unknown"})',
                fix='remove the snapshot',
                repair=_remove_snapshot(node, name, snap.get('pool')
                                        or config.pool)))
        elif families is not None and not any(
                member in volumes for member in families[name]):
            found.append(Problem('orphan-snapshot', node, name,
                                 'no volume LV of its family on this node '
                                 f'(origin {snap.get("origin") or "gone"})'))
    return found


def _resource_problems(config: model.ClusterConfig,
                       res: divergence.Resource,
                       survey: Survey, storage: set[str]) -> list[Problem]:
    found: list[Problem] = []
    majority = res.majority
    divergent = res.divergent
    for node, mine in sorted(divergent.items()):
        if majority is None:
            found.append(Problem('divergent-res', node, res.name,
                                 'replicas disagree and no .res has a '
                                 'majority'))
        elif node not in _hosts(majority, True):
            found.append(Problem(
                'divergent-res', node, res.name,
                'holds a replica the majority\'s .res does not list: '
                + _differences(mine, majority),
                fix='remove it (it never re-joins: see node lost)',
                repair=_push_majority(node, res.name)))
        else:
            found.append(_adjust_problem(
                'divergent-res', node, res, _differences(mine, majority)))
    wanted: set[str] = set()
    for definition in res.copies.values():
        wanted |= set(_hosts(definition, True))
    in_majority = set(_hosts(majority, True)) if majority else set()
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
        elif res.name not in _by_name(reply.get('volumes')):
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
    _disks, _oos, troubles = health(res, survey, storage)
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


def check(controller: ctl.Controller, args: argparse.Namespace
          ) -> tuple[Table, int]:
    if args.fix_orphan_lvs and not args.fix:
        raise ConfigError('--fix-orphan-lvs needs --fix')
    cinder = (_cinder_names(args.cinder_volumes)
              if args.cinder_volumes else None)
    survey = Survey.take(controller, controller.config.storage_nodes)
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
                problem.result = 'failed: ' + _clean(
                    getattr(exc, 'message', exc))
    heads = ['Kind', 'Node', 'Name', 'Detail', 'Fix']
    if args.fix:
        heads.append('Result')
    left = [p for p in problems
            if not (p.result in ('removed', 'in sync')
                    or p.result.startswith(('adjusted', 'zeroed',
                                            'removed')))]
    if args.fix:
        _warn(f'{len(problems)} problem(s) found, '
              f'{len(problems) - len(left)} fixed')
    elif problems:
        _warn(f'{len(problems)} problem(s) found')
    return ((heads, [p.row(args.fix) for p in problems]),
            EXIT_PROBLEMS if left else EXIT_OK)


# -- output -----------------------------------------------------------------

def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return '{' + ', '.join(f'{k}: {_flat(v)}'
                               for k, v in value.items()) + '}'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_flat(v) for v in value) + ']'
    return _cell(value)


def _block(value: dict, indent: str = '') -> list[str]:
    """A dict as lines, nested dicts indented under their key."""
    lines = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f'{indent}{key}:')
            lines += _block(item, indent + '  ')
        else:
            lines.append(f'{indent}{key}={_flat(item)}')
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.2f}'
    if isinstance(value, dict):
        return '\n'.join(_block(value))
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, (dict, list, tuple)) for v in value):
            return '\n'.join(_flat(v) for v in value)
        if any(isinstance(v, str) and len(v) > 40 for v in value):
            return '\n'.join(_cell(v) for v in value)
        return ', '.join(_cell(v) for v in value)
    return str(value)


def render_table(heads: Sequence[str], rows: Iterable[Sequence[Any]]
                 ) -> str:
    """A plain text table with borders, multi-line cells aligned."""
    cells = [[_cell(v).splitlines() or [''] for v in row] for row in rows]
    widths = [len(h) for h in heads]
    for row in cells:
        for i, lines in enumerate(row):
            widths[i] = max([widths[i]] + [len(text) for text in lines])
    rule = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'

    def line(parts: Sequence[str]) -> str:
        padded = [p.ljust(w) for p, w in zip(parts, widths)]
        return '| ' + ' | '.join(padded) + ' |'

    out = [rule, line(heads), rule]
    for row in cells:
        for i in range(max(len(lines) for lines in row)):
            parts = [lines[i] if i < len(lines) else '' for lines in row]
            out.append(line(parts))
    if cells:
        out.append(rule)
    return '\n'.join(out)


def _select(heads: Sequence[str], columns: Sequence[str] | None
            ) -> list[int]:
    if not columns:
        return list(range(len(heads)))
    lower = [h.lower() for h in heads]
    picked = []
    for column in columns:
        if column.lower() not in lower:
            raise ConfigError(f'no column {column!r}; columns: '
                              f'{", ".join(heads)}')
        picked.append(lower.index(column.lower()))
    return picked


def _dump(data: Any, fmt: str) -> str:
    if fmt == 'json':
        return json.dumps(data, indent=2, default=str)
    return _yaml().safe_dump(data, default_flow_style=False,
                             sort_keys=False).rstrip('\n')


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError('the yaml format needs PyYAML (pip install '
                          'PyYAML); use -f json or -f table') from None
    return yaml


def format_list(table: Table, fmt: str,
                columns: Sequence[str] | None = None) -> str:
    heads, rows = table
    keep = _select(heads, columns)
    heads = [heads[i] for i in keep]
    rows = [[row[i] for i in keep] for row in rows]
    if fmt == 'table':
        return render_table(heads, rows)
    return _dump([dict(zip(heads, row)) for row in rows], fmt)


def format_show(data: dict, fmt: str,
                columns: Sequence[str] | None = None) -> str:
    heads = list(data)
    data = {heads[i]: data[heads[i]] for i in _select(heads, columns)}
    if fmt == 'table':
        return render_table(('Field', 'Value'), list(data.items()))
    return _dump(data, fmt)


# -- command line -----------------------------------------------------------

def _common_options(parser: argparse.ArgumentParser, sub: bool) -> None:
    """Options accepted before and after the command words."""
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if sub else value

    parser.add_argument(
        '--config-file', action='append', dest='config_files',
        metavar='PATH', default=default(None),
        help=f'cinder.conf to read (repeatable, later files win; default '
             f'{DEFAULT_CONFIG_FILE})')
    parser.add_argument(
        '--backend', metavar='NAME', default=default(None),
        help='backend section of cinder.conf (default: the only BlackStor '
             'backend in enabled_backends); unset options come from '
             '[backend_defaults]')
    parser.add_argument('--debug', action='store_true',
                        default=default(False),
                        help='log the requests to the nodes (secrets '
                             'masked) and show tracebacks')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description='Inspect and check a BlackStor (DRBD 9) '
        'Cinder backend through its nodes\' agents. Read-only unless '
        'check --fix is given.')
    _common_options(parser, sub=False)
    output = argparse.ArgumentParser(add_help=False)
    _common_options(output, sub=True)
    output.add_argument('-f', '--format', choices=FORMATS, default='table',
                        help='output format (default table)')
    output.add_argument('-c', '--column', action='append', dest='columns',
                        metavar='COLUMN',
                        help='show this column only (repeatable)')
    words = parser.add_subparsers(dest='command', metavar='COMMAND')
    words.required = True

    nodes = words.add_parser('nodes', help='storage and client nodes')
    nodes_words = nodes.add_subparsers(dest='action', metavar='ACTION')
    nodes_words.required = True
    nodes_words.add_parser(
        'list', parents=[output],
        help='every configured node: state, role, zone, pool capacity, '
             'DRBD versions').set_defaults(run=nodes_list, kind='list')

    resources = words.add_parser('resources', help='DRBD resources')
    res_words = resources.add_subparsers(dest='action', metavar='ACTION')
    res_words.required = True
    res_words.add_parser(
        'list', parents=[output],
        help='every resource on the storage nodes: replicas, clients, disk '
             'states, out-of-sync bytes; degraded ones marked'
    ).set_defaults(run=resources_list, kind='list')

    resource = words.add_parser('resource', help='one DRBD resource')
    one_words = resource.add_subparsers(dest='action', metavar='ACTION')
    one_words.required = True
    show = one_words.add_parser(
        'show', parents=[output],
        help='definition (without its secret) and state on every node')
    show.add_argument('name', metavar='NAME',
                      help='resource name (volume-<name_id>)')
    show.set_defaults(run=resource_show, kind='show')

    checker = words.add_parser(
        'check', parents=[output],
        help='find orphans and inconsistencies; exit 1 when any',
        description='Find LVs without .res (and .res without LV), .res '
        'files that differ between replicas, missing replicas, snapshots '
        'without a volume, temporary clone snapshots left behind and, with '
        '--cinder-volumes, resources Cinder does not know. --fix removes '
        'clone-* snapshots and pushes the majority\'s .res to a divergent '
        'replica; with --fix-orphan-lvs also removes LVs no .res refers '
        'to. Run --fix while no clone or attach is in progress.')
    checker.add_argument('--cinder-volumes', metavar='FILE',
                         help='JSON list of the Cinder volumes (names '
                              'volume-<name_id>, IDs, or the output of '
                              '"openstack volume list -f json")')
    checker.add_argument('--fix', action='store_true',
                         help='repair what is safe and print what was done')
    checker.add_argument('--fix-orphan-lvs', action='store_true',
                         help='with --fix: also remove LVs that no .res '
                              'refers to and no snapshot depends on')
    checker.set_defaults(run=check, kind='list')
    manage_node.add_parsers(words, output)
    return parser


def _warn(message: str) -> None:
    print(f'{PROG}: {message}', file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:       # --help, or a usage error (printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                            format='%(levelname)s %(name)s: %(message)s')
    controller = None
    try:
        if args.format == 'yaml':
            _yaml()
        conf = load_backend(args.config_files or [DEFAULT_CONFIG_FILE],
                            args.backend)
        controller = make_controller(conf)
        args.conf = conf
        result, code = args.run(controller, args)
        if args.kind == 'show':
            text = format_show(result, args.format, args.columns)
        else:
            text = format_list(result, args.format, args.columns)
        print(text)
        return code
    except CommandError as exc:
        _warn(f'error: {_clean(exc)}')
        return exc.exit_code
    except (errors.ClusterError, tp.NodeError, cfg.Error) as exc:
        _warn(f'error: {_clean(exc)}')
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        _warn(f'unexpected error: {type(exc).__name__}: {_clean(exc)} '
              f'(--debug shows the traceback)')
        return EXIT_PROBLEMS
    finally:
        if controller is not None:
            controller.close()


if __name__ == '__main__':
    sys.exit(main())
