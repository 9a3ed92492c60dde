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
"""A hand-written fake of a cluster of node agents, for controller tests.

Every request is first checked against the wire schema
(``protocol.validate_request``), so a controller that sends a malformed
request fails here as it would against the real agent. The fake keeps
per-node state (LVs, snapshots, .res files, up/suspended resources) and
answers the way the agent's contract says.
"""

from __future__ import annotations

import re
import threading

from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder.node import drbdstatus
from blackstor_cinder.node import ops_inventory
from blackstor_cinder.node import resrender
from blackstor_cinder import protocol

GiB = 1 << 30
#: What the fake's LVs hold beyond the volume (DRBD's internal metadata):
#: ``lvs`` keeps the volume's size, the replies add this.
MD_BYTES = 4 << 20

_ON = re.compile(r'on (\S+) \{\s*node-id (\d+);\s*address ipv[46] '
                 r'\[?([0-9a-fA-F:.]+?)\]?:(\d+);\s*volume 0 \{\s*device '
                 r'minor (\d+);\s*disk (none|"[^"]+");', re.S)
#: the agent's LVs of a revert in progress
REVERT_SUFFIXES = ('.rollback', '.previous')
# the resource's disk section, as node.resrender renders it
_SIZE = re.compile(r'^    disk \{[^}]*?^        size (\S+);', re.M)


def _res_size(text: str) -> int | None:
    size = _SIZE.search(text)
    if not size or not size.group(1).endswith('k'):
        return None
    return int(size.group(1)[:-1]) * 1024


def parse_res(text: str) -> dict:
    """The agent's ``definition`` of a .res rendered by node.resrender."""
    name = re.search(r'resource "([^"]+)"', text).group(1)
    hosts = []
    minor = None
    marked = resrender.tiebreakers(text)
    for host, node_id, address, port, minor, disk in _ON.findall(text):
        hosts.append({'name': host, 'node_id': int(node_id),
                      'address': address, 'port': int(port),
                      'family': 'ipv6' if ':' in address else 'ipv4',
                      'diskful': disk != 'none',
                      'disk': disk.strip('"') if disk != 'none' else None,
                      'tiebreaker': host in marked and disk == 'none'})
    net = {}
    if 'allow-two-primaries yes;' in text:
        net['allow-two-primaries'] = 'yes'
    disk = {}
    size = _SIZE.search(text)
    if size:
        disk['size'] = size.group(1)
    return {'name': name, 'minor': int(minor), 'hosts': hosts, 'net': net,
            'options': {}, 'disk': disk, 'zones': resrender.zones(text)}


