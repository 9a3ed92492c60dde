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
"""The DRBD/LVM stand-in driven by the real drbdadm (drbd-utils 9.22).

Each test builds a small emulated cluster in a temporary directory, writes
.res files by hand and runs the real ``drbdadm`` with the stand-in
executables first on PATH, then checks state, data and refusals.
"""

import errno
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.standin import cluster
from tests.standin import md as mdlib

MIB = 1 << 20
LV_SIZE = 16 * MIB
PORT = 7789
MINOR = 1000


def _host(name, node_id, address, diskful):
    disk = '"/dev/blackstor/r0"' if diskful else 'none'
    return ('    on %s {\n        node-id %d;\n        address ipv4 %s:%d;\n'
            '        volume 0 {\n            device minor %d;\n'
            '            disk %s;\n            meta-disk internal;\n'
            '        }\n    }\n' % (name, node_id, address, PORT, MINOR, disk))


def res_text(hosts, two_primaries=False, quorum='majority',
             on_no_quorum='io-error'):
    """A .res like node/resrender.py renders; hosts: (name, id, addr, disk).

    ``disable-ip-verification`` lets every emulated host use its own
    127.0.0.x address without adding it to ``lo``.
    """
    net = ('        protocol C;\n        cram-hmac-alg sha256;\n'
           '        shared-secret "Secret0123456789abc";\n')
    if two_primaries:
        net += '        allow-two-primaries yes;\n'
    text = ('global { disable-ip-verification; }\n'
            'resource "r0" {\n    options {\n        quorum %s;\n'
            '        on-no-quorum %s;\n        auto-promote yes;\n    }\n'
            '    net {\n%s    }\n' % (quorum, on_no_quorum, net))
    for host in hosts:
        text += _host(*host)
    for i, a in enumerate(hosts):
        for b in hosts[i + 1:]:
            if a[3] or b[3]:
                text += ('    connection {\n        host %s;\n        host '
                         '%s;\n    }\n' % (a[0], b[0]))
    return text + '}\n'


A = ('nodea', 0, '127.0.0.1', True)
B = ('nodeb', 1, '127.0.0.2', True)
C = ('client1', 2, '127.0.0.3', False)


class StandinTestCase(unittest.TestCase):

    use_fuse = cluster.fuse_available()

    def setUp(self):
        super().setUp()
        if not shutil.which('drbdadm'):
            self.skipTest('drbd-utils (drbdadm) is not installed')
        self.dir = tempfile.mkdtemp(prefix='standin-')
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.cluster = cluster.Cluster(os.path.join(self.dir, 'box'),
                                       fuse=self.use_fuse)
        self.addCleanup(self.cluster.close)
        self.conf = os.path.join(self.dir, 'r0.res')

    def write_res(self, hosts, **kwargs):
        with open(self.conf, 'w') as f:
            f.write(res_text(hosts, **kwargs))

    def run_cmd(self, node, *argv, ok=True, stdin=None):
        proc = subprocess.run(list(argv), env=self.cluster.node_env(node),
                              capture_output=True, text=True, input=stdin)
        if ok and proc.returncode != 0:
            self.fail('%s: %s -> rc %d\n%s%s' % (node, ' '.join(argv),
                                                 proc.returncode,
                                                 proc.stdout, proc.stderr))
        return proc

    def drbdadm(self, node, *args, ok=True):
        return self.run_cmd(node, 'drbdadm', '-c', self.conf, *args, ok=ok)

    def make_lv(self, node, name='r0', size=LV_SIZE):
        self.run_cmd(node, 'lvcreate', '--yes', '--type', 'thin',
                     '--virtualsize', '%db' % size, '--thinpool', 'thinpool',
                     '--name', name, '--addtag', 'blackstor', 'blackstor')

    def status(self, node, cli=False):
        """``drbdsetup status --json r0`` (in-process unless ``cli``)."""
        if not cli:
            return self.cluster.status(node, 'r0')[0]
        proc = self.run_cmd(node, 'drbdsetup', 'status', '--json', 'r0')
        return json.loads(proc.stdout)[0]

    def conn(self, node, peer):
        for conn in self.status(node)['connections']:
            if conn['name'] == peer:
                return conn
        self.fail('%s has no connection to %s' % (node, peer))

    def build(self, hosts, uptodate=True, **kwargs):
        """LVs, create-md and up on ``hosts``; optionally skip the sync."""
        for name, _, _, diskful in hosts:
            self.cluster.add_node(name, size=256 * MIB)
            if diskful:
                self.make_lv(name)
        self.write_res(hosts, **kwargs)
        for name, _, _, diskful in hosts:
            if diskful:
                self.drbdadm(name, '--', '--max-peers=7', '--force',
                             'create-md', 'r0')
        for name, _, _, _ in hosts:
            self.drbdadm(name, 'up', 'r0')
        if uptodate:
            self.drbdadm(hosts[0][0], 'new-current-uuid', '--clear-bitmap',
                         'r0/0')

    def lv_bytes(self, node, offset, size, lv='r0'):
        return self.cluster.read_lv(node, 'blackstor', lv, offset, size)

    def gi(self, node, peer_id, lv='r0'):
        proc = self.run_cmd(node, 'drbdmeta', '--node-id=%d' % peer_id,
                            str(MINOR), 'v09', '/dev/blackstor/%s' % lv,
                            'internal', 'get-gi', ok=False)
        return proc


