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
"""The driver's flows on real DRBD 9.2.18: 3 storage VMs, 2 hypervisors.

``tox -e vm``. The controller reaches every VM through the real SSH
transport; the VMs run the real DRBD 9.2.18 kernel module, real LVM thin
and drbd-utils. Data is written through the client device on a
hypervisor; after each flow every resource is verified (``drbdadm
verify``, 0 out-of-sync on every peer device) and its bytes compared on
every replica and with what was written (tests/vm/checks.py). Then it
measures create/snapshot/attach/delete latency against the command
sequence of Cinder's LVM driver object (its commands run in one VM).
"""

from __future__ import annotations

import json
import logging
import os
import re
import statistics
import sys
import time

from blackstor_cinder.node import sizing
from tests.vm import base
from tests.vm import checks
from tests.vm import image
from tests.vm import lvm_reference

MiB = checks.MiB
EXTENT = 4 * MiB
MAX_PEERS = base.MAX_PEERS
VG, POOL = base.VG, base.POOL
ROUNDS = int(os.environ.get('BLACKSTOR_VM_ROUNDS', '3'))


class VMFlowsTest(base.VMClusterTestCase):

    # -- reading the VMs ----------------------------------------------------

    def lvs(self) -> dict[str, dict[str, dict]]:
        """Per storage VM: LV name -> the real ``lvs --reportformat json``."""
        def one(name):
            out = self.vms.ssh(
                name, f'lvs --reportformat json --units b --nosuffix -o '
                      f'lv_name,lv_size,origin,lv_attr,pool_lv {VG}').stdout
            rows = json.loads(out)['report'][0]['lv']
            return {r['lv_name']: r for r in rows}
        return checks.each(self.STORAGE, one)

    def md(self, lv: str, minor: int) -> dict[str, dict | None]:
        """Per storage VM: the real ``drbdmeta dump-md`` of an LV.

        Only of an LV DRBD does not hold (a snapshot); None where drbdmeta
        refuses.
        """
        def one(name):
            proc = self.vms.ssh(
                name, f'drbdmeta --force {minor} v09 /dev/{VG}/{lv} '
                      f'internal dump-md', check=False)
            if proc.returncode != 0:
                return None
            text = proc.stdout
            head = text.split('peer[', 1)[0]
            return {
                'current': int(re.search(r'current-uuid 0x(\w+)', head)[1],
                               16),
                'flags': int(re.search(r'^flags 0x(\w+)', head, re.M)[1],
                             16),
                'max_peers': int(re.search(r'^max-peers (\d+)', text,
                                           re.M)[1]),
                'md_offset': int(re.search(r'# md_offset (\d+)', text)[1]),
            }
        return checks.each(self.STORAGE, one)

    def check_lvs(self, name: str, size: int,
                  origin: str | None = None) -> None:
        """The replicas' real LVs: thin, in the pool, big enough."""
        need = sizing.lv_size_for(size, MAX_PEERS, EXTENT)
        for vm in self.replicas(name):
            row = self.lvs()[vm].get(name)
            self.assertIsNotNone(row, f'{name} missing on {vm}')
            self.assertGreaterEqual(int(row['lv_size']), need,
                                    f'{name} on {vm}: {row}')
            self.assertEqual(POOL, row['pool_lv'])
            self.assertEqual('V', row['lv_attr'][0], row)
            if origin is not None:
                self.assertEqual(origin, row['origin'], f'{vm}: {row}')

    def check_up_to_date(self, name: str) -> None:
        """Every replica UpToDate with quorum, as the kernel reports it.

        Every peer disk UpToDate too (diskless clients: Diskless).
        """
        spec = self.spec(name)
        diskful = {h.name for h in spec.diskful_hosts}
        states = checks.states(self.vms, name, [h.name for h in spec.hosts])
        for node, state in states.items():
            self.assertIsNotNone(state, f'{name} not up on {node}')
            dev = (state.get('devices') or [{}])[0]
            self.assertEqual('UpToDate' if node in diskful else 'Diskless',
                             dev.get('disk-state'),
                             f'{name} on {node}: {checks.brief(state)}')
            self.assertTrue(dev.get('quorum'),
                            f'{name} on {node}: {checks.brief(state)}')
            for peer, pdev in checks.peer_devices(state):
                self.assertEqual(
                    'UpToDate' if peer in diskful else 'Diskless',
                    pdev.get('peer-disk-state'),
                    f'{name} on {node}, peer {peer}: '
                    f'{checks.brief(state)}')

    def check_gone(self, *names: str) -> None:
        for vm, lvs in self.lvs().items():
            for name in names:
                self.assertNotIn(name, lvs, f'{name} left on {vm}')

    def random(self, size: int) -> bytes:
        return os.urandom(size)

    # -- the flows ----------------------------------------------------------

    def test_1_flows(self):
        steps = []
        failures = []
        expected: dict[str, checks.Expected] = {}
        clients: dict[str, dict[str, str]] = {}
        log = logging.getLogger('blackstor_cinder')

        def step(what, fn, check=None):
            """Run a flow, its checks, the data checks of every resource.

            A failure is recorded (with the kernel's messages) and the
            next flows still run; the test fails at the end.
            """
            log.info('== step: %s', what)
            t = time.monotonic()
            try:
                fn()
                took = time.monotonic() - t
                if check:
                    check()
                self.check_all(expected, clients)
            except Exception as exc:
                took = time.monotonic() - t
                kernel = '\n'.join(
                    f'--- {n} dmesg:\n{self.dmesg(n, 15)}'
                    for n in self.STORAGE + self.HYPERVISORS)
                failures.append(f'{what}: {type(exc).__name__}: {exc}\n'
                                f'{kernel}')
                log.error('== step failed: %s: %s', what, exc)
                steps.append((what + ' FAILED', took,
                              time.monotonic() - t - took))
                return False
            steps.append((what, took, time.monotonic() - t - took))
            return True

        # Small volumes: verify and the checksums are CPU-bound in TCG VMs
        # and run after every step; the writes keep the same layout in
        # units of a chunk (size / 8).
        size = 32 * MiB
        chunk = size // 8
        vol, snap = 'volume-vma', 'snap-vma'

        def create():
            self.ctl.create_volume(vol, size, 3)
            expected[vol] = checks.Expected(size)

        def check_create():
            self.assertEqual(3, len(self.replicas(vol)))
            self.check_lvs(vol, size)
            self.check_up_to_date(vol)
        if not step('create 3 replicas', create, check_create):
            self.fail('create failed; nothing else can run:\n' +
                      '\n'.join(failures))

        dev = {}
        saved: dict[str, checks.Expected] = {}     # snapshot -> its bytes

        def attach():
            dev['hv-1'] = self.ctl.attach(vol, 'hv-1')
            clients[vol] = {'hv-1': dev['hv-1']}

        def check_attach():
            self.assertTrue(dev['hv-1'].startswith('/dev/'), dev)
            self.assertEqual(size, checks.device_size(self.vms, 'hv-1',
                                                      dev['hv-1']))
            self.check_up_to_date(vol)
            for offset in (0, 5 * chunk // 2, 7 * chunk):
                data = self.random(chunk)
                checks.write(self.vms, 'hv-1', dev['hv-1'], offset, data)
                expected[vol].write(offset, data)
        attached = step('attach hv-1, write 3 chunks', attach,
                        check_attach)

        def snapshot():
            self.ctl.create_snapshot(vol, snap)
            saved[snap] = expected[vol].copy()

        def check_snapshot():
            minor = self.spec(vol).minor
            for vm, lvs in self.lvs().items():
                self.assertEqual(vol, lvs[snap]['origin'], vm)
                self.assertEqual('V', lvs[snap]['lv_attr'][0], vm)
                self.assertEqual('a', lvs[snap]['lv_attr'][4], vm)
            mds = self.md(snap, minor)
            for vm, md in mds.items():
                self.assertIsNotNone(md, f'no meta data in {snap} on {vm}')
                self.assertEqual(MAX_PEERS, md['max_peers'])
                self.assertTrue(md['flags'] & 1, f'{vm}: {md}')
            self.assertEqual(1, len({md['current'] for md in mds.values()}),
                             f'snapshots carry different UUIDs: {mds}')
            sums = checks.lv_checksums(self.vms, self.lv_path(snap), size,
                                       self.STORAGE)
            self.assertEqual({saved[snap].sha256()}, set(sums.values()),
                             f'{snap} does not hold the volume: {sums}')
            if attached:
                # Written after the snapshot: the revert must undo it.
                data = self.random(chunk)
                checks.write(self.vms, 'hv-1', dev['hv-1'], chunk, data)
                expected[vol].write(chunk, data)
        snapped = step('snapshot (attached), write a chunk', snapshot,
                       check_snapshot)

        def from_snapshot():
            self.ctl.create_volume_from_snapshot('volume-vmc', snap, vol,
                                                 size, 2 * size)
            expected['volume-vmc'] = saved[snap].copy(2 * size)
        if snapped:
            step('volume from snapshot (2x)', from_snapshot,
                 lambda: self.check_lvs('volume-vmc', 2 * size,
                                        origin=snap))

        def clone():
            self.ctl.clone_volume('volume-vmb', vol, size, size)
            expected['volume-vmb'] = expected[vol].copy()

        def check_clone():
            self.check_lvs('volume-vmb', size)
            self.check_gone('clone-volume-vmb')
        step('clone (source attached)', clone, check_clone)

        def extend():
            self.ctl.extend_volume(vol, 2 * size)
            expected[vol].grow(2 * size)

        def check_extend():
            self.check_lvs(vol, 2 * size)
            if attached:
                self.assertEqual(2 * size, checks.device_size(
                    self.vms, 'hv-1', dev['hv-1']),
                    'the client did not get the new size')
                data = self.random(chunk)
                checks.write(self.vms, 'hv-1', dev['hv-1'], 9 * chunk, data)
                expected[vol].write(9 * chunk, data)
        step('extend to 2x (attached), write past the old end', extend,
             check_extend)

        holder = {}

        def migrate():
            # The guest on hv-1 keeps the device open (Primary) while
            # the destination attaches and writes: a live migration.
            holder['pid'] = self.hold_open('hv-1', dev['hv-1'])
            checks.wait('hv-1 Primary',
                        lambda: self.role('hv-1', vol) == 'Primary', 30)
            dev['hv-2'] = self.ctl.attach(vol, 'hv-2')
            nodes = self.replicas(vol) + ['hv-1', 'hv-2']
            on = self.two_primaries(vol, nodes)
            self.assertTrue(all(on.values()),
                            f'allow-two-primaries not running: {on}')
            data = self.random(chunk)
            checks.write(self.vms, 'hv-2', dev['hv-2'], 25 * chunk // 2, data)
            expected[vol].write(25 * chunk // 2, data)
            clients[vol] = {'hv-1': dev['hv-1'], 'hv-2': dev['hv-2']}
            self.release('hv-1', holder.pop('pid'))
            self.ctl.detach(vol, 'hv-1')
            clients[vol] = {'hv-2': dev['hv-2']}

        def check_migrate():
            nodes = self.replicas(vol) + ['hv-2']
            self.assertEqual({n: False for n in nodes},
                             self.two_primaries(vol, nodes),
                             'allow-two-primaries still on (drbdsetup '
                             'show)')
            self.assertEqual({n: False for n in nodes},
                             self.res_two_primaries(vol, nodes),
                             'allow-two-primaries still in the .res')
            self.assertIsNone(checks.status(self.vms, 'hv-1', vol),
                              'still up on hv-1')
            self.assertEqual(['hv-2'],
                             [h.name for h in self.spec(vol).client_hosts])
        if attached:
            try:
                step('live migration hv-1 -> hv-2', migrate, check_migrate)
            finally:
                if 'pid' in holder:
                    self.release('hv-1', holder['pid'])

        def detach():
            self.ctl.detach(vol, 'hv-2')
            clients.pop(vol, None)

        def check_detach():
            self.assertEqual((), self.spec(vol).client_hosts)
            self.assertIsNone(checks.status(self.vms, 'hv-2', vol))
            self.check_up_to_date(vol)
        if attached:
            step('detach hv-2', detach, check_detach)

        def revert():
            self.ctl.revert_to_snapshot(vol, snap, size, 2 * size)
            expected[vol] = saved[snap].copy(2 * size)
        if snapped:
            step('revert (detached)', revert,
                 lambda: (self.check_lvs(vol, 2 * size),
                          self.check_up_to_date(vol)))

        def delete_snapshot():
            self.ctl.delete_snapshot(snap)
        step('delete snapshot', delete_snapshot,
             lambda: self.check_gone(snap))

        def delete_all():
            for name in ('volume-vmc', 'volume-vmb', vol):
                self.ctl.delete_volume(name)
                expected.pop(name, None)
                clients.pop(name, None)

        def check_empty():
            for vm, lvs in self.lvs().items():
                self.assertEqual([POOL], sorted(lvs), f'LVs left on {vm}')
            for vm in self.STORAGE + self.HYPERVISORS:
                res = [f for f in self.vms.ssh(
                    vm, 'ls /etc/drbd.d').stdout.split()
                    if f.endswith('.res')]
                self.assertEqual([], res, f'.res files left on {vm}')
                # With nothing configured the real drbdsetup prints
                # '# No currently configured DRBD found.'
                self.assertEqual([], [
                    line for line in self.vms.ssh(
                        vm, 'drbdsetup status').stdout.splitlines()
                    if line.strip() and not line.startswith('#')],
                    f'DRBD resources left on {vm}')
        step('delete the 3 volumes', delete_all, check_empty)
        lines = [f'  {what:<40} {sec:7.1f} s   (checks {chk:5.1f} s)'
                 for what, sec, chk in steps]
        report = (f'\nVM flows on DRBD {image.DRBD_VERSION} (3 replicas + 2 '
                  f'hypervisors, boot {self.boot_seconds:.0f} s, seconds):\n'
                  + '\n'.join(lines))
        print(report, file=sys.stderr)
        with open(image.CACHE / 'last-flows.txt', 'w') as f:
            f.write(report + '\n\n' + '\n\n'.join(failures) + '\n')
        if failures:
            self.fail(f'{len(failures)} flow(s) failed on real DRBD:\n\n'
                      + '\n\n'.join(failures))

    # -- latency ------------------------------------------------------------

    def test_2_latency(self):
        """Median create/snapshot/attach/delete vs Cinder's LVM driver."""
        ops = ('create', 'snapshot', 'attach', 'delete')
        ours = {op: [] for op in ops}
        ref = {op: [] for op in ops}
        commands = {op: [] for op in ops}
        vm_a = self.vms.vms['vm-a']
        lvm = lvm_reference.LVMReference(lvm_reference.SSHExecute(
            '127.0.0.1', vm_a.ssh_port, str(self.vms.key),
            str(self.vms.known_hosts)), VG)
        self.addCleanup(lvm.close)
        size = 1 << 30

        def timed(into, op, fn):
            logging.getLogger('blackstor_cinder').info(
                '== latency: %s %s', 'ours' if into is ours else 'lvm', op)
            before = len(lvm.execute.commands)
            t = time.monotonic()
            fn()
            into[op].append(time.monotonic() - t)
            if into is ref:
                commands[op].append(len(lvm.execute.commands) - before)

        def attach_detach(vol):
            self.ctl.attach(vol, 'hv-1')
            self.ctl.detach(vol, 'hv-1')

        for i in range(ROUNDS):
            vol, snap = f'volume-perf{i}', f'snap-perf{i}'
            timed(ours, 'create', lambda: self.ctl.create_volume(vol, size,
                                                                 3))
            timed(ours, 'snapshot',
                  lambda: self.ctl.create_snapshot(vol, snap))
            self.ctl.delete_snapshot(snap)
            timed(ours, 'attach', lambda: attach_detach(vol))
            timed(ours, 'delete', lambda: self.ctl.delete_volume(vol))

            # Cinder's LVMVolumeDriver (lvm_type=thin) on vm-a, same pool.
            lv, lsnap = f'volume-ref{i}', f'snapshot-ref{i}'
            timed(ref, 'create', lambda: lvm.create_volume(lv, 1))
            timed(ref, 'snapshot',
                  lambda: lvm.create_snapshot(lsnap, lv, 1))
            lvm.delete_snapshot(lsnap, lv, 1)
            timed(ref, 'delete', lambda: lvm.delete_volume(lv, 1))
        self.check_gone(*[f'volume-perf{i}' for i in range(ROUNDS)],
                        *[f'volume-ref{i}' for i in range(ROUNDS)],
                        *[f'_snapshot-ref{i}' for i in range(ROUNDS)])
        lines = [
            f'Latency, median of {ROUNDS} (TCG VMs, DRBD '
            f'{image.DRBD_VERSION}, 1 GiB thin volumes):',
            '  op        this driver (3 replicas)   Cinder LVM driver (1 VM)'
            '   ratio']
        for op in ops:
            a = statistics.median(ours[op])
            self.assertGreater(a, 0)
            if not ref[op]:
                lines.append(f'  {op:<9} {a:10.2f} s {"":15} '
                             f'{"(attach + detach on hv-1; none)":>26}')
                continue
            b = statistics.median(ref[op])
            lines.append(f'  {op:<9} {a:10.2f} s {"":15} {b:10.2f} s '
                         f'({statistics.median(commands[op]):.0f} commands)'
                         f'{"":2} {a / b:5.1f}x')
            self.assertGreater(b, 0)
        lines.append(
            '  (reference = cinder.volume.drivers.lvm.LVMVolumeDriver, '
            'lvm_type=thin, run on the host with its commands executed in '
            'vm-a over one kept SSH connection, no rootwrap)')
        print('\n' + '\n'.join(lines), file=sys.stderr)
        with open(image.CACHE / 'last-latency.txt', 'w') as f:
            f.write('\n'.join(lines) + '\n')
