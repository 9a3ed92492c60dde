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
"""The user's journey through Cinder with this driver, step by step.

Shared by the README demo (which prints every step) and the e2e tests
(which assert on what each step returns). Everything goes through the
``openstack`` CLI against the real Cinder services, as a user would; the
data checks read the cluster in a box directly (the replicas' LV files).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Any, Callable

from tests.e2e import stack as stack_mod
from tests.functional import cluster_box

BACKEND = 'blackstor-1'
VOLUME_TYPE = 'blackstor-3-replicas'
GiB = 1 << 30
HYPERVISOR = 'hv-1'


def backend_section(box: cluster_box.ClusterInABox) -> dict[str, str]:
    """The cinder.conf backend section Cinder runs the driver with."""
    opts = box.backend_options()
    opts['volume_backend_name'] = BACKEND
    return opts


@dataclasses.dataclass
class Step:
    name: str
    status: str
    seconds: float
    detail: str = ''


class Journey:
    """Runs the steps and keeps a record of them."""

    def __init__(self, stack: stack_mod.Stack,
                 box: cluster_box.ClusterInABox,
                 report: Callable[[Step], None] | None = None) -> None:
        self.stack = stack
        self.box = box
        self.report = report or (lambda step: None)
        self.steps: list[Step] = []
        self.ids: dict[str, str] = {}

    # -- plumbing ---------------------------------------------------------

    def step(self, name: str, action: Callable[[], Any]) -> Any:
        start = time.monotonic()
        try:
            result = action()
        except Exception as exc:
            self._record(Step(name, 'FAILED', time.monotonic() - start,
                              str(exc).splitlines()[0][:300]))
            raise
        status, detail = result if isinstance(result, tuple) else (
            'ok', str(result or ''))
        self._record(Step(name, status, time.monotonic() - start, detail))
        return result

    def _record(self, step: Step) -> None:
        self.steps.append(step)
        self.report(step)

    def os(self, *args: str, **kwargs: Any) -> Any:
        return self.stack.openstack(*args, **kwargs)

    def wait(self, kind: str, ident: str, status: str) -> dict:
        return self.stack.wait_for(kind, ident, status, timeout=300)

    def resource(self, volume_id: str) -> str:
        return f'volume-{volume_id}'

    # -- the journey ------------------------------------------------------

    def create_type(self, replicas: int = 3) -> tuple[str, str]:
        self.stack.create_volume_type(
            VOLUME_TYPE, BACKEND, {'blackstor:replicas': str(replicas)})
        return 'ok', f'{VOLUME_TYPE} (blackstor:replicas={replicas})'

    def create_volume(self, key: str, size: int = 1, **source: str
                      ) -> tuple[str, str]:
        args = ['volume', 'create', '--size', str(size), '--type',
                VOLUME_TYPE]
        if 'snapshot' in source:
            args += ['--snapshot', self.ids[source['snapshot']]]
        if 'volume' in source:
            args += ['--source', self.ids[source['volume']]]
        vol = self.os(*args, f'demo-{key}')
        self.ids[key] = vol['id']
        vol = self.wait('volume', vol['id'], 'available')
        holders = self.replica_nodes(key)
        return vol['status'], (f'{vol["size"]} GiB on '
                               f'{", ".join(holders)}')

    def replica_nodes(self, key: str) -> list[str]:
        name = self.resource(self.ids[key])
        return sorted(
            n for n in self.box.storage_names
            if any(v['name'] == name
                   for v in self.box.inventory(n).get('volumes', [])))

    def show(self, key: str) -> dict:
        return self.os('volume', 'show', self.ids[key])

    def snapshot(self, key: str, volume: str) -> tuple[str, str]:
        snap = self.os('volume', 'snapshot', 'create', '--volume',
                       self.ids[volume], f'demo-{key}')
        self.ids[key] = snap['id']
        snap = self.wait('snapshot', snap['id'], 'available')
        return snap['status'], f'of {volume}'

    def extend(self, key: str, size: int) -> tuple[str, str]:
        self.os('volume', 'set', '--size', str(size), self.ids[key],
                json=False)
        vol = self.wait('volume', self.ids[key], 'available')
        if vol['size'] != size:
            raise AssertionError(f'size {vol["size"]}, wanted {size}')
        return vol['status'], f'{size} GiB'

    def connector(self) -> dict[str, str]:
        node = self.box.nodes[HYPERVISOR]
        return {'host': HYPERVISOR, 'ip': node.address}

    def attach(self, key: str) -> tuple[str, str]:
        """Attach the way Nova does: POST /attachments, then complete.

        ``openstack volume attachment create`` insists on looking the
        server up in Nova, which this stack does not run; Nova itself makes
        exactly this API call with the host's connector. No instance: a
        user may delete only attachments of non-Nova consumers (Cinder bug
        2004555 guard asks Nova otherwise).
        """
        conn = self.connector()
        _code, body = self.stack.api('POST', '/attachments', {
            'attachment': {'volume_uuid': self.ids[key],
                           'connector': {**conn, 'initiator': None,
                                         'multipath': False,
                                         'platform': 'x86_64',
                                         'os_type': 'linux'},
                           'mode': 'rw'}}, microversion='3.54')
        att = body['attachment']
        self.ids[key + '-attachment'] = att['id']
        self.os('volume', 'attachment', 'complete', att['id'], json=False)
        info = att.get('connection_info') or {}
        self.connection_info = info
        self.device_path = info.get('device_path') or (
            info.get('data') or {}).get('device_path')
        vol = self.wait('volume', self.ids[key], 'in-use')
        return vol['status'], (f'{info.get("driver_volume_type")} '
                               f'{self.device_path}')

    def write_and_check(self, key: str, size: int = 4 << 20,
                        offset: int = 1 << 20) -> tuple[str, str]:
        """Write through the hypervisor's device; read every replica."""
        pattern = os.urandom(size)
        with open(self.device_path, 'r+b') as dev:
            dev.seek(offset)
            dev.write(pattern)
            dev.flush()
            os.fsync(dev.fileno())
            dev.seek(offset)
            if dev.read(size) != pattern:
                raise AssertionError('read back through the device differs')
        lv = self.resource(self.ids[key])
        holders = self.replica_nodes(key)
        for node in holders:
            if self.box.lv_bytes(node, lv, offset, size) != pattern:
                raise AssertionError(f'replica on {node} differs')
        self.pattern = (offset, pattern)
        return 'ok', (f'{size >> 20} MiB through {HYPERVISOR}, same bytes '
                      f'on {len(holders)} replicas')

    def detach(self, key: str) -> tuple[str, str]:
        self.os('volume', 'attachment', 'delete',
                self.ids.pop(key + '-attachment'), json=False)
        vol = self.wait('volume', self.ids[key], 'available')
        return vol['status'], ''

    def revert(self, key: str, snapshot: str) -> tuple[str, str]:
        """Revert; what was written after the snapshot must be gone."""
        self.os('volume', 'revert', self.ids[snapshot], json=False)
        vol = self.wait('volume', self.ids[key], 'available')
        offset, pattern = self.pattern
        lv = self.resource(self.ids[key])
        for node in self.replica_nodes(key):
            if self.box.lv_bytes(node, lv, offset, len(pattern)) == pattern:
                raise AssertionError(f'{node} still has data written after '
                                     'the snapshot')
        return vol['status'], (f'to {snapshot}; later writes gone from '
                               'every replica')

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        """``blackstor-manage`` over the stack's cinder.conf."""
        return subprocess.run(
            [str(pathlib.Path(sys.executable).parent / 'blackstor-manage'),
             '--config-file', self.stack.cinder_conf, '--backend', BACKEND,
             *args], capture_output=True, text=True, timeout=600)

    def volume_keys(self) -> list[str]:
        return [k for k in self.ids if not k.startswith('snap')
                and not k.endswith('-attachment')]

    def up_to_date_replicas(self, key: str, nodes) -> list[str]:
        """The nodes of ``nodes`` holding an UpToDate, in-sync replica."""
        name = self.resource(self.ids[key])
        found = []
        for node in nodes:
            states = self.box.standin.status(node, name)
            if not states:
                continue
            state = states[0]
            if state['devices'][0]['disk-state'] != 'UpToDate':
                raise AssertionError(f'{name} on {node}: {state}')
            for conn in state['connections']:
                for dev in conn['peer_devices']:
                    if dev['peer-disk-state'] == 'UpToDate' and (
                            dev['out-of-sync'] or conn['connection-state']
                            != 'Connected'):
                        raise AssertionError(f'{name} on {node}: {conn}')
            found.append(node)
        return found

    def heal_lost_node(self) -> tuple[str, str]:
        """A storage node dies for good; ``node lost`` heals its volumes.

        Every volume back at 3 UpToDate replicas on the other nodes; the
        node then returns with its stale replicas, which ``check --fix``
        removes.
        """
        if len(self.box.storage_names) < 4:
            return 'skipped', 'needs a fourth storage node'
        keys = self.volume_keys()
        holders = {k: self.replica_nodes(k) for k in keys}
        lost = holders['vol'][0]
        up = [n for n in self.box.storage_names if n != lost]
        self.box.stop_node(lost)
        try:
            start = time.monotonic()
            proc = self.manage('node', 'lost', lost, '-f', 'json')
            took = time.monotonic() - start
            if proc.returncode:
                raise AssertionError(f'node lost {lost}: rc {proc.returncode}'
                                     f': {proc.stdout} {proc.stderr}')
            moved = json.loads(proc.stdout)
            for key in keys:
                now = self.up_to_date_replicas(key, up)
                if len(now) != len(holders[key]):
                    raise AssertionError(f'{key}: replicas {now} after the '
                                         f'heal, {holders[key]} before')
        finally:
            self.box.start_node(lost)
        proc = self.manage('check', '--fix')
        left = self.box.leftovers([lost])
        if proc.returncode or left:
            raise AssertionError(f'check --fix: rc {proc.returncode}: '
                                 f'{proc.stdout} {proc.stderr}; left on '
                                 f'{lost}: {left}')
        return 'ok', (f'{len(moved)} volumes re-replicated off {lost} in '
                      f'{took:.1f}s, each back at 3 UpToDate replicas; '
                      f'{lost} returned, check --fix removed its stale '
                      f'replicas')

    def delete_all(self) -> tuple[str, str]:
        snaps = [k for k in self.ids if k.startswith('snap')]
        vols = self.volume_keys()
        for key in snaps:
            self.os('volume', 'snapshot', 'delete', self.ids[key],
                    json=False)
        for key in snaps:
            self.wait('snapshot', self.ids.pop(key), 'deleted')
        for key in vols:
            self.os('volume', 'delete', self.ids[key], json=False)
        for key in vols:
            self.wait('volume', self.ids.pop(key), 'deleted')
        left = self.box.leftovers()
        if left:
            raise AssertionError(f'left on the nodes: {left}')
        return 'deleted', (f'{len(vols)} volumes, {len(snaps)} snapshots; '
                           'every node clean')

    def plan(self) -> list[tuple[str, Callable[[], Any]]]:
        """The README demo's sequence: (step name, action) pairs."""
        return [
            ('volume type', self.create_type),
            ('volume create (1 GiB, 3 replicas)',
             lambda: self.create_volume('vol')),
            ('volume show', lambda: ('ok', self.show('vol')['status'])),
            ('snapshot create', lambda: self.snapshot('snap', 'vol')),
            ('volume from snapshot (2 GiB)',
             lambda: self.create_volume('from-snap', 2, snapshot='snap')),
            ('clone (--source)',
             lambda: self.create_volume('clone', 1, volume='vol')),
            # Cinder reverts only volumes of the snapshot's size: extend
            # another.
            ('extend clone to 2 GiB', lambda: self.extend('clone', 2)),
            (f'attach to {HYPERVISOR} (attachments API)',
             lambda: self.attach('vol')),
            ('write + read data', lambda: self.write_and_check('vol')),
            ('detach', lambda: self.detach('vol')),
            ('revert to snapshot', lambda: self.revert('vol', 'snap')),
            ('node lost: blackstor-manage node lost heals',
             self.heal_lost_node),
            ('delete all', self.delete_all),
        ]

    @classmethod
    def step_names(cls) -> list[str]:
        """The names ``run`` reports, known before anything runs.

        For a table's width; ``plan`` only builds its actions.
        """
        return [name for name, _ in cls.__new__(cls).plan()]

    def run(self) -> None:
        """The README demo's sequence."""
        for name, action in self.plan():
            self.step(name, action)
