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
"""The agent's dispatch (validation, locks, replies) at the argv boundary.

AgentTestCase and ReplicaTestCase are the bases of the tests of each
family of operations (test_ops_*.py).
"""

import fcntl
import logging
import os
import pathlib
from unittest import mock

import ddt
import fixtures

from blackstor_cinder.node import agent
from blackstor_cinder.node import config
from blackstor_cinder.node import locks
from blackstor_cinder.node import resrender
from blackstor_cinder.node import sizing
from blackstor_cinder.node import zeroing
from blackstor_cinder import protocol
from tests.unit.node import fakes
from tests.unit.node import samples
from tests.unit import base

GiB = fakes.GiB
MiB = fakes.MiB
EXTENT = 4 * MiB


class AgentTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        base = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.res_dir = base / 'drbd.d'
        self.res_dir.mkdir()
        self.conf_file = base / 'drbd.conf'
        self.conf_file.write_text('include "drbd.d/*.res";\n')
        self.conf = config.NodeConfig(
            pools=['vg0/thin'], resource_dir=str(self.res_dir),
            drbd_config=str(self.conf_file), node_name='nodea',
            lock_dir=str(base / 'locks'), command_timeout=30)
        self.fake = fakes.FakeNode('nodea', str(self.res_dir))
        self.agent = agent.Agent(self.conf, execute=self.fake)

    def call(self, op, **fields):
        reply, code = self.agent.handle(dict(op=op, **fields))
        self.assertEqual(0 if reply['ok'] else
                         protocol.EXIT_CODES[reply['error']['code']], code)
        return reply

    def ok(self, op, **fields):
        reply = self.call(op, **fields)
        self.assertTrue(reply['ok'], reply)
        return reply['result']

    def error(self, op, code, field=None, **fields):
        before = self.fake.snapshot()
        reply = self.call(op, **fields)
        self.assertFalse(reply['ok'], reply)
        self.assertEqual(code, reply['error']['code'], reply)
        self.assertEqual(field, reply['error'].get('field'), reply)
        self.assertNotIn(samples.SECRET, str(reply))
        self.assertNotIn(samples.SECRET, self.log.output)
        return reply['error'], before

    def create_req(self, name='r0', minor=1000, port=7000, size=GiB,
                   **extra):
        return dict(resource=name, pool='vg0/thin', size=size,
                    spec=samples.spec(minor, port),
                    secret=samples.SECRET, **extra)

    def changes(self):
        return [fakes.strip_config(c) for c in self.fake.changes()]

    def need(self, size=GiB, peers=7):
        return sizing.lv_size_for(size, peers, EXTENT)


class ReplicaTestCase(AgentTestCase):
    """With r0 created (and the fake's calls cleared)."""

    def setUp(self):
        super().setUp()
        self.ok('create', **self.create_req())
        self.fake.calls.clear()

    def mark_path(self):
        return pathlib.Path(self.conf.lock_dir) / 'r0.grow'

    def pending(self, start=MiB, end=3 * MiB):
        zeroing.GrowMarks(self.conf.lock_dir).write(
            'r0', zeroing.GrowMark(end, start, (start, end)))

    def resize_req(self, size=2 * GiB, spec_size=2 * GiB, **extra):
        fields = dict(resource='r0', pool='vg0/thin', size=size, lv=False,
                      drbd=True, assume_clean=True, secret=samples.SECRET,
                      spec=samples.spec(size=spec_size))
        fields.update(extra)
        return fields


