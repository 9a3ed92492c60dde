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
"""What this node has: ``inventory`` (all of it) and ``status`` (one).

The inventory reads every resource at once (one ``drbdadm dump all``,
one ``drbdsetup status``), whatever their number.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from blackstor_cinder.node import drbdconf
from blackstor_cinder.node import drbdstatus
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import lvm as lvm_mod
from blackstor_cinder.node import ops_snapshot
from blackstor_cinder.node import resfiles
from blackstor_cinder.node import sizing
from blackstor_cinder.node.steps import Node
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)
GiB = 1 << 30


def status(node: Node, req: dict) -> dict:
    resource = req['resource']
    exists = node.store.exists(resource)
    definition = node.store.read_definition(resource) if exists else None
    state = node.drbd.state(resource)
    return {'resource': resource, 'exists': exists,
            'definition': definition, 'state': state,
            'device_size': drbdstatus.device_size(state),
            'zero_pending': node.marks.pending(resource)}


def inventory(node: Node, req: dict) -> dict:
    # The controller asks regularly: a good time to remove what a
    # killed writer left in the resource directory (it may hold a
    # shared secret).
    removed = node.store.remove_stale_temp_files()
    missing: list[str] = []

    def gather(what: Callable[[], Any], default: Any = None) -> Any:
        try:
            return what()
        except AgentError as e:
            if e.code != protocol.E_MISSING:
                raise
            missing.append(e.message)
            return default

    utils_version = gather(node.drbd.utils_version)
    problem = node.store.config_problem()
    if problem:
        missing.append(problem)
    # Storage nodes only: a client (no pools) never runs LVM, so no
    # command of ours can scan a device whose I/O is suspended there.
    if node.lvm.pools and (problem := gather(node.lvm.drbd_scan_problem)):
        missing.append(problem)
    pools, volumes, snapshots, revert_lvs = [], [], [], []
    bare: list[dict] = []       # thin LVs not ours (manage)
    for name in sorted(node.lvm.pools):
        pool = node.lvm.pools[name]
        usage = gather(lambda: node.lvm.pool_usage(pool))
        if usage is None:
            continue
        pools.append(usage)
        for lv in node.lvm.lvs(pool.vg):
            if lv.pool_lv == pool.thin and not lv.ours:
                bare.append(_bare_lv(node, pool, lv))
            if lv.pool_lv != pool.thin or not lv.ours:
                continue
            entry = {'name': lv.name, 'pool': name,
                     'size_bytes': lv.size, 'origin': lv.origin or None}
            base, dot, suffix = lv.name.rpartition('.')
            role = ops_snapshot.REVERT_SUFFIXES.get('.' + suffix)
            if dot and role:
                # Not a volume: a revert in progress (or left behind).
                revert_lvs.append(dict(entry, resource=base, role=role))
                continue
            if not lv.is_snapshot:
                entry['create_ids'] = sorted(
                    t[len(lvm_mod.CREATE_TAG_PREFIX):] for t in lv.tags
                    if t.startswith(lvm_mod.CREATE_TAG_PREFIX))
            (snapshots if lv.is_snapshot else volumes).append(entry)
    states = gather(node.drbd.status, [])
    if missing:
        raise AgentError(protocol.E_MISSING,
                         'this node cannot serve: ' + '; '.join(missing),
                         missing=missing)
    names = node.store.list_resources()
    brief = bool(req.get('brief'))
    compact = bool(req.get('compact')) and not brief
    resources = ({name: {} for name in names} if brief
                 else _resources(node, names, states, compact))
    minors, ports = _used_minors_ports(node, states)
    return {
        'brief': brief, 'compact': compact,
        'hostname': node.conf.node_name,
        'protocol_version': protocol.PROTOCOL_VERSION,
        'drbd_utils_version': utils_version,
        'drbd_kernel_version': node.drbd.kernel_version(),
        'pools': pools, 'resources': resources,
        'volumes': volumes, 'snapshots': snapshots,
        'revert_lvs': revert_lvs, 'bare_lvs': bare,
        'used_minors': sorted(minors), 'used_ports': sorted(ports),
        'removed_temp_files': removed,
    }


def _bare_lv(node: Node, pool: lvm_mod.Pool,
             lv: lvm_mod.LogicalVolume) -> dict:
    """An inventory entry of a thin LV not ours, with its wrap room.

    ``volume_bytes``: the largest whole GiB below its size (what a
    manage makes of it); ``missing_bytes``: how much the LV lacks for
    DRBD's metadata past that (0: it can be wrapped).
    """
    volume = lv.size // GiB * GiB
    missing = None
    if volume:
        need = sizing.lv_size_for(volume, node.conf.max_peers,
                                  node.lvm.vg(pool.vg).extent)
        missing = max(0, need - lv.size)
    return {'name': lv.name, 'pool': pool.name, 'size_bytes': lv.size,
            'volume_bytes': volume, 'missing_bytes': missing,
            'open': lv.attr[5:6] == 'o'}


def _resources(node: Node, names: list[str], states: list[dict],
               compact: bool = False) -> dict[str, dict]:
    """The inventory's ``resources``: one drbdadm for all of them.

    ``compact``: each definition and state cut to what the controller's
    stats read (see the protocol's ``inventory``).
    """
    running = {s.get('name'): s for s in states}
    definitions = node.store.read_definitions(names)
    resources = {}
    for name in names:
        definition = definitions[name]
        entry: dict[str, Any] = {'definition': definition}
        if isinstance(definition, AgentError):
            entry = {'definition': None, 'error': definition.message}
        elif definition is not None:
            definition.pop('secret', None)
            if compact:
                entry['definition'] = compact_definition(definition)
        state = running.get(name)
        device_bytes = drbdstatus.device_size(state)
        if compact:
            state = drbdstatus.compact(state)
        resources[name] = dict(entry, state=state,
                               device_size=device_bytes,
                               zero_pending=node.marks.pending(name))
    return resources


#: What a compact inventory keeps of a definition: identities, hosts
#: (names, node-ids, addresses, ports, roles, disks), the device size
#: and whether two primaries are allowed; not the options the
#: configuration sets anyway (quorum, protocol, verify-alg, ...).
COMPACT_DEFINITION = {'name': None, 'minor': None, 'hosts': None,
                      'disk': ('size',), 'net': ('allow-two-primaries',)}


def compact_definition(definition: dict) -> dict:
    """``definition`` with only the keys of :data:`COMPACT_DEFINITION`."""
    out: dict[str, Any] = {}
    for key, inner in COMPACT_DEFINITION.items():
        if key not in definition:
            continue
        value = definition[key]
        if inner is not None and isinstance(value, dict):
            value = {k: value[k] for k in inner if k in value}
            if not value:
                continue
        out[key] = value
    return out


def _used_minors_ports(node: Node, states: list[dict]
                       ) -> tuple[set[int], set[int]]:
    minors: set[int] = set()
    ports: set[int] = set()
    try:
        files = sorted(node.store.resource_dir.glob('*' + resfiles.SUFFIX))
    except OSError:
        files = []
    for path in files:
        try:
            found = drbdconf.used_minors_ports(path.read_text())
        except (OSError, drbdconf.ParseError) as e:
            LOG.warning('Cannot read %s: %s', path, e)
            continue
        minors |= found[0]
        ports |= found[1]
    for entry in states:
        minors.update(drbdstatus.ResourceState.from_json(entry).minors)
    return minors, ports


OPS = {
    'inventory': (inventory, 'versions, pools (total/free/provisioned), '
                             'resources, volume and snapshot LVs, used '
                             'minors and ports'),
    'status': (status, 'one resource: its .res definition and running DRBD '
                       'state'),
}
