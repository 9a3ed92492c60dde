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
"""The driver's flows on 3 storage VMs with real LVM thin and drbd-utils.

``tox -e vm``. The controller reaches every VM through the real SSH
transport; after each step the test reads the REAL ``lvs --reportformat
json`` and the REAL DRBD meta data (``drbdmeta ... dump-md``) in the VMs.
DRBD's kernel part is emulated on the host (tests/vm/bridge.py). Then it
measures create/snapshot/delete latency against the command sequence of
Cinder's LVM driver object (its commands run in one VM) and prints the
ratios.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import unittest

import testtools

from blackstor_cinder import backend
from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.node import sizing
from blackstor_cinder import options
from tests.vm import bridge as bridge_mod
from tests.vm import image
from tests.vm import lvm_reference
from tests.vm import runner

MiB = 1 << 20
EXTENT = 4 * MiB
MAX_PEERS = 7
VG, POOL = runner.VG, runner.THINPOOL
ROUNDS = int(os.environ.get('BLACKSTOR_VM_ROUNDS', '3'))


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return 'the VM tier needs root (debootstrap, qemu)'
    if not shutil.which('qemu-system-x86_64'):
        return 'qemu-system-x86_64 not found (apt install qemu-system-x86)'
    return image.missing_tools()


class VMFlowsTest(testtools.TestCase):

    vms: runner.VMCluster
    bridge: bridge_mod.DrbdBridge

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        why = _why_not()
        if why:
            raise unittest.SkipTest(why)
        t0 = time.monotonic()
        image.ensure()
        cls.build_seconds = time.monotonic() - t0
        # Every agent request and its duration, for latency work:
        # .cache/vm/last-controller.log (kept after the run).
        cls.log_handler = logging.FileHandler(
            image.CACHE / 'last-controller.log', mode='w')
        cls.log_handler.setFormatter(logging.Formatter(
            '%(asctime)s %(threadName)s %(name)s %(message)s'))
        cls.log_handler.setLevel(logging.DEBUG)
        logger = logging.getLogger('blackstor_cinder')
        logger.addHandler(cls.log_handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False  # not into the test's own output
        runs = image.CACHE / 'runs'
        runs.mkdir(parents=True, exist_ok=True)
        cls.bridge_dir = tempfile.mkdtemp(prefix='bridge-', dir=runs)
        names = ['vm-a', 'vm-b', 'vm-c']
        cls.vms = None
        cls.bridge = bridge_mod.DrbdBridge(
            cls.bridge_dir, names, VG, POOL, cls._peer_lv_size)
        try:
            t0 = time.monotonic()
            cls.vms = runner.VMCluster(names, bridge_port=cls.bridge.port)
            cls.vms.setUp()
            cls.boot_seconds = time.monotonic() - t0
            cls._each(lambda n: cls.vms.ssh(
                n, f'pvcreate -q /dev/vdb && vgcreate -q {VG} /dev/vdb && '
                   f'lvcreate -q --type thin-pool -L 6g -n {POOL} {VG}'))
            cls.ctl = ctl.Controller(
                backend.cluster_config(cls._conf(), 20.0),
                backend.transport_factory(cls._conf()), poll_interval=0.5)
        except BaseException:
            cls._teardown()
            raise

    @classmethod
    def tearDownClass(cls):
        cls._teardown()
        super().tearDownClass()

    @classmethod
    def _teardown(cls):
        if getattr(cls, 'log_handler', None):
            logger = logging.getLogger('blackstor_cinder')
            logger.removeHandler(cls.log_handler)
            logger.propagate = True
            cls.log_handler.close()
        if getattr(cls, 'ctl', None):
            cls.ctl.close()
        try:
            if cls.vms is not None:
                cls.vms.cleanUp()
        finally:
            cls.bridge.close()
        shutil.rmtree(cls.bridge_dir, ignore_errors=True)

    @classmethod
    def _peer_lv_size(cls, node: str, lv: str) -> int | None:
        proc = cls.vms.ssh(node, f'blockdev --getsize64 /dev/{VG}/{lv}',
                           check=False)
        return int(proc.stdout) if proc.returncode == 0 else None

    @classmethod
    def _each(cls, fn):
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            return dict(zip(cls.vms.names,
                            pool.map(fn, cls.vms.names)))

    @classmethod
    def _conf(cls):
        from oslo_config import cfg
        conf = cfg.ConfigOpts()
        conf.register_opts(options.blackstor_opts)
        conf([])
        vms = cls.vms.vms.values()
        values = {
            'blackstor_storage_nodes': [v.name for v in vms],
            'blackstor_replication_addresses': {v.name: v.address
                                                for v in vms},
            'blackstor_ssh_addresses': {v.name: f'127.0.0.1:{v.ssh_port}'
                                        for v in vms},
            'blackstor_ssh_private_key': str(cls.vms.key),
            'blackstor_ssh_known_hosts': str(cls.vms.known_hosts),
            'blackstor_ssh_user': 'root',
            'blackstor_node_command': '/usr/local/bin/blackstor-node',
            'blackstor_pool': f'{VG}/{POOL}',
            'blackstor_replicas': 3,
            'blackstor_max_peers': MAX_PEERS,
            'blackstor_minor_range': '1000-1999',
            'blackstor_port_range': '7000-7999',
            'blackstor_node_timeout': 600.0,
            'blackstor_ssh_connect_timeout': 60.0,
        }
        for key, value in values.items():
            conf.set_override(key, value)
        return conf

    # -- reading the VMs ----------------------------------------------------

    def lvs(self) -> dict[str, dict[str, dict]]:
        """Per VM: LV name -> the real ``lvs --reportformat json`` row."""
        def one(name):
            out = self.vms.ssh(
                name, f'lvs --reportformat json --units b --nosuffix -o '
                      f'lv_name,lv_size,origin,lv_attr,pool_lv {VG}').stdout
            rows = json.loads(out)['report'][0]['lv']
            return {r['lv_name']: r for r in rows}
        return self._each(one)

    def md(self, lv: str, minor: int) -> dict[str, dict]:
        """Per VM: the real ``drbdmeta dump-md`` of /dev/<vg>/<lv>.

        ``--force``: while attached the activity log is not clean (as
        with the real kernel) and dump-md would refuse; it still reads
        the meta data as it is on disk.
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
        return self._each(one)

    def touch_all(self, name: str) -> None:
        """One agent status call per VM (delivers pending meta data)."""
        self.ctl.each_or_raise('status', self.ctl.config.storage_nodes,
                               {'op': 'status', 'resource': name})

    def check_volume(self, name: str, size: int, origin: str | None = None
                     ) -> dict:
        spec = self.ctl.find(name).spec
        self.assertIsNotNone(spec, name)
        self.touch_all(name)
        need = sizing.lv_size_for(size, MAX_PEERS, EXTENT)
        all_lvs = self.lvs()
        for vm, lvs in all_lvs.items():
            self.assertIn(name, lvs, f'{name} missing on {vm}')
            row = lvs[name]
            self.assertGreaterEqual(int(row['lv_size']), need,
                                    f'{name} on {vm}: {row}')
            self.assertEqual(POOL, row['pool_lv'])
            self.assertEqual('V', row['lv_attr'][0], row)
            if origin is not None:
                self.assertEqual(origin, row['origin'], f'{vm}: {row}')
        mds = self.md(name, spec.minor)
        for vm, md in mds.items():
            self.assertIsNotNone(md, f'no DRBD meta data on {vm}/{name}')
            self.assertEqual(MAX_PEERS, md['max_peers'])
            # Not the just-created UUID: new-current-uuid reached the disk.
            self.assertNotEqual(4, md['current'], f'{vm}: {md}')
            self.assertTrue(md['flags'] & 1, f'{vm}: not consistent {md}')
        self.assertEqual(1, len({md['current'] for md in mds.values()}),
                         f'replicas disagree: {mds}')
        lv_size = int(all_lvs['vm-a'][name]['lv_size'])
        self.assertEqual(lv_size - 4096, mds['vm-a']['md_offset'],
                         'meta data not at the end of the LV')
        return mds['vm-a']

    def check_gone(self, *names: str) -> None:
        for vm, lvs in self.lvs().items():
            for name in names:
                self.assertNotIn(name, lvs, f'{name} left on {vm}')

    # -- the flows ----------------------------------------------------------

    def test_1_flows(self):
        steps = []

        def step(what, fn):
            logging.getLogger('blackstor_cinder').info('== step: %s', what)
            t = time.monotonic()
            fn()
            steps.append((what, time.monotonic() - t))

        size = 64 * MiB
        step('create 3 replicas',
             lambda: self.ctl.create_volume('volume-vma', size, 3))
        md_a = self.check_volume('volume-vma', size)

        step('snapshot',
             lambda: self.ctl.create_snapshot('volume-vma', 'snap-vma'))
        for vm, lvs in self.lvs().items():
            self.assertEqual('volume-vma', lvs['snap-vma']['origin'], vm)
            # A thin snapshot, active (the agent activates snapshots).
            self.assertEqual('V', lvs['snap-vma']['lv_attr'][0], vm)
            self.assertEqual('a', lvs['snap-vma']['lv_attr'][4], vm)
        minor = self.ctl.find('volume-vma').spec.minor
        for vm, md in self.md('snap-vma', minor).items():
            self.assertIsNotNone(md, f'no meta data in the snapshot on {vm}')
            self.assertEqual(md_a['current'], md['current'],
                             f'snapshot on {vm} carries other meta data')

        step('clone', lambda: self.ctl.clone_volume('volume-vmb',
                                                    'volume-vma', size,
                                                    size))
        md_b = self.check_volume('volume-vmb', size)
        self.assertEqual(md_a['current'], md_b['current'],
                         'a clone keeps the source generation')
        self.check_gone('clone-volume-vmb')

        step('volume from snapshot (2x)',
             lambda: self.ctl.create_volume_from_snapshot(
                 'volume-vmc', 'snap-vma', 'volume-vma', size, 2 * size))
        self.check_volume('volume-vmc', 2 * size, origin='snap-vma')

        step('extend', lambda: self.ctl.extend_volume('volume-vma',
                                                      3 * size))
        self.check_volume('volume-vma', 3 * size)

        step('revert', lambda: self.ctl.revert_to_snapshot(
            'volume-vma', 'snap-vma', size, 3 * size))
        self.check_volume('volume-vma', 3 * size)

        step('delete snapshot',
             lambda: self.ctl.delete_snapshot('snap-vma'))
        self.check_gone('snap-vma')
        for name in ('volume-vmc', 'volume-vmb', 'volume-vma'):
            step(f'delete {name}', lambda: self.ctl.delete_volume(name))
            self.check_gone(name)
        for vm, lvs in self.lvs().items():
            self.assertEqual([POOL], sorted(lvs), f'LVs left on {vm}')
        for vm in self.vms.names:
            res = [f for f in self.vms.ssh(vm, 'ls /etc/drbd.d').stdout.split()
                   if f.endswith('.res')]
            self.assertEqual([], res, f'.res files left on {vm}')
        lines = [f'  {what:<28} {sec:7.1f} s' for what, sec in steps]
        print('\nVM flows (3 replicas, real LVM thin, seconds):\n' +
              '\n'.join(lines), file=sys.stderr)

    # -- latency ------------------------------------------------------------

    def test_2_latency(self):
        """Median create/snapshot/delete: this driver vs Cinder's LVM."""
        ours = {'create': [], 'snapshot': [], 'delete': []}
        ref = {'create': [], 'snapshot': [], 'delete': []}
        commands = {'create': [], 'snapshot': [], 'delete': []}
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

        for i in range(ROUNDS):
            vol, snap = f'volume-perf{i}', f'snap-perf{i}'
            timed(ours, 'create', lambda: self.ctl.create_volume(vol, size,
                                                                 3))
            timed(ours, 'snapshot',
                  lambda: self.ctl.create_snapshot(vol, snap))
            self.ctl.delete_snapshot(snap)
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
            f'Latency, median of {ROUNDS} (TCG VMs, 1 GiB thin volumes):',
            '  op        this driver (3 replicas)   Cinder LVM driver (1 VM)'
            '   ratio']
        for op in ('create', 'snapshot', 'delete'):
            a, b = statistics.median(ours[op]), statistics.median(ref[op])
            lines.append(f'  {op:<9} {a:10.2f} s {"":15} {b:10.2f} s '
                         f'({statistics.median(commands[op]):.0f} commands)'
                         f'{"":2} {a / b:5.1f}x')
            self.assertGreater(a, 0)
            self.assertGreater(b, 0)
        lines.append(
            '  (reference = cinder.volume.drivers.lvm.LVMVolumeDriver, '
            'lvm_type=thin, run on the host with its commands executed in '
            'vm-a over one kept SSH connection, no rootwrap)')
        print('\n' + '\n'.join(lines), file=sys.stderr)
        with open(self.vms_dir_report(), 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def vms_dir_report(self) -> str:
        return str(image.CACHE / 'last-latency.txt')