@ddt.ddt
class BadInputTestCase(AgentTestCase):

    @ddt.data(
        ('resource', 'a/b'), ('resource', '..'), ('resource', 'a b'),
        ('resource', 'a;b'), ('resource', '$(reboot)'), ('resource', ''),
        ('resource', '../../etc/passwd'), ('resource', '-rf'),
        ('size', 0), ('size', -1), ('size', '1'), ('size', 1.5),
        ('size', True), ('size', None),
        ('pool', 'vg0'), ('pool', 'vg0/thin/x'), ('pool', 'vg0/../x'),
        ('max_peers', 0), ('max_peers', 32),
        ('secret', 'short'), ('secret', 'has space in it 12345'),
        ('spec', ''), ('spec', None), ('spec', []),
        ('res_text', samples.res_text()), ('res_text', ''))
    @ddt.unpack
    def test_bad_field(self, field, value):
        req = self.create_req()
        req[field] = value
        err, before = self.error('create', protocol.E_INVALID, field, **req)
        self.assertEqual([], self.fake.calls)
        self.assertEqual(before, self.fake.snapshot())
        if field == 'secret':
            self.assertNotIn(value, err['message'])

    @ddt.data(
        # issue 13: what res_text let through, and none a spec can say
        ({'handlers': {'before-resync-target': '/bin/sh -c id'}},
         'spec.handlers'),
        ({'startup': {'wfc-timeout': 1}}, 'spec.startup'),
        ({'proxy': {}}, 'spec.proxy'),
        ({'include': '/etc/shadow'}, 'spec.include'),
        ({'volumes': [{'volume': 1, 'disk': '/dev/vg0/other'}]},
         'spec.volumes'),
        ({'net': {'no-such-option': 1}}, 'spec.net.no-such-option'),
        ({'net': {'max-buffers': 8000, 'shared-secret': 'x'}},
         'spec.net.shared-secret'),
        ({'disk': {'on-io-error': 'call-local-io-error'}},
         'spec.disk.on-io-error'),
        ({'net': {'verify-alg': 'crc32c; } handlers { x "id"; '}},
         'spec.net.verify-alg'),
        ({'net': {'max-buffers': 31}}, 'spec.net.max-buffers'),
        ({'net': {'max-buffers': '8000'}}, 'spec.net.max-buffers'))
    @ddt.unpack
    def test_spec_outside_the_schema_changes_nothing(self, changes, field):
        req = self.create_req()
        req['spec'].update(changes)
        _, before = self.error('create', protocol.E_INVALID, field, **req)
        self.assertEqual([], self.fake.calls)
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], list(self.res_dir.iterdir()))

    @ddt.data(('volume', {'number': 1, 'disk': '/dev/vg0/other'}),
              ('meta_disk', '/dev/vg0/md'), ('disk', '/dev/sda'))
    @ddt.unpack
    def test_no_second_volume_or_other_disk_in_a_host(self, key, value):
        req = self.create_req()
        req['spec']['hosts'][0][key] = value
        self.error('create', protocol.E_INVALID, f'spec.hosts[0].{key}',
                   **req)
        self.assertEqual([], self.fake.calls)

    def test_written_file_is_what_the_renderer_makes(self):
        self.ok('create', **self.create_req())
        text = (self.res_dir / 'r0.res').read_text()
        self.assertEqual(resrender.render('r0', samples.spec()).replace(
            protocol.SECRET_PLACEHOLDER, samples.SECRET), text)
        for word in ('handlers', 'include', 'startup', 'volume 1',
                     'meta-disk /', 'proxy'):
            self.assertNotIn(word, text)

    def test_unconfigured_pool(self):
        req = self.create_req()
        req['pool'] = 'vg1/thin'
        err, _ = self.error('create', protocol.E_INVALID, 'pool', **req)
        self.assertIn('vg0/thin', err['message'])
        self.assertEqual([], self.fake.calls)

    def test_unknown_op(self):
        err, _ = self.error('format-disk', protocol.E_INVALID, 'op')
        self.assertIn('inventory', err['message'])

    def test_not_an_object(self):
        for request in ([], 'inventory', None, 1):
            reply, code = self.agent.handle(request)
            self.assertEqual(protocol.E_INVALID, reply['error']['code'])
            self.assertEqual(2, code)

    def test_unknown_field(self):
        self.error('inventory', protocol.E_INVALID, 'force', force=True)

    def test_node_id_32(self):
        req = self.create_req()
        req['spec'] = samples.spec(
            hosts=[('nodea', 0, '10.0.0.1', 'vg0'),
                   ('nodeb', 32, '10.0.0.2', None)])
        # nodeb's node-id is refused by the schema before anything
        # exists.
        err, before = self.error('create', protocol.E_INVALID,
                                 'spec.hosts[1].node_id', **req)
        self.assertIn('32', err['message'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], self.fake.changes())

    def test_my_node_id_32(self):
        req = self.create_req()
        req['spec'] = samples.spec(
            hosts=[('nodea', 32, '10.0.0.1', 'vg0'),
                   ('nodeb', 1, '10.0.0.2', None)])
        self.error('create', protocol.E_INVALID, 'spec.hosts[0].node_id',
                   **req)
        self.assertEqual([], self.fake.calls)

    def test_command_failure_is_reported(self):
        self.fake.fail('lvs', rc=3, stderr='  Device mapper is gone')
        err, _ = self.error('create', protocol.E_FAILED, None,
                            **self.create_req())
        self.assertIn('Device mapper is gone', err['message'])
        self.assertEqual(3, err['details']['exit_code'])

    def test_unexpected_exception_is_internal(self):
        with mock.patch.object(self.agent.lvm, 'thin_pool',
                               side_effect=KeyError('boom')):
            err, _ = self.error('create', protocol.E_INTERNAL, None,
                                **self.create_req())
        self.assertIn('KeyError', err['message'])

    def test_busy(self):
        self.conf.lock_timeout = 0
        os.makedirs(self.conf.lock_dir)
        path = os.path.join(self.conf.lock_dir, 'r0.lock')
        fd = os.open(path, os.O_RDWR | os.O_CREAT)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.error('create', protocol.E_BUSY, None, **self.create_req())
        self.assertEqual([], self.fake.calls)

    def test_no_lock_file_outlives_its_request(self):
        # One lock file per name ever asked for, refused requests too, was
        # left behind; the holder removes its file now.
        self.ok('create', **self.create_req())
        self.error('resize', protocol.E_NOT_FOUND, 'resource',
                   resource='never-made', pool='vg0/thin', size=GiB)
        self.error('snapshot-delete', protocol.E_INVALID, 'pool',
                   pool='vg9/thin', snapshot='s1')
        self.ok('delete', resource='r0')
        self.assertEqual([], os.listdir(self.conf.lock_dir))

    def test_lock_file_removed_when_the_op_raises(self):
        with mock.patch.object(self.agent.lvm, 'thin_pool',
                               side_effect=KeyError('boom')):
            self.error('create', protocol.E_INTERNAL, None,
                       **self.create_req())
        self.assertEqual([], os.listdir(self.conf.lock_dir))

    def test_waiter_on_a_removed_lock_file_locks_the_new_one(self):
        # A waiter that opened the file before the holder removed it gets
        # the lock of an unlinked file: it must not run on that one while
        # a newcomer holds the file now at the path.
        path = os.path.join(self.conf.lock_dir, 'r0.lock')
        os.makedirs(self.conf.lock_dir)
        stale = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.addCleanup(os.close, stale)
        os.unlink(path)
        newcomer = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.addCleanup(os.close, newcomer)
        fcntl.flock(newcomer, fcntl.LOCK_EX)
        real_open = os.open
        opened = []

        def open_stale_first(name, *args, **kwargs):
            if name == path and not opened:
                opened.append(name)
                return os.dup(stale)
            return real_open(name, *args, **kwargs)

        self.conf.lock_timeout = 0.5
        with mock.patch.object(locks.os, 'open', open_stale_first):
            self.error('create', protocol.E_BUSY, None, **self.create_req())
        self.assertEqual([path], opened)
        self.assertEqual([], self.fake.calls)
        self.assertTrue(os.path.exists(path))   # the newcomer's, kept

    def test_every_op_has_help(self):
        self.assertEqual(set(protocol.OPS), set(agent.OP_HELP))
        for op in protocol.OPS:
            self.assertTrue(callable(agent.HANDLERS[op]), op)

    def test_each_op_has_one_family(self):
        ops = [op for family in agent.FAMILIES for op in family.OPS]
        self.assertEqual(sorted(protocol.OPS), sorted(ops))