class TestLifecycle(StandinTestCase):

    def test_create_connect_sync_skip_and_replicate(self):
        self.build([A, B, C], uptodate=False)
        # all up and connected, nobody has data yet
        st = self.status('nodea', cli=True)
        self.assertEqual('Inconsistent', st['devices'][0]['disk-state'])
        self.assertEqual('Connected', self.conn('nodea', 'nodeb')[
            'connection-state'])
        self.assertEqual('Inconsistent', self.conn('nodea', 'nodeb')[
            'peer_devices'][0]['peer-disk-state'])
        self.assertEqual('Diskless', self.status('client1')['devices'][0][
            'disk-state'])
        self.assertTrue(self.status('client1')['devices'][0]['client'])
        self.assertIn('0000000000000004:', self.gi('nodeb', 0).stdout)

        # the thin-LV fast path
        self.drbdadm('nodea', 'new-current-uuid', '--clear-bitmap', 'r0/0')
        for node, peer in (('nodea', 'nodeb'), ('nodeb', 'nodea')):
            st = self.status(node)
            self.assertEqual('UpToDate', st['devices'][0]['disk-state'])
            pd = self.conn(node, peer)['peer_devices'][0]
            self.assertEqual('UpToDate', pd['peer-disk-state'])
            self.assertEqual('Established', pd['replication-state'])
        cu_a = self.gi('nodea', 1).stdout.split(':')[0]
        self.assertEqual(cu_a, self.gi('nodeb', 0).stdout.split(':')[0])
        self.assertNotEqual('0000000000000004', cu_a)
        events = self.run_cmd('nodea', 'drbdsetup', 'events2', '--now',
                              'r0').stdout
        self.assertIn('exists device name:r0 volume:0 minor:1000 '
                      'backing_dev:/dev/blackstor/r0 disk:UpToDate', events)
        self.assertIn('conn-name:client1 volume:0 replication:Established '
                      'peer-disk:Diskless peer-client:yes', events)
        self.assertTrue(events.endswith('exists -\n'))

        # the client's writes reach every replica; reads come back
        pattern = os.urandom(MIB + 4096)
        if self.use_fuse:
            dev = self.cluster.device_path('client1', 'r0')
            proc = subprocess.run(
                ['dd', 'of=' + dev, 'bs=64K', 'seek=16', 'oflag=direct',
                 'conv=fsync'], input=pattern, capture_output=True)
            self.assertEqual(0, proc.returncode, proc.stderr)
            with open(self.cluster.device_path('nodeb', 'r0'), 'rb') as f:
                f.seek(MIB)
                self.assertEqual(pattern, f.read(len(pattern)))
        else:
            self.cluster.write('client1', 'r0', MIB, pattern)
        for node in ('nodea', 'nodeb'):
            self.assertEqual(pattern, self.lv_bytes(node, MIB, len(pattern)))
        self.assertEqual(pattern, self.cluster.read('client1', 'r0', MIB,
                                                    len(pattern)))
        # auto-demoted after close
        self.assertEqual('Secondary', self.status('client1')['role'])

    def test_drbdmeta_generation_ids_follow_the_meta_data(self):
        self.cluster.add_node('nodea', size=256 * MIB)
        self.make_lv('nodea')
        self.write_res([A, B])
        proc = self.gi('nodea', 1)
        # like the real drbdmeta: rc 255 and not a word
        self.assertEqual((255, '', ''), (proc.returncode, proc.stdout,
                                         proc.stderr))
        proc = self.run_cmd('nodea', 'drbdmeta', str(MINOR), 'v09',
                            '/dev/blackstor/r0', 'internal', 'dump-md',
                            ok=False)
        self.assertEqual(255, proc.returncode)
        self.assertIn('No valid meta data found', proc.stderr)
        proc = self.run_cmd('nodea', 'drbdmeta', str(MINOR), 'v09',
                            '/dev/blackstor/r0', 'internal', 'get-gi',
                            ok=False)
        self.assertEqual(10, proc.returncode)
        self.assertIn('requires the --node-id option', proc.stderr)
        self.drbdadm('nodea', '--', '--max-peers=7', '--force', 'create-md',
                     'r0')
        gi = self.gi('nodea', 1).stdout.strip().split(':')
        self.assertEqual(['0000000000000004', '0000000000000000'], gi[:2])
        self.assertEqual('0', gi[4])  # not consistent
        dump = self.run_cmd('nodea', 'drbdmeta', str(MINOR), 'v09',
                            '/dev/blackstor/r0', 'internal',
                            'dump-md').stdout
        self.assertIn('max-peers 7;', dump)
        self.assertIn('current-uuid 0x0000000000000004;', dump)
        self.assertRegex(dump, r'device-uuid 0x[0-9A-F]{16};')
        # the stand-in's device size is what DRBD's internal md leaves
        self.drbdadm('nodea', 'up', 'r0')
        size = self.status('nodea')['devices'][0]['size'] * 1024
        self.assertEqual(mdlib.usable_size(LV_SIZE, 7), size)
        self.assertLess(size, LV_SIZE)
        proc = self.drbdadm('nodea', '--', '--force', 'wipe-md', 'r0',
                            ok=False)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn("Device '1000' is configured!", proc.stderr)
        self.drbdadm('nodea', 'down', 'r0')
        self.drbdadm('nodea', '--', '--force', 'wipe-md', 'r0')
        self.assertEqual(255, self.gi('nodea', 1).returncode)
        proc = self.drbdadm('nodea', 'up', 'r0', ok=False)
        self.assertNotEqual(0, proc.returncode)

    def test_down_refused_while_open_and_unknown_resource(self):
        self.build([A, B])
        dev = self.cluster.open_device('nodea', 'r0', write=True)
        try:
            self.assertEqual('Primary', self.status('nodea')['role'])
            self.assertTrue(self.status('nodea')['devices'][0]['open'])
            proc = self.drbdadm('nodea', 'down', 'r0', ok=False)
            self.assertEqual(11, proc.returncode)
            self.assertIn('r0: State change failed: (-12) Device is held '
                          'open by someone', proc.stderr)
            proc = self.drbdadm('nodea', 'secondary', 'r0', ok=False)
            self.assertIn('(-12) Device is held open by someone',
                          proc.stderr)
        finally:
            dev.close()
        self.drbdadm('nodea', 'down', 'r0')
        proc = self.run_cmd('nodea', 'drbdsetup', 'status', '--json', 'r0',
                            ok=False)
        self.assertEqual(10, proc.returncode)
        self.assertEqual('r0: No such resource\n', proc.stderr)
        self.assertEqual('Connecting', self.conn('nodeb', 'nodea')[
            'connection-state'])
        # nodea left gracefully: nodeb keeps quorum alone
        self.assertTrue(self.status('nodeb')['devices'][0]['quorum'])
        self.drbdadm('nodea', 'down', 'r0')  # down again is fine