class FakeAgent:
    """State and behaviour of one node's blackstor-node."""

    def __init__(self, cluster: FakeCluster, name: str, pool: str | None,
                 pool_bytes: int = 100 * GiB) -> None:
        self.cluster = cluster
        self.name = name
        self.pool = pool
        self.pool_bytes = pool_bytes
        self.lvs: dict[str, int] = {}
        self.snapshots: dict[str, int] = {}
        self.res: dict[str, tuple[str, str]] = {}   # name -> (text, secret)
        self.up: set[str] = set()
        self.suspended: set[str] = set()
        self.uptodate: set[str] = set()
        self.resized: list[tuple[str, int]] = []
        self.written_bytes = 0          # physical use of the pool
        # what each LV holds, as a label a test can follow (a write is a
        # new label); LVs made by a rollback phase live here too
        self.data: dict[str, str] = {}
        # ranges zeroed through the device: (resource, start, end)
        self.zeroed: list[tuple[str, int, int]] = []
        # the agent's <res>.grow: LV size before the first grow, the
        # device size then, a pending zeroing (start, end) or None
        self.marks: dict[str, dict] = {}
        # another node is Primary: the device cannot be opened here
        self.held: set[str] = set()
        self.created_by: dict[str, str | None] = {}   # LV -> create_id
        self.leases: dict[str, float] = {}            # resource -> lease
        self.kernel_version = '9.2.18'
        self.protocol_version = protocol.PROTOCOL_VERSION
        # request fields this agent does not know (an older version):
        # a request with one is refused by name, as validate_request does
        self.unknown_fields: set[str] = set()
        self.zero_new_blocks: bool | None = True
        # thin LVs not made by BlackStor (manage): name -> size; open ones
        self.bare: dict[str, int] = {}
        self.bare_open: set[str] = set()
        self.primary: set[str] = set()      # resources Primary here
        self.forgotten: list[tuple[str, int]] = []   # forget-peer calls
        self.origins: dict[str, str] = {}   # snapshot -> its volume

    # -- helpers --
    def _definition(self, name: str, secret: bool) -> dict:
        text, sec = self.res[name]
        definition = parse_res(text)
        if secret:
            definition['secret'] = sec
        return definition

    def _state(self, name: str) -> dict | None:
        if name not in self.up:
            return None
        definition = self._definition(name, False)
        me = next(h for h in definition['hosts'] if h['name'] == self.name)
        conns = []
        for host in definition['hosts']:
            if host['name'] == self.name:
                continue
            if not (me['diskful'] or host['diskful']):
                continue
            peer = self.cluster.agents.get(host['name'])
            # as DRBD: a peer whose .res does not list this node refuses
            # the connection
            ok = (peer is not None and host['name'] not in self.cluster.down
                  and name in peer.up and name in peer.res and any(
                      h['name'] == self.name for h in
                      peer._definition(name, False)['hosts']))
            conns.append({
                'name': host['name'], 'peer-node-id': host['node_id'],
                'connection-state': 'Connected' if ok else 'Connecting',
                'peer_devices': [{
                    'volume': 0,
                    'replication-state': 'Established' if ok else 'Off',
                    'peer-disk-state': (
                        ('UpToDate' if name in peer.uptodate
                         else 'Inconsistent')
                        if ok and host['diskful'] else
                        'Diskless' if ok else 'DUnknown')}]})
        disk = ('Diskless' if not me['diskful'] else
                'UpToDate' if name in self.uptodate else 'Inconsistent')
        return {'name': name, 'node-id': me['node_id'],
                'role': 'Primary' if name in self.primary else 'Secondary',
                'suspended': name in self.suspended,
                'devices': [{'volume': 0, 'minor': definition['minor'],
                             'disk-state': disk, 'quorum': True}],
                'connections': conns}

    def _used(self, skip: str) -> tuple[set, set]:
        minors, ports = set(), set()
        for other in self.res:
            if other == skip:
                continue
            definition = self._definition(other, False)
            minors.add(definition['minor'])
            ports.update(h['port'] for h in definition['hosts'])
        return minors, ports

    def _store_res(self, req: dict) -> None:
        # The agent's own renderer, from the request's spec.
        text = resrender.render(req['resource'], req['spec'])
        definition = parse_res(text)
        if not any(h['name'] == self.name for h in definition['hosts']):
            raise tp.NodeError(self.name, protocol.E_INVALID,
                               f'{self.name} is not a host of the resource',
                               'spec.hosts')
        if req['resource'] in self.up and req['resource'] in self.res:
            # as the agent: minor and node-ids of a running resource stay
            old = self._definition(req['resource'], False)
            ids = {h['name']: h['node_id'] for h in old['hosts']}
            if old['minor'] != definition['minor'] or any(
                    ids.get(h['name'], h['node_id']) != h['node_id']
                    for h in definition['hosts']):
                raise tp.NodeError(
                    self.name, protocol.E_CONFLICT,
                    f"{req['resource']} runs here with minor "
                    f"{old['minor']} and node-ids {ids}", 'minor')
        minors, ports = self._used(req['resource'])
        port = definition['hosts'][0]['port']
        if definition['minor'] in minors or port in ports:
            raise tp.NodeError(self.name, protocol.E_CONFLICT,
                               'minor or port clash', 'minor')
        self.res[req['resource']] = (text, req['secret'])

    def _came_up(self, name: str) -> None:
        """Up here; the first replica up sets the device's size."""
        if not any(name in a.up for a in self.cluster.agents.values()):
            self.cluster.device_sizes[name] = (
                _res_size(self.res[name][0]) or self.lvs.get(name))
        self.up.add(name)

    def _pending(self, name: str) -> list[int] | None:
        mark = self.marks.get(name)
        return list(mark['zero']) if mark and mark['zero'] else None

    def _check_pool(self, req: dict) -> None:
        if 'pool' in req and req['pool'] != self.pool:
            raise tp.NodeError(self.name, protocol.E_INVALID,
                               f"pool {req['pool']} is not configured",
                               'pool')

    # -- ops --
    def handle(self, req: dict) -> dict:
        for field in sorted(self.unknown_fields & set(req)):
            raise tp.NodeError(self.name, protocol.E_INVALID,
                               f"{field}: not a field of {req['op']}",
                               field)
        self._check_pool(req)
        return getattr(self, 'op_' + req['op'].replace('-', '_'))(req)

    def op_inventory(self, req: dict) -> dict:
        provisioned = sum(self.lvs.values()) + sum(self.snapshots.values())
        used_minors, used_ports = self._used(skip='')
        return {
            'hostname': self.name, 'drbd_utils_version': '9.22.0',
            'protocol_version': self.protocol_version,
            'drbd_kernel_version': self.kernel_version,
            'pools': [{'name': self.pool, 'total_bytes': self.pool_bytes,
                       'free_bytes': self.pool_bytes - self.written_bytes,
                       'provisioned_bytes': provisioned,
                       'zero_new_blocks': self.zero_new_blocks}]
            if self.pool else [],
            # brief: the names only, compact: cut, as the agent
            'resources': {n: {} if req.get('brief') else
                          self._entry(n, bool(req.get('compact')))
                          for n in self.res},
            # as the agent: a revert's LVs are not volumes
            'volumes': [{'name': n, 'pool': self.pool, 'size_bytes': s,
                         'create_ids': [self.created_by[n]]
                         if self.created_by.get(n) else []}
                        for n, s in self.lvs.items()
                        if not n.endswith(REVERT_SUFFIXES)],
            'revert_lvs': [{'name': n, 'pool': self.pool, 'size_bytes': s,
                            'resource': n.rpartition('.')[0],
                            'role': n.rpartition('.')[2]}
                           for n, s in self.lvs.items()
                           if n.endswith(REVERT_SUFFIXES)],
            'snapshots': [{'name': n, 'pool': self.pool, 'size_bytes': s,
                           'origin': self.origins.get(n)}
                          for n, s in self.snapshots.items()],
            'bare_lvs': [self._bare_entry(n, s)
                         for n, s in sorted(self.bare.items())],
            'used_minors': sorted(used_minors),
            'used_ports': sorted(used_ports)}

    def _entry(self, name: str, compact: bool) -> dict:
        definition = self._definition(name, False)
        state = self._state(name)
        if compact:
            definition = ops_inventory.compact_definition(definition)
            state = drbdstatus.compact(state)
        return {'definition': definition, 'state': state,
                'zero_pending': self._pending(name)}

    def _bare_entry(self, name: str, size: int) -> dict:
        volume = size // GiB * GiB
        return {'name': name, 'pool': self.pool, 'size_bytes': size,
                'volume_bytes': volume,
                'missing_bytes': max(0, volume + MD_BYTES - size)
                if volume else None, 'open': name in self.bare_open}

    # -- manage, as the agent's rename, wrap and sync-source --
    def op_rename(self, req: dict) -> dict:
        old, new = req['resource'], req['new_name']
        if old not in self.lvs and new in self.lvs and new in self.res:
            self._came_up(new)
            return {'renamed': False}
        if old not in self.lvs or old not in self.res:
            raise tp.NodeError(self.name, protocol.E_NOT_FOUND,
                               f'{old} not found', 'resource')
        if new in self.lvs or new in self.res or new in self.bare:
            raise tp.NodeError(self.name, protocol.E_CONFLICT,
                               f'{new} exists', 'new_name')
        if old in self.primary:
            raise tp.NodeError(self.name, protocol.E_BUSY,
                               f'{old} is in use here', 'resource')
        self.res.pop(old)
        self._store_res(dict(req, resource=new))
        self.lvs[new] = self.lvs.pop(old)
        self.data[new] = self.data.pop(old, '')
        if old in self.uptodate:
            self.uptodate.discard(old)
            self.uptodate.add(new)
        self.up.discard(old)
        self._came_up(new)
        return {'renamed': True}

    def op_wrap(self, req: dict) -> dict:
        name, lv = req['resource'], req['lv']
        if req.get('undo'):
            if name in self.lvs:
                self.bare[lv] = self.lvs.pop(name) + MD_BYTES
                self.data[lv] = self.data.pop(name, '')
                self.res.pop(name, None)
                self.up.discard(name)
                self.uptodate.discard(name)
            return {'unwrapped': True}
        if lv not in self.bare and name in self.lvs and name in self.res:
            return {'wrapped': False}
        if lv not in self.bare:
            raise tp.NodeError(self.name, protocol.E_NOT_FOUND,
                               f'no thin LV {lv}', 'lv')
        if self.bare[lv] < req['size'] + MD_BYTES:
            raise tp.NodeError(self.name, protocol.E_INVALID,
                               'no room for the metadata', 'lv')
        self._store_res(req)
        self.lvs[name] = self.bare.pop(lv) - MD_BYTES
        self.data[name] = self.data.pop(lv, '')
        self._came_up(name)
        return {'wrapped': True}

    def op_snapshot_rename(self, req: dict) -> dict:
        old, new = req['snapshot'], req['new_name']
        if old not in self.snapshots:
            if self.origins.get(new) == req['resource']:
                return {'renamed': False}
            raise tp.NodeError(self.name, protocol.E_NOT_FOUND,
                               f'snapshot {old} not found', 'snapshot')
        if self.origins.get(old) != req['resource']:
            raise tp.NodeError(self.name, protocol.E_CONFLICT,
                               'not a snapshot of it', 'snapshot')
        if new in self.snapshots or new in self.lvs:
            raise tp.NodeError(self.name, protocol.E_CONFLICT,
                               f'{new} exists', 'new_name')
        self.snapshots[new] = self.snapshots.pop(old)
        self.origins[new] = self.origins.pop(old)
        self.data[new] = self.data.pop(old, '')
        return {'renamed': True}

    def op_sync_source(self, req: dict) -> dict:
        name = req['resource']
        self.cluster.log.append((self.name, 'sync-source'))
        for agent in self.cluster.agents.values():
            if name in agent.up and agent.name not in self.cluster.down:
                agent.uptodate.add(name)
                agent.data[name] = self.data.get(name, '')
        return {'forced': True}

    def op_status(self, req: dict) -> dict:
        name = req['resource']
        if name not in self.res:
            return {'resource': name, 'exists': False, 'definition': None,
                    'state': None}
        return {'resource': name, 'exists': True,
                'definition': self._definition(name, True),
                'state': self._state(name),
                'zero_pending': self._pending(name)}

    def op_create(self, req: dict) -> dict:
        name = req['resource']
        lv_created = name not in self.lvs
        res_created = name not in self.res
        self._store_res(req)
        if lv_created:
            self.lvs[name] = req['size']
            self.data[name] = 'zeros'
            self.created_by[name] = req.get('create_id')
        self._came_up(name)
        self.cluster.resync(name)
        return {'lv_created': lv_created, 'md_created': lv_created,
                'res_created': res_created, 'brought_up': True}

    def op_create_from_snapshot(self, req: dict) -> dict:
        if req['snapshot'] not in self.snapshots:
            raise tp.NodeError(self.name, protocol.E_NOT_FOUND,
                               'no such snapshot', 'snapshot')
        self._store_res(req)
        self.lvs[req['resource']] = self.snapshots[req['snapshot']]
        self.data[req['resource']] = self.data.get(req['snapshot'], '')
        self._came_up(req['resource'])
        self.uptodate.add(req['resource'])
        return {}

    def op_adjust(self, req: dict) -> dict:
        self._store_res(req)
        self._came_up(req['resource'])
        self.cluster.resync(req['resource'])
        return {}

    def op_forget_peer(self, req: dict) -> dict:
        name = req['resource']
        if name not in self.up:
            raise tp.NodeError(self.name, protocol.E_NOT_FOUND,
                               f'{name} is not up', 'resource')
        if any(h['node_id'] == req['node_id'] for h in
               self._definition(name, False)['hosts']):
            raise tp.NodeError(self.name, protocol.E_CONFLICT,
                               'peer still configured', 'node_id')
        self.forgotten.append((name, req['node_id']))
        return {'resource': name, 'node_id': req['node_id']}

    def op_delete(self, req: dict) -> dict:
        name = req['resource']
        reply = ({'definition': self._definition(name, False)
                  if name in self.res else None}
                 if req.get('report') else {})
        if ('create_id' in req and name in self.lvs
                and self.created_by.get(name) != req['create_id']):
            return dict(reply, resource=name, kept=True)
        for store in (self.res, self.lvs, self.data, self.created_by,
                      self.marks):
            store.pop(name, None)
        if 'create_id' not in req:
            for suffix in REVERT_SUFFIXES:
                self.lvs.pop(name + suffix, None)
                self.data.pop(name + suffix, None)
        self.up.discard(name)
        self.uptodate.discard(name)
        return reply

    def op_resize(self, req: dict) -> dict:
        """The agent's resize contract (see protocol), zeroing included.

        A fault ``(node, 'zeroing')`` fails the zeroing after the
        resize took effect: the zeroing stays pending.
        """
        name = req['resource']
        if 'spec' in req and not req.get('drbd'):
            raise tp.NodeError(self.name, protocol.E_INVALID,
                               'spec only with drbd', 'spec')
        device = self.cluster.device_sizes.get(name)
        mark = self.marks.get(name)
        if (mark is not None and mark['zero'] is None and device is not None
                and device > mark['device']):
            mark = self.marks.pop(name)     # stale: DRBD was resized since
            mark = None
        before = self.lvs.get(name)
        if req.get('lv', True) and req['size'] > (before or 0):
            if mark is None:
                mark = self.marks[name] = {'lv_size': (before or 0)
                                           + MD_BYTES, 'device': device,
                                           'zero': None}
            self.lvs[name] = req['size']
        base = mark['lv_size'] if mark else (before or 0) + MD_BYTES
        reply = {'lv_size_before': (before or 0) + MD_BYTES,
                 'lv_size_base': base, 'zeroed': None, 'resynced': False}
        if req.get('drbd'):
            reply.update(self._resize_drbd(req, mark, device))
        mark = self.marks.get(name)
        reply['zero_pending'] = list(mark['zero']) if mark and mark[
            'zero'] else None
        return reply

    def _resize_drbd(self, req: dict, mark: dict | None,
                     device: int | None) -> dict:
        name = req['resource']
        lower, upper = req.get('zero_from'), req.get('zero_to')
        pending = mark['zero'] if mark else None
        ranges = [pending] if pending else []
        if (req.get('assume_clean') and lower is not None
                and upper is not None and upper > lower
                and (device is None or device <= lower)):
            ranges.append((lower, upper))
        if pending and (lower is None or pending[0] < lower):
            raise tp.NodeError(self.name, protocol.E_CONFLICT if lower
                               else protocol.E_INVALID, 'zero_from: a '
                               f'zeroing of {pending} is pending; volume '
                               f'size {lower}', 'zero_from')
        if ranges and name in self.held:
            if pending:
                raise tp.NodeError(self.name, protocol.E_BUSY, 'the device '
                                   'cannot be opened', 'resource')
            ranges = []
            resynced = True
        else:
            resynced = False
        if 'spec' in req:
            self._store_res(req)
        size = req['size']
        if 'spec' not in req and name in self.res:
            size = _res_size(self.res[name][0]) or size
        self.resized.append((name, size))
        for agent in self.cluster.agents.values():
            if name in agent.up or agent is self:
                self.cluster.device_sizes[name] = max(
                    size, self.cluster.device_sizes.get(name) or 0)
        if not ranges:
            return {'resynced': resynced}
        start, end = min(r[0] for r in ranges), max(r[1] for r in ranges)
        self.marks[name] = dict(mark or {'lv_size': upper or end,
                                         'device': device},
                                zero=(start, end))
        fault = self.cluster.faults.get((self.name, 'zeroing'))
        if isinstance(fault, list):
            fault = fault.pop(0) if fault else None
        if fault is not None:
            raise fault
        self.zeroed.append((name, start, end))
        del self.marks[name]
        return {'zeroed': [start, end]}

    def op_suspend_io(self, req: dict) -> dict:
        # with ``report``: what status says, read before suspending
        reply = self.op_status(req) if req.get('report') else {}
        me = [h for h in (reply.get('definition') or {}).get('hosts', ())
              if h['name'] == self.name]
        if req['resource'] not in self.up or (me and me[0]['tiebreaker']):
            # as the agent: down here is no error, nothing suspended;
            # with report, neither is the tiebreaker its .res names
            return dict(reply, running=req['resource'] in self.up,
                        suspended=False)
        self.suspended.add(req['resource'])
        if 'lease' in req:
            self.leases[req['resource']] = req['lease']
        self.cluster.log.append((self.name, 'suspend-io'))
        return dict(reply, running=True, suspended=True)

    def op_resume_io(self, req: dict) -> dict:
        self.suspended.discard(req['resource'])
        self.cluster.log.append((self.name, 'resume-io'))
        return {}

    def op_new_current_uuid(self, req: dict) -> dict:
        for agent in self.cluster.agents.values():
            if req['resource'] in agent.up:
                agent.uptodate.add(req['resource'])
        return {}

    def op_snapshot_create(self, req: dict) -> dict:
        if req['resource'] not in self.lvs:
            raise tp.NodeError(self.name, protocol.E_NOT_FOUND, 'no LV',
                               'resource')
        self.snapshots[req['snapshot']] = self.lvs[req['resource']]
        self.origins[req['snapshot']] = req['resource']
        self.data[req['snapshot']] = self.data.get(req['resource'], '')
        self.cluster.log.append((self.name, 'snapshot-create'))
        return {}

    def op_snapshot_delete(self, req: dict) -> dict:
        self.snapshots.pop(req['snapshot'], None)
        return {}

    def op_snapshot_rollback(self, req: dict) -> dict:
        name, snap = req['resource'], req['snapshot']
        temp, previous = name + '.rollback', name + '.previous'
        phase = req.get('phase')
        if phase is None:
            self.up.discard(name)
            self.lvs[name] = self.snapshots[snap]
            self.data[name] = self.data.get(snap, '')
        elif phase == 'prepare':
            self.lvs[temp] = self.snapshots[snap]
            self.data[temp] = self.data.get(snap, '')
        elif phase == 'swap':
            self.up.discard(name)
            if temp in self.lvs:
                self.lvs[previous] = self.lvs.pop(name)
                self.data[previous] = self.data.pop(name, '')
                self.lvs[name] = self.lvs.pop(temp)
                self.data[name] = self.data.pop(temp, '')
        elif phase == 'undo':
            if previous in self.lvs:
                self.up.discard(name)
                self.lvs[name] = self.lvs.pop(previous)
                self.data[name] = self.data.pop(previous, '')
            self.lvs.pop(temp, None)
            self.data.pop(temp, None)
        elif phase == 'commit':
            self.lvs.pop(previous, None)
            self.data.pop(previous, None)
        return {}

    def op_attach(self, req: dict) -> dict:
        self._store_res(req)
        self._came_up(req['resource'])
        return {'device_path': f"/dev/drbd/by-res/{req['resource']}/0"}

    def op_detach(self, req: dict) -> dict:
        self.res.pop(req['resource'], None)
        self.up.discard(req['resource'])
        return {}