class LvmCallsTestCase(AgentTestCase):
    """How often each operation asks LVM (1-2 s each on a small node)."""

    def setUp(self):
        super().setUp()
        self.fake.calls.clear()

    def assertReads(self, lvs, vgs, op, lvmconfig=0, **fields):
        self.fake.calls.clear()
        result = self.ok(op, **fields)
        self.assertEqual({'lvs': lvs, 'vgs': vgs, 'lvmconfig': lvmconfig},
                         {'lvs': self.fake.count('lvs'),
                          'vgs': self.fake.count('vgs'),
                          'lvmconfig': self.fake.count('lvmconfig')},
                         [c[0] for c in self.fake.calls])
        return result

    def resize(self, **extra):
        return dict(resource='r0', pool='vg0/thin', size=2 * GiB, **extra)

    def test_create(self):
        self.assertTrue(self.assertReads(1, 1, 'create',
                                         **self.create_req())['lv_created'])
        # Again: the LV exposes the size already, no extent needed.
        self.assertFalse(self.assertReads(
            1, 0, 'create', **self.create_req())['lv_created'])

    def test_create_grows_a_small_lv(self):
        self.fake.add_lv('vg0', 'r0', 256 * MiB)
        self.assertReads(1, 1, 'create', **self.create_req())
        self.assertEqual(self.need(), self.fake.lvs[('vg0', 'r0')]['size'])

    def test_delete(self):
        self.ok('create', **self.create_req())
        self.assertTrue(self.assertReads(1, 0, 'delete', resource='r0',
                                         pool='vg0/thin')['lv_removed'])
        self.assertFalse(self.assertReads(1, 0, 'delete', resource='r0',
                                          pool='vg0/thin')['lv_removed'])

    def test_snapshots(self):
        self.ok('create', **self.create_req())
        snap = dict(resource='r0', pool='vg0/thin', snapshot='s1')
        self.assertTrue(self.assertReads(1, 0, 'snapshot-create',
                                         **snap)['created'])
        self.assertFalse(self.assertReads(1, 0, 'snapshot-create',
                                          **snap)['created'])
        # A clone is read again once made: LVM may have copied the
        # snapshot tag onto it.
        clone = self.create_req('r1', 1001, 7001, snapshot='s1')
        self.assertReads(2, 0, 'create-from-snapshot', **clone)
        self.assertReads(1, 0, 'create-from-snapshot', **clone)
        self.assertReads(2, 0, 'snapshot-rollback', **snap)
        self.assertTrue(self.assertReads(1, 0, 'snapshot-delete',
                                         pool='vg0/thin',
                                         snapshot='s1')['removed'])

    def test_resize(self):
        self.ok('create', **self.create_req())
        self.assertTrue(self.assertReads(1, 1, 'resize',
                                         **self.resize())['lv_grown'])
        self.assertFalse(self.assertReads(1, 0, 'resize',
                                          **self.resize())['lv_grown'])
        self.assertReads(1, 0, 'resize', **self.resize(lv=False,
                                                       drbd=True))

    def test_adjust(self):
        self.ok('create', **self.create_req())
        req = self.create_req()
        del req['pool'], req['size']
        self.assertReads(1, 0, 'adjust', **req)

    def test_status(self):
        self.ok('create', **self.create_req())
        self.assertTrue(self.assertReads(0, 0, 'status',
                                         resource='r0')['exists'])

    def test_inventory(self):
        self.ok('create', **self.create_req())
        self.ok('snapshot-create', resource='r0', pool='vg0/thin',
                snapshot='s1')
        result = self.assertReads(1, 1, 'inventory', lvmconfig=1)
        self.assertEqual(['r0'], [v['name'] for v in result['volumes']])
        self.assertEqual(['s1'], [s['name'] for s in result['snapshots']])

    def test_inventory_reads_each_vg_once(self):
        self.fake.vgs['vg1'] = dict(self.fake.vgs['vg0'])
        for vg, thin in (('vg0', 'thin2'), ('vg1', 'thin')):
            self.fake.lvs[(vg, thin)] = dict(self.fake.lvs[('vg0', 'thin')])
        self.conf.pools = ['vg0/thin', 'vg0/thin2', 'vg1/thin']
        self.agent = agent.Agent(self.conf, execute=self.fake)
        self.fake.add_lv('vg0', 'r0', GiB, pool='thin2')
        result = self.assertReads(2, 2, 'inventory', lvmconfig=1)
        self.assertEqual(['vg0/thin', 'vg0/thin2', 'vg1/thin'],
                         [p['name'] for p in result['pools']])
        self.assertEqual([('r0', 'vg0/thin2')],
                         [(v['name'], v['pool']) for v in result['volumes']])

    def test_reports_are_not_kept_between_operations(self):
        self.ok('create', **self.create_req())
        self.fake.lvs.pop(('vg0', 'r0'))
        self.assertTrue(self.ok('create', **self.create_req())['lv_created'])