class TestRolesAndAdjust(StandinTestCase):

    def test_two_primaries_refused_then_allowed_by_adjust(self):
        self.build([A, B])
        dev = self.cluster.open_device('nodea', 'r0', write=True)
        self.addCleanup(dev.close)
        proc = self.drbdadm('nodeb', 'primary', 'r0', ok=False)
        self.assertEqual(11, proc.returncode)
        self.assertIn('r0: State change failed: (-1) Multiple primaries not '
                      'allowed by config', proc.stderr)
        if self.use_fuse:
            with self.assertRaises(OSError) as ctx:
                open(self.cluster.device_path('nodeb', 'r0'), 'r+b')
            self.assertEqual(errno.EROFS, ctx.exception.errno)

        self.write_res([A, B], two_primaries=True)
        for node in ('nodea', 'nodeb'):
            planned = self.drbdadm(node, '-d', 'adjust', 'r0').stdout
            lines = [line for line in planned.splitlines() if line]
            self.assertEqual(1, len(lines), planned)
            self.assertTrue(lines[0].startswith('drbdsetup net-options r0 '),
                            planned)
            self.assertIn('--allow-two-primaries=yes', lines[0])
            self.drbdadm(node, 'adjust', 'r0')
        self.drbdadm('nodeb', 'primary', 'r0')
        self.assertEqual('Primary', self.conn('nodea', 'nodeb')['peer-role'])
        self.drbdadm('nodeb', 'secondary', 'r0')
        for node in ('nodea', 'nodeb'):
            self.assertEqual('', self.drbdadm(node, '-d', 'adjust',
                                              'r0').stdout.strip())

    def test_adjust_adding_a_client_issues_only_the_difference(self):
        self.build([A, B])
        self.cluster.write('nodea', 'r0', 0, b'before the client')
        self.cluster.add_node('client1', vg=None)
        self.write_res([A, B, C])
        planned = self.drbdadm('nodea', '-d', 'adjust', 'r0').stdout
        self.assertEqual(
            ['drbdsetup new-peer r0 2 --_name=client1 '
             '--shared-secret=Secret0123456789abc --cram-hmac-alg=sha256 '
             '--protocol=C',
             'drbdsetup new-path r0 2 ipv4:127.0.0.1:7789 '
             'ipv4:127.0.0.3:7789',
             'drbdsetup peer-device-options r0 2 0 --set-defaults '
             '--bitmap=no',
             'drbdsetup connect r0 2'],
            [line for line in planned.splitlines() if line])
        before = len(self.cluster.calls('nodea'))
        self.drbdadm('nodea', 'adjust', 'r0')
        issued = [(prog, argv.split()[0]) for _, prog, argv, rc
                  in self.cluster.calls('nodea')[before:]]
        self.assertEqual([('drbdsetup', 'show'), ('drbdsetup', 'new-peer'),
                          ('drbdsetup', 'new-path'),
                          ('drbdsetup', 'peer-device-options'),
                          ('drbdsetup', 'connect')], issued)
        self.drbdadm('nodeb', 'adjust', 'r0')
        self.drbdadm('client1', 'adjust', 'r0')  # not running: full up
        self.assertEqual('Connected', self.conn('client1', 'nodeb')[
            'connection-state'])
        self.assertEqual(b'before the client',
                         self.cluster.read('client1', 'r0', 0, 17))
        for node in ('nodea', 'nodeb', 'client1'):
            self.assertEqual('', self.drbdadm(node, '-d', 'adjust',
                                              'r0').stdout.strip())