class Gate:
    """Holds back requests matching (node, op, resource) until opened.

    None matches any node or resource. ``reached`` is set when the first
    one arrives. A request still held after ``timeout`` seconds fails
    (NodeTimeout), so that a test whose gate is never opened fails instead
    of hanging.
    """

    def __init__(self, node: str | None, op: str,
                 resource: str | None = None,
                 timeout: float = 10.0) -> None:
        self.node, self.op, self.resource = node, op, resource
        self.timeout = timeout
        self.reached = threading.Event()
        self.opened = threading.Event()

    def __call__(self, node: str, request: dict) -> None:
        if (request['op'] != self.op
                or self.node not in (None, node)
                or self.resource not in (None, request.get('resource'))):
            return
        self.reached.set()
        if not self.opened.wait(self.timeout):
            raise tp.NodeTimeout(node, f'{self.op} held at the gate')

    def open(self) -> None:
        self.opened.set()


class FakeTransport:
    def __init__(self, cluster: FakeCluster, node: model.Node) -> None:
        self.cluster = cluster
        self.node = node.name

    def call(self, request: dict, timeout: float | None = None) -> dict:
        return self.cluster.call(self.node, request)

    def close(self) -> None:
        pass


class FakeCluster:
    """Agents by node name, with fault injection."""

    def __init__(self) -> None:
        self.agents: dict[str, FakeAgent] = {}
        self.down: set[str] = set()
        # unreachable over SSH but still up for DRBD (a client whose
        # agent cannot be asked while its guest keeps writing)
        self.ssh_down: set[str] = set()
        # (node, op) -> exception raised instead of running the op, or a
        # list of exceptions raised once each
        # (node, 'zeroing'): the zeroing fails after the resize took effect
        self.faults: dict[tuple[str, str], Exception] = {}
        # resource -> its running DRBD device's size (DRBD passes a resize
        # to the peers)
        self.device_sizes: dict[str, int] = {}
        self.requests: list[tuple[str, dict]] = []
        self.log: list[tuple[str, str]] = []
        # called with (node, request) before each request is served and
        # outside the cluster's lock: they may block (see Gate) or raise
        self.hooks: list = []
        self._lock = threading.Lock()

    def add(self, name: str, pool: str | None = 'vg/pool',
            pool_bytes: int = 100 * GiB) -> FakeAgent:
        self.agents[name] = FakeAgent(self, name, pool, pool_bytes)
        return self.agents[name]

    def transport_for(self, node: model.Node) -> FakeTransport:
        return FakeTransport(self, node)

    def call(self, node: str, request: dict) -> dict:
        protocol.validate_request(request)
        for hook in list(self.hooks):
            hook(node, request)
        with self._lock:
            self.requests.append((node, request))
            if (node in self.down or node in self.ssh_down
                    or node not in self.agents):
                raise tp.NodeUnreachable(node, f'{node}: connection '
                                               'refused')
            fault = self.faults.get((node, request['op']))
            if isinstance(fault, list):     # one-shot faults, in order
                fault = fault.pop(0) if fault else None
            if fault is not None:
                raise fault
            return self.agents[node].handle(request)

    def _lists(self, agent: FakeAgent, name: str, other: str) -> bool:
        return name in agent.res and any(
            h['name'] == other and h['diskful']
            for h in agent._definition(name, False)['hosts'])

    def resync(self, name: str) -> None:
        """A replica that is not UpToDate syncs in full from one that is.

        As DRBD does when a replica with fresh metadata connects to an
        UpToDate peer (both list each other, both up): instantly here.
        """
        for agent in self.agents.values():
            if (name not in agent.up or name in agent.uptodate
                    or name not in agent.lvs or agent.name in self.down):
                continue
            for peer in self.agents.values():
                if (peer is not agent and name in peer.uptodate
                        and name in peer.up and peer.name not in self.down
                        and self._lists(agent, name, peer.name)
                        and self._lists(peer, name, agent.name)):
                    agent.uptodate.add(name)
                    agent.data[name] = peer.data.get(name, '')
                    break

    def ops(self, op: str) -> list[str]:
        """Nodes that received ``op``, in order."""
        return [node for node, req in self.requests if req['op'] == op]

    def clean(self) -> dict[str, list[str]]:
        """Whatever is left on each node (empty lists when clean)."""
        return {name: sorted(a.lvs) + sorted(a.snapshots) + sorted(a.res)
                + sorted(a.bare)
                for name, a in self.agents.items()
                if a.lvs or a.snapshots or a.res or a.bare}