class TestFaults(StandinTestCase):

    def test_quorum_loss_and_resync_after_node_returns(self):
        self.build([A, B, C])
        self.cluster.write('client1', 'r0', 0, b'A' * 8192)
        self.cluster.stop_node('nodeb')
        # 1 of 2 diskful voters, the diskless client breaks the tie
        self.assertTrue(self.status('nodea')['devices'][0]['quorum'])
        self.assertEqual('Connecting', self.conn('nodea', 'nodeb')[
            'connection-state'])
        self.cluster.write('client1', 'r0', 4096, b'B' * 4096)
        pd = self.conn('nodea', 'nodeb')['peer_devices'][0]
        self.assertEqual('DUnknown', pd['peer-disk-state'])
        self.assertEqual(4, pd['out-of-sync'])
        # cut the client off too: nobody has quorum any more
        self.cluster.cut_link('nodea', 'client1')
        self.assertFalse(self.status('nodea')['devices'][0]['quorum'])
        self.assertFalse(self.status('client1')['devices'][0]['quorum'])
        with self.assertRaises(OSError) as ctx:
            self.cluster.write('nodea', 'r0', 0, b'x', timeout=1)
        self.assertIn(ctx.exception.errno, (errno.EIO, errno.EROFS))
        proc = self.drbdadm('nodea', 'primary', 'r0', ok=False)
        self.assertIn('State change failed', proc.stderr)
        self.cluster.heal_link('nodea', 'client1')
        # nodeb reboots: resources down, data as it was; up -> resync
        self.cluster.start_node('nodeb')
        self.assertEqual(b'A' * 4096, self.lv_bytes('nodeb', 4096, 4096))
        self.drbdadm('nodeb', 'up', 'r0')
        self.assertEqual('UpToDate', self.status('nodeb')['devices'][0][
            'disk-state'])
        self.assertEqual(b'A' * 4096 + b'B' * 4096,
                         self.lv_bytes('nodeb', 0, 8192))
        self.assertEqual(0, self.conn('nodea', 'nodeb')['peer_devices'][0][
            'out-of-sync'])

    def test_suspend_io_blocks_writes_until_resumed(self):
        self.build([A, B])
        for node in ('nodea', 'nodeb'):
            self.drbdadm(node, 'suspend-io', 'r0')
        st = self.status('nodea')
        self.assertTrue(st['suspended-user'])
        with self.assertRaises(OSError):
            self.cluster.write('nodea', 'r0', 0, b'blocked', timeout=0.3)
        for node in ('nodea', 'nodeb'):
            self.drbdadm(node, 'resume-io', 'r0')
        self.cluster.write('nodea', 'r0', 0, b'flows')
        self.assertEqual(b'flows', self.lv_bytes('nodeb', 0, 5))


class TestLvm(StandinTestCase):

    def test_lvm_reports_snapshots_and_resize(self):
        self.build([A, B])
        self.cluster.write('nodea', 'r0', 0, b'version one')
        self.run_cmd('nodea', 'lvcreate', '--yes', '--snapshot',
                     '--setactivationskip', 'n', '--activate', 'y', '--name',
                     'snap1', '--addtag', 'blackstor', '--addtag',
                     'blackstor-snapshot', 'blackstor/r0')
        self.cluster.write('nodea', 'r0', 0, b'version two')
        self.assertEqual(b'version one', self.lv_bytes('nodea', 0, 11,
                                                       lv='snap1'))
        self.assertEqual(b'version two', self.lv_bytes('nodea', 0, 11))
        # snapshot of a snapshot, independent data too
        self.run_cmd('nodea', 'lvcreate', '--yes', '--snapshot', '-kn',
                     '-ay', '--name', 'clone1', 'blackstor/snap1')
        with open(self.cluster.lv_path('nodea', 'blackstor', 'snap1'),
                  'r+b') as f:
            f.write(b'changed')
        self.assertEqual(b'version one', self.lv_bytes('nodea', 0, 11,
                                                       lv='clone1'))
        # the snapshot carries the meta data: same generation as the origin
        self.assertEqual(self.gi('nodea', 1).stdout.split(':')[0],
                         self.gi('nodea', 1, lv='clone1').stdout.split(
                             ':')[0])

        out = self.run_cmd(
            'nodea', 'lvs', '--reportformat', 'json', '--units', 'b',
            '--nosuffix', '-o', 'lv_name,vg_name,lv_size,lv_attr,pool_lv,'
            'origin,data_percent,lv_tags', 'blackstor').stdout
        lvs = {lv['lv_name']: lv for lv in json.loads(out)['report'][0]['lv']}
        self.assertEqual({'thinpool', 'r0', 'snap1', 'clone1'}, set(lvs))
        self.assertTrue(lvs['thinpool']['lv_attr'].startswith('t'))
        self.assertEqual('', lvs['thinpool']['pool_lv'])
        self.assertGreater(float(lvs['thinpool']['data_percent']), 0)
        self.assertEqual('Vwi-aotz--', lvs['r0']['lv_attr'])  # DRBD has it
        self.assertEqual(str(LV_SIZE), lvs['snap1']['lv_size'])
        self.assertEqual('r0', lvs['snap1']['origin'])
        self.assertEqual('snap1', lvs['clone1']['origin'])
        self.assertEqual('blackstor,blackstor-snapshot',
                         lvs['snap1']['lv_tags'])
        vgs = json.loads(self.run_cmd(
            'nodea', 'vgs', '--reportformat', 'json', '--units', 'b',
            '--nosuffix', '-o', 'vg_name,vg_size,vg_free,vg_extent_size',
            'blackstor').stdout)['report'][0]['vg'][0]
        self.assertEqual('4194304', vgs['vg_extent_size'])

        proc = self.run_cmd('nodea', 'lvs', 'nosuchvg', ok=False)
        self.assertEqual(5, proc.returncode)
        self.assertIn('Volume group "nosuchvg" not found', proc.stderr)
        proc = self.run_cmd('nodea', 'lvremove', '--force', 'blackstor/nope',
                            ok=False)
        self.assertEqual(5, proc.returncode)
        self.assertIn('Failed to find logical volume "blackstor/nope"',
                      proc.stderr)
        proc = self.run_cmd('nodea', 'lvremove', '--force', 'blackstor/r0',
                            ok=False)
        self.assertEqual(5, proc.returncode)
        self.assertIn('in use', proc.stderr)
        self.run_cmd('nodea', 'lvremove', '--force', 'blackstor/clone1')
        self.assertFalse(os.path.exists(self.cluster.lv_path(
            'nodea', 'blackstor', 'clone1')))
        self.run_cmd('nodea', 'lvchange', '--deltag', 'blackstor-snapshot',
                     'blackstor/snap1')
        self.run_cmd('nodea', 'lvrename', 'blackstor', 'snap1', 'snap2')
        out = self.run_cmd('nodea', 'lvs', '--noheadings', '--separator',
                           '|', '-o', 'lv_name,lv_tags', 'blackstor/snap2')
        self.assertEqual('snap2|blackstor', out.stdout.strip())

        # extend: LVs first, then DRBD; the data survives
        old = self.status('nodea')['devices'][0]['size']
        for node in ('nodea', 'nodeb'):
            self.run_cmd(node, 'lvextend', '--size', '%db' % (2 * LV_SIZE),
                         'blackstor/r0')
        self.assertEqual(old, self.status('nodea')['devices'][0]['size'])
        self.drbdadm('nodea', '--', '--assume-clean', 'resize', 'r0/0')
        for node in ('nodea', 'nodeb'):
            size = self.status(node)['devices'][0]['size'] * 1024
            self.assertEqual(mdlib.usable_size(2 * LV_SIZE, 7), size)
        self.assertEqual(b'version two', self.cluster.read('nodeb', 'r0', 0,
                                                           11))
        self.cluster.write('nodeb', 'r0', 2 * LV_SIZE - 2 * MIB, b'far')
        self.assertEqual(b'far', self.lv_bytes('nodea', 2 * LV_SIZE - 2 * MIB,
                                               3))
        proc = self.run_cmd('nodea', 'lvextend', '--size',
                            '%db' % (2 * LV_SIZE), 'blackstor/r0', ok=False)
        self.assertEqual(5, proc.returncode)
        self.assertIn('matches existing size', proc.stderr)

    def test_full_thin_pool_refuses_new_volumes(self):
        self.cluster.add_node('nodea', size=8 * MIB)
        self.make_lv('nodea', 'big', size=16 * MIB)  # over-provisioning
        self.make_lv('nodea', 'small', size=MIB)     # rounded to 4 MiB
        out = self.run_cmd('nodea', 'lvs', '--reportformat', 'json',
                           '--units', 'b', '--nosuffix', '-o',
                           'lv_name,lv_size', 'blackstor/small').stdout
        self.assertEqual([{'lv_name': 'small', 'lv_size': str(4 * MIB)}],
                         json.loads(out)['report'][0]['lv'])
        with open(self.cluster.lv_path('nodea', 'blackstor', 'big'),
                  'r+b') as f:
            f.write(b'x' * 8 * MIB)
        proc = self.run_cmd('nodea', 'lvcreate', '--yes', '--type', 'thin',
                            '--virtualsize', '4m', '--thinpool', 'thinpool',
                            '--name', 'more', 'blackstor', ok=False)
        self.assertEqual(5, proc.returncode)
        self.assertIn('free space in thin pool blackstor/thinpool reached',
                      proc.stderr)
        self.run_cmd('nodea', 'lvremove', '--force', 'blackstor/big')
        self.make_lv('nodea', 'more', size=4 * MIB)


if __name__ == '__main__':
    unittest.main()
