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
"""The agent's operations against a fake node at the argv boundary."""

import dataclasses
import errno
import fcntl
import logging
import os
import pathlib
import time
from unittest import mock

import ddt
import fixtures

from blackstor_cinder.node import client
from blackstor_cinder.node import agent
from blackstor_cinder.node import config
from blackstor_cinder.node import locks
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import resrender
from blackstor_cinder.node import restemp
from blackstor_cinder.node import sizing
from blackstor_cinder.node import undo
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


class CreateTestCase(AgentTestCase):

    def test_create(self):
        result = self.ok('create', **self.create_req())
        need = self.need()
        self.assertEqual(
            [['lvcreate', '--yes', '--type', 'thin', '--virtualsize',
              f'{need}b', '--thinpool', 'thin', '--name', 'r0', '--addtag',
              'blackstor', 'vg0'],
             ['drbdadm', '--', '--max-peers=7', '--force', 'create-md',
              'r0'],
             ['drbdadm', 'up', 'r0']], self.changes())
        self.assertEqual(need, self.fake.lvs[('vg0', 'r0')]['size'])
        self.assertGreaterEqual(sizing.usable_size_of(need, 7), GiB)
        self.assertEqual({'resource': 'r0', 'lv': 'vg0/r0', 'lv_size': need,
                          'usable_size': sizing.usable_size_of(need, 7),
                          'lv_created': True, 'res_created': True,
                          'res_changed': True, 'md_created': True,
                          'brought_up': True, 'drbd': 'up'}, result)
        res = (self.res_dir / 'r0.res').read_text()
        self.assertIn(samples.SECRET, res)
        self.assertNotIn(samples.SECRET, self.log.output)
        self.assertIn('r0', self.fake.running)
        # The .res was checked by drbdadm as nodea before it was written.
        validated = [c for c in self.fake.calls if 'sh-ll-dev' in c]
        self.assertEqual(1, len(validated))
        for argv, env in zip(self.fake.calls, self.fake.envs):
            if argv[0] == 'drbdadm':
                self.assertEqual('nodea', env['__DRBD_NODE__'])

    def test_create_with_device_size(self):
        req = self.create_req()
        req['spec'] = samples.spec(size=GiB)
        self.ok('create', **req)
        self.assertIn('size 1048576k;',
                      (self.res_dir / 'r0.res').read_text())
        self.assertEqual(self.need(), self.fake.lvs[('vg0', 'r0')]['size'])

    def test_max_peers(self):
        self.ok('create', **self.create_req(max_peers=2, size=100 * GiB))
        self.assertIn(['drbdadm', '--', '--max-peers=2', '--force',
                       'create-md', 'r0'], self.changes())
        self.assertEqual(sizing.lv_size_for(100 * GiB, 2, EXTENT),
                         self.fake.lvs[('vg0', 'r0')]['size'])

    def test_twice_is_noop(self):
        self.ok('create', **self.create_req())
        state = self.fake.snapshot()
        self.fake.calls.clear()
        result = self.ok('create', **self.create_req())
        self.assertEqual([], self.changes())
        self.assertEqual(state, self.fake.snapshot())
        self.assertFalse(result['lv_created'])
        self.assertFalse(result['md_created'])
        self.assertFalse(result['res_created'])
        self.assertFalse(result['brought_up'])
        self.assertEqual('unchanged', result['drbd'])

    def test_create_id_tags_the_lv(self):
        create_id = 'a' * 32
        self.ok('create', **self.create_req(create_id=create_id))
        self.assertEqual(['blackstor', f'blackstor-create-{create_id}'],
                         self.fake.lvs[('vg0', 'r0')]['tags'])
        self.assertIn('--addtag', self.changes()[0])
        # the inventory reports it (a heal finds the replica it added)
        volumes = self.ok('inventory')['volumes']
        self.assertEqual([create_id], next(
            v['create_ids'] for v in volumes if v['name'] == 'r0'))

    def test_bad_create_id(self):
        for value in ('A' * 32, 'a' * 31, 'a' * 33, 'g' * 32, 12, None):
            self.error('create', protocol.E_INVALID, 'create_id',
                       **self.create_req(create_id=value))
        self.assertEqual([], self.fake.calls)

    def test_existing_lv_of_a_used_replica_refused(self):
        self.fake.add_lv('vg0', 'r0', 2 * GiB)
        self.fake.metadata['/dev/vg0/r0'] = 7
        self.fake.uuids['/dev/vg0/r0'] = 0x9F3C00A1B2C3D4E4
        err, before = self.error('create', protocol.E_CONFLICT, 'resource',
                                 **self.create_req())
        self.assertIn('vg0/r0', err['message'])
        self.assertIn('9F3C00A1B2C3D4E4', err['message'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], self.changes())

    def test_just_created_metadata_reused(self):
        # The primary bit (bit 0) does not make a UUID "used".
        self.fake.add_lv('vg0', 'r0', 2 * GiB)
        self.fake.metadata['/dev/vg0/r0'] = 7
        self.fake.uuids['/dev/vg0/r0'] = 5
        self.assertFalse(self.ok('create', **self.create_req())[
            'md_created'])

    def test_rerun_while_running_after_first_write(self):
        self.ok('create', **self.create_req())
        self.ok('new-current-uuid', resource='r0')
        self.fake.calls.clear()
        result = self.ok('create', **self.create_req())
        self.assertEqual('unchanged', result['drbd'])
        self.assertEqual([], self.changes())

    def _converges_after_crash(self, *words, after=False):
        clean = AgentTestCase('run')
        clean.setUp()
        clean.ok('create', **clean.create_req())
        expected = clean.fake.snapshot()
        clean.doCleanups()

        self.fake.crash(*words, after=after)
        with mock.patch.object(undo.Undo, 'run', return_value=[]):
            self.assertRaises(fakes.Crash, self.agent.handle,
                              dict(op='create', **self.create_req()))
        self.ok('create', **self.create_req())
        self.assertEqual(expected, self.fake.snapshot())
        # Never a second create-md on an LV that has metadata.
        create_mds = [c for c in self.fake.calls if 'create-md' in c]
        self.assertLessEqual(len(create_mds), 2)
        if after and 'create-md' in words:
            self.assertEqual(1, len(create_mds))

    def test_crash_after_lvcreate(self):
        self._converges_after_crash('lvcreate', after=True)

    def test_crash_before_create_md(self):
        self._converges_after_crash('create-md')

    def test_crash_after_create_md(self):
        self._converges_after_crash('create-md', after=True)

    def test_crash_before_up(self):
        self._converges_after_crash('up')

    def test_crash_after_up(self):
        self._converges_after_crash('up', after=True)

    def _rolled_back(self, *words):
        before = self.fake.snapshot()
        self.fake.fail(*words, rc=10, stderr='boom')
        reply = self.call('create', **self.create_req())
        self.assertFalse(reply['ok'])
        self.assertEqual(protocol.E_FAILED, reply['error']['code'])
        self.assertIn('boom', reply['error']['message'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], list(self.res_dir.iterdir()))
        return reply

    def test_failing_up_leaves_nothing(self):
        self._rolled_back('drbdadm', 'up')
        self.assertIn(['drbdadm', 'down', 'r0'], self.changes())
        self.assertIn(['lvremove', '--force', 'vg0/r0'], self.changes())

    def test_failing_create_md_leaves_nothing(self):
        self._rolled_back('create-md')

    def test_failing_lvcreate_leaves_no_res(self):
        self._rolled_back('lvcreate')

    def test_failure_restores_changed_res(self):
        self.ok('create', **self.create_req())
        self.fake.running.clear()
        old = (self.res_dir / 'r0.res').read_text()
        self.fake.fail('drbdadm', 'up')
        req = self.create_req()
        req['spec'] = samples.spec(net={'timeout': 90})
        self.assertFalse(self.call('create', **req)['ok'])
        self.assertEqual(old, (self.res_dir / 'r0.res').read_text())
        self.assertEqual(0o600, (self.res_dir / 'r0.res').stat().st_mode
                         & 0o777)
        self.assertEqual(['r0.res'], os.listdir(self.res_dir))
        self.assertIn(('vg0', 'r0'), self.fake.lvs)

    def test_changed_res_while_up_adjusts(self):
        self.ok('create', **self.create_req())
        self.fake.calls.clear()
        req = self.create_req()
        req['spec'] = samples.spec(net={'timeout': 90})
        self.assertEqual('adjusted', self.ok('create', **req)['drbd'])
        self.assertEqual([['drbdadm', 'adjust', 'r0']], self.changes())

    def test_existing_smaller_lv_without_metadata_grows(self):
        self.fake.add_lv('vg0', 'r0', GiB)
        self.ok('create', **self.create_req())
        self.assertEqual(['lvextend', '--size', f'{self.need()}b',
                          'vg0/r0'], self.changes()[0])

    def test_existing_smaller_lv_with_metadata_refused(self):
        self.fake.add_lv('vg0', 'r0', GiB)
        self.fake.metadata['/dev/vg0/r0'] = 7
        _, before = self.error('create', protocol.E_CONFLICT, 'size',
                               **self.create_req())
        self.assertEqual(before, self.fake.snapshot())

    def test_existing_larger_lv_with_metadata_reused(self):
        self.fake.add_lv('vg0', 'r0', 2 * GiB)
        self.fake.metadata['/dev/vg0/r0'] = 7
        self.ok('create', **self.create_req())
        self.assertEqual([['drbdadm', 'up', 'r0']], self.changes())

    def test_foreign_lv_refused(self):
        self.fake.add_lv('vg0', 'r0', 2 * GiB, tags=())
        _, before = self.error('create', protocol.E_CONFLICT, 'resource',
                               **self.create_req())
        self.assertEqual(before, self.fake.snapshot())

    def test_minor_clash_refused(self):
        self.ok('create', **self.create_req())
        err, before = self.error('create', protocol.E_CONFLICT, 'minor',
                                 **self.create_req('r1', 1000, 7001))
        self.assertEqual(before, self.fake.snapshot())
        self.assertNotIn(('vg0', 'r1'), self.fake.lvs)

    def test_port_clash_refused(self):
        self.ok('create', **self.create_req())
        _, before = self.error('create', protocol.E_CONFLICT, 'port',
                               **self.create_req('r1', 1001, 7000))
        self.assertEqual(before, self.fake.snapshot())

    def test_missing_vg(self):
        self.fake.vgs.clear()
        err, before = self.error('create', protocol.E_MISSING, 'pool',
                                 **self.create_req())
        self.assertIn('vg0', err['message'])

    def test_missing_thin_pool(self):
        del self.fake.lvs[('vg0', 'thin')]
        err, _ = self.error('create', protocol.E_MISSING, 'pool',
                            **self.create_req())
        self.assertIn('vg0/thin', err['message'])

    def test_diskless_spec_refused(self):
        req = self.create_req()
        req['spec'] = samples.spec(
            hosts=[('nodeb', 0, '10.0.0.1', 'vg0'),
                   ('nodea', 1, '10.0.0.2', None)])
        self.error('create', protocol.E_INVALID, 'spec.hosts[1]', **req)

    def test_other_volume_group_refused(self):
        req = self.create_req()
        req['spec'] = samples.spec(hosts=[('nodea', 0, '10.0.0.1', 'vg1')])
        self.error('create', protocol.E_INVALID, 'spec.hosts[0]', **req)
        self.assertEqual([], self.fake.calls)

    def test_no_host_for_this_node_refused(self):
        req = self.create_req()
        req['spec'] = samples.spec(hosts=[('nodeb', 0, '10.0.0.1', 'vg0')])
        self.error('create', protocol.E_INVALID, 'spec.hosts', **req)
        self.assertEqual([], self.fake.calls)

    def test_more_hosts_than_max_peers_refused(self):
        req = self.create_req(max_peers=1)
        req['spec'] = samples.spec(hosts=[
            ('nodea', 0, '10.0.0.1', 'vg0'), ('nodeb', 1, '10.0.0.2', 'vg0'),
            ('nodec', 2, '10.0.0.3', None)])
        self.error('create', protocol.E_INVALID, 'spec.hosts', **req)
        self.assertEqual([], self.fake.calls)


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


class SnapshotTestCase(AgentTestCase):

    def setUp(self):
        super().setUp()
        self.ok('create', **self.create_req())
        self.fake.calls.clear()

    def snap_req(self, **extra):
        return dict(resource='r0', pool='vg0/thin', snapshot='s1', **extra)

    def test_create(self):
        result = self.ok('snapshot-create', **self.snap_req())
        self.assertEqual(
            [['lvcreate', '--yes', '--snapshot', '--setactivationskip', 'n',
              '--activate', 'y', '--name', 's1', '--addtag', 'blackstor',
              '--addtag', 'blackstor-snapshot', 'vg0/r0']], self.changes())
        self.assertEqual({'snapshot': 's1', 'pool': 'vg0/thin',
                          'size_bytes': self.need(), 'origin': 'r0',
                          'created': True}, result)
        self.fake.calls.clear()
        self.assertFalse(self.ok('snapshot-create',
                                 **self.snap_req())['created'])
        self.assertEqual([], self.changes())

    def test_create_conflicts(self):
        self.fake.add_lv('vg0', 's1', GiB,
                         tags=('blackstor', 'blackstor-snapshot'),
                         origin='other')
        self.error('snapshot-create', protocol.E_CONFLICT, 'snapshot',
                   **self.snap_req())
        self.fake.lvs.pop(('vg0', 's1'))
        self.fake.add_lv('vg0', 's1', GiB)  # a volume, not a snapshot
        self.error('snapshot-create', protocol.E_CONFLICT, 'snapshot',
                   **self.snap_req())

    def test_create_without_volume(self):
        self.error('snapshot-create', protocol.E_NOT_FOUND, 'resource',
                   **dict(self.snap_req(), resource='r9'))

    def test_delete(self):
        self.ok('snapshot-create', **self.snap_req())
        self.fake.calls.clear()
        req = dict(pool='vg0/thin', snapshot='s1')
        self.assertTrue(self.ok('snapshot-delete', **req)['removed'])
        self.assertEqual([['lvremove', '--force', 'vg0/s1']],
                         self.changes())
        self.assertFalse(self.ok('snapshot-delete', **req)['removed'])

    def test_delete_refuses_a_volume(self):
        self.error('snapshot-delete', protocol.E_CONFLICT, 'snapshot',
                   pool='vg0/thin', snapshot='r0')
        self.assertIn(('vg0', 'r0'), self.fake.lvs)

    def test_rollback(self):
        self.ok('snapshot-create', **self.snap_req())
        self.fake.calls.clear()
        result = self.ok('snapshot-rollback', **self.snap_req())
        self.assertEqual(
            [['drbdadm', 'down', 'r0'],
             ['lvcreate', '--yes', '--snapshot', '--setactivationskip', 'n',
              '--activate', 'y', '--name', 'r0.rollback', '--addtag',
              'blackstor', 'vg0/s1'],
             ['lvremove', '--force', 'vg0/r0'],
             ['lvrename', 'vg0', 'r0.rollback', 'r0']], self.changes())
        lv = self.fake.lvs[('vg0', 'r0')]
        self.assertEqual('s1', lv['origin'])
        self.assertEqual(['blackstor'], lv['tags'])
        self.assertNotIn('r0', self.fake.running)
        self.assertTrue(result['down'])
        self.assertIn('/dev/vg0/r0', self.fake.metadata)

    def phase(self, phase):
        return self.ok('snapshot-rollback', phase=phase, **self.snap_req())

    def names(self):
        return sorted(n for (v, n) in self.fake.lvs if v == 'vg0'
                      and n.startswith('r0'))

    def test_two_phase_revert_keeps_the_old_lv_until_commit(self):
        self.ok('snapshot-create', **self.snap_req())
        old = dict(self.fake.lvs[('vg0', 'r0')])
        self.phase('prepare')
        # prepare touches nothing live
        self.assertIn('r0', self.fake.running)
        self.assertEqual(['r0', 'r0.rollback'], self.names())
        self.assertEqual(old, self.fake.lvs[('vg0', 'r0')])
        self.phase('prepare')                   # idempotent
        self.assertEqual(['r0', 'r0.rollback'], self.names())
        self.assertTrue(self.phase('swap')['swapped'])
        self.assertNotIn('r0', self.fake.running)
        self.assertEqual(['r0', 'r0.previous'], self.names())
        self.assertEqual('s1', self.fake.lvs[('vg0', 'r0')]['origin'])
        self.assertEqual(old, self.fake.lvs[('vg0', 'r0.previous')])
        self.phase('swap')                      # a rerun changes nothing
        self.assertEqual(['r0', 'r0.previous'], self.names())
        self.assertTrue(self.phase('commit')['previous_removed'])
        self.assertEqual(['r0'], self.names())
        self.phase('commit')
        self.assertEqual(['r0'], self.names())

    def test_undo_after_swap_brings_the_old_lv_back(self):
        self.ok('snapshot-create', **self.snap_req())
        old = dict(self.fake.lvs[('vg0', 'r0')])
        self.phase('prepare')
        self.phase('swap')
        self.assertTrue(self.phase('undo')['restored'])
        self.assertEqual(['r0'], self.names())
        self.assertEqual(old, self.fake.lvs[('vg0', 'r0')])
        self.phase('undo')                      # idempotent
        self.assertEqual(old, self.fake.lvs[('vg0', 'r0')])

    def test_undo_after_prepare_only_removes_the_rollback_lv(self):
        self.ok('snapshot-create', **self.snap_req())
        self.phase('prepare')
        self.fake.calls.clear()
        self.assertFalse(self.phase('undo')['restored'])
        self.assertEqual(['r0'], self.names())
        self.assertIn('r0', self.fake.running)
        self.assertNotIn(['drbdadm', 'down', 'r0'], self.changes())

    def test_delete_removes_what_an_interrupted_revert_left(self):
        self.ok('snapshot-create', **self.snap_req())
        self.phase('prepare')
        self.phase('swap')
        result = self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertEqual(['r0.previous'], result['revert_lvs_removed'])
        self.assertEqual([], self.names())

    def test_delete_after_prepare_removes_the_rollback_lv(self):
        self.ok('snapshot-create', **self.snap_req())
        self.phase('prepare')
        result = self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertEqual(['r0.rollback'], result['revert_lvs_removed'])
        self.assertEqual([], self.names())
        self.assertIn(('vg0', 's1'), self.fake.lvs)   # the snapshot stays

    def test_commit_refused_before_swap(self):
        self.ok('snapshot-create', **self.snap_req())
        self.phase('prepare')
        self.error('snapshot-rollback', protocol.E_CONFLICT, 'resource',
                   phase='commit', **self.snap_req())

    def test_unknown_phase_refused(self):
        self.error('snapshot-rollback', protocol.E_INVALID, 'phase',
                   phase='later', **self.snap_req())

    def _crash_rollback(self, *words, after=False):
        self.ok('snapshot-create', **self.snap_req())
        self.fake.crash(*words, after=after)
        self.assertRaises(fakes.Crash, self.agent.handle,
                          dict(op='snapshot-rollback', **self.snap_req()))
        self.assertTrue(('vg0', 'r0') in self.fake.lvs
                        or ('vg0', 'r0.rollback') in self.fake.lvs)
        self.ok('snapshot-rollback', **self.snap_req())
        self.assertEqual('s1', self.fake.lvs[('vg0', 'r0')]['origin'])
        self.assertNotIn(('vg0', 'r0.rollback'), self.fake.lvs)

    def test_rollback_crash_after_old_removed(self):
        self._crash_rollback('lvremove', after=True)
        self.assertEqual(['lvrename', 'vg0', 'r0.rollback', 'r0'],
                         self.changes()[-1])

    def test_rollback_crash_after_temp_created(self):
        self._crash_rollback('lvcreate', 'r0.rollback', after=True)

    def test_rollback_missing_snapshot(self):
        self.error('snapshot-rollback', protocol.E_NOT_FOUND, 'snapshot',
                   **self.snap_req())
        self.assertIn('r0', self.fake.running)

    def test_rollback_size_beyond_snapshot(self):
        self.ok('snapshot-create', **self.snap_req())
        self.error('snapshot-rollback', protocol.E_INVALID, 'size',
                   **self.snap_req(size=2 * GiB))
        self.ok('snapshot-rollback', **self.snap_req(size=GiB))

    def from_snap_req(self, name='r1', size=GiB):
        return dict(resource=name, pool='vg0/thin', snapshot='s1',
                    size=size, spec=samples.spec(1001, 7001),
                    secret=samples.SECRET)

    def test_create_from_snapshot(self):
        self.ok('snapshot-create', **self.snap_req())
        self.fake.calls.clear()
        result = self.ok('create-from-snapshot', **self.from_snap_req())
        self.assertEqual(
            [['lvcreate', '--yes', '--snapshot', '--setactivationskip', 'n',
              '--activate', 'y', '--name', 'r1', '--addtag', 'blackstor',
              'vg0/s1'],
             ['drbdadm', 'up', 'r1']], self.changes())
        self.assertEqual(['blackstor'], self.fake.lvs[('vg0', 'r1')]['tags'])
        self.assertTrue(result['lv_created'])
        self.fake.calls.clear()
        self.ok('create-from-snapshot', **self.from_snap_req())
        self.assertEqual([], self.changes())

    def test_create_from_snapshot_drops_inherited_tag(self):
        self.ok('snapshot-create', **self.snap_req())
        real = self.fake._lvcreate

        def inherit(args, kwargs):
            rc, out, err = real(args, kwargs)
            self.fake.lvs[('vg0', 'r1')]['tags'].append(
                'blackstor-snapshot')
            return rc, out, err
        self.fake._lvcreate = inherit
        self.ok('create-from-snapshot', **self.from_snap_req())
        self.assertIn(['lvchange', '--deltag', 'blackstor-snapshot',
                       'vg0/r1'], self.changes())
        self.assertEqual(['blackstor'], self.fake.lvs[('vg0', 'r1')]['tags'])

    def test_create_from_snapshot_failure_leaves_nothing(self):
        self.ok('snapshot-create', **self.snap_req())
        before = self.fake.snapshot()
        self.fake.fail('drbdadm', 'up', 'r1')
        self.assertFalse(self.call('create-from-snapshot',
                                   **self.from_snap_req())['ok'])
        self.assertEqual(before, self.fake.snapshot())

    def test_create_from_missing_snapshot(self):
        self.error('create-from-snapshot', protocol.E_NOT_FOUND, 'snapshot',
                   **self.from_snap_req())

    def test_create_from_snapshot_too_large(self):
        self.ok('snapshot-create', **self.snap_req())
        self.error('create-from-snapshot', protocol.E_INVALID, 'size',
                   **self.from_snap_req(size=2 * GiB))


class RollbackDeleteTestCase(AgentTestCase):
    """delete with create_id: only what that create made goes."""

    ID = '0123456789abcdef0123456789abcdef'

    def test_removes_what_the_create_made(self):
        self.ok('create', **self.create_req(create_id=self.ID))
        self.fake.calls.clear()
        result = self.ok('delete', resource='r0', pool='vg0/thin',
                         create_id=self.ID)
        self.assertEqual({'resource': 'r0', 'down': True,
                          'lv_removed': True, 'res_removed': True,
                          'revert_lvs_removed': [],
                          'kept': False, 'reason': None}, result)
        self.assertNotIn(('vg0', 'r0'), self.fake.lvs)
        self.assertEqual([], list(self.res_dir.iterdir()))

    def test_finds_the_pool_itself(self):
        self.ok('create', **self.create_req(create_id=self.ID))
        self.agent.store.remove('r0')
        self.fake.running.clear()
        self.assertTrue(self.ok('delete', resource='r0',
                                create_id=self.ID)['lv_removed'])
        self.assertNotIn(('vg0', 'r0'), self.fake.lvs)

    def test_keeps_what_another_create_made(self):
        # This node's create was refused (the LV was there); the reply
        # was lost and the controller rolls back: nothing may change.
        self.ok('create', **self.create_req(create_id='f' * 32))
        self.fake.calls.clear()
        before = self.fake.snapshot()
        result = self.ok('delete', resource='r0', pool='vg0/thin',
                         create_id=self.ID)
        self.assertTrue(result['kept'])
        self.assertIn('vg0/r0', result['reason'])
        self.assertFalse(result['lv_removed'] or result['res_removed']
                         or result['down'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], self.changes())

    def test_keeps_an_untagged_lv(self):
        self.ok('create', **self.create_req())
        before = self.fake.snapshot()
        for pool in ({'pool': 'vg0/thin'}, {}):
            self.assertTrue(self.ok('delete', resource='r0',
                                    create_id=self.ID, **pool)['kept'])
        self.assertEqual(before, self.fake.snapshot())

    def test_keeps_a_foreign_lv_without_error(self):
        self.fake.add_lv('vg0', 'r0', GiB, tags=())
        self.assertTrue(self.ok('delete', resource='r0', pool='vg0/thin',
                                create_id=self.ID)['kept'])
        self.assertIn(('vg0', 'r0'), self.fake.lvs)

    def test_res_without_lv_goes(self):
        # The create failed after writing the .res, before lvcreate.
        self.agent.store.write('r0', samples.res_text(), samples.SECRET,
                               expect_disk='/dev/vg0/r0')
        result = self.ok('delete', resource='r0', pool='vg0/thin',
                         create_id=self.ID)
        self.assertTrue(result['res_removed'])
        self.assertFalse(result['kept'])

    def test_running_without_lv_is_kept(self):
        self.agent.store.write('r0', samples.res_text(), samples.SECRET,
                               expect_disk='/dev/vg0/r0')
        self.fake.running['r0'] = {'name': 'r0'}
        before = self.fake.snapshot()
        self.assertTrue(self.ok('delete', resource='r0', pool='vg0/thin',
                                create_id=self.ID)['kept'])
        self.assertEqual(before, self.fake.snapshot())


@ddt.ddt
class LifecycleTestCase(AgentTestCase):

    def setUp(self):
        super().setUp()
        self.ok('create', **self.create_req())
        self.fake.calls.clear()

    def test_delete(self):
        result = self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertEqual(
            [['drbdadm', 'down', 'r0'],
             ['drbdadm', '--', '--force', 'wipe-md', 'r0'],
             ['lvremove', '--force', 'vg0/r0']], self.changes())
        self.assertEqual({'resource': 'r0', 'down': True,
                          'lv_removed': True, 'res_removed': True,
                          'revert_lvs_removed': [],
                          'kept': False, 'reason': None}, result)
        self.assertEqual([], list(self.res_dir.iterdir()))
        self.fake.calls.clear()
        result = self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertEqual([], self.changes())
        self.assertFalse(any(result[k] for k in
                             ('down', 'lv_removed', 'res_removed')))

    def test_delete_finds_pool_in_res(self):
        self.ok('delete', resource='r0')
        self.assertNotIn(('vg0', 'r0'), self.fake.lvs)

    def test_delete_after_crash(self):
        self.fake.crash('lvremove', after=True)
        self.assertRaises(fakes.Crash, self.agent.handle,
                          dict(op='delete', resource='r0', pool='vg0/thin'))
        self.assertTrue((self.res_dir / 'r0.res').exists())
        self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertEqual([], list(self.res_dir.iterdir()))

    def test_delete_wipe_md_failure_still_deletes(self):
        self.fake.fail('wipe-md')
        self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertNotIn(('vg0', 'r0'), self.fake.lvs)

    def test_delete_diskless(self):
        self.ok('delete', resource='r0', pool='vg0/thin')
        store_text = samples.res_text('r2', 1002, 7002, hosts=[
            ('nodeb', 0, '10.0.0.2', '/dev/vg0/r2'),
            ('nodea', 1, '10.0.0.1', None)])
        self.agent.store.write('r2', store_text, samples.SECRET,
                               expect_disk=None)
        self.fake.running['r2'] = {'name': 'r2'}
        self.fake.calls.clear()
        self.ok('delete', resource='r2')
        self.assertEqual([['drbdadm', 'down', 'r2']], self.changes())
        self.assertEqual([], list(self.res_dir.iterdir()))

    def test_delete_unknown(self):
        self.ok('delete', resource='nothing', pool='vg0/thin')
        self.assertEqual([], self.changes())

    def test_delete_refuses_foreign_lv(self):
        self.fake.add_lv('vg0', 'r5', GiB, tags=())
        self.error('delete', protocol.E_CONFLICT, 'resource',
                   resource='r5', pool='vg0/thin')
        self.assertIn(('vg0', 'r5'), self.fake.lvs)

    def test_adjust(self):
        req = self.create_req()
        del req['pool'], req['size']
        self.assertEqual('unchanged', self.ok('adjust', **req)['drbd'])
        self.assertEqual([], self.changes())
        req['spec'] = samples.spec(allow_two_primaries=True)
        self.assertEqual('adjusted', self.ok('adjust', **req)['drbd'])
        self.assertEqual([['drbdadm', 'adjust', 'r0']], self.changes())
        self.assertIn('allow-two-primaries',
                      (self.res_dir / 'r0.res').read_text())

    def test_adjust_down_resource_brings_it_up(self):
        self.fake.running.clear()
        req = self.create_req()
        del req['pool'], req['size']
        self.ok('adjust', **req)
        self.assertEqual([['drbdadm', 'adjust', 'r0']], self.changes())

    def test_failed_adjust_of_a_down_resource_takes_it_down(self):
        # drbdadm adjust of a resource that is down is an up: when its
        # attach fails, the resource was left half up.
        self.fake.running.clear()
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = dict(req['spec'], allow_two_primaries=True)
        before = (self.res_dir / 'r0.res').read_text()
        self.fake.fail('drbdadm', 'adjust', stderr='(111) Low.dev. smaller '
                       'than requested DRBD-dev. size.')
        self.error('adjust', protocol.E_FAILED, None, **req)
        self.assertEqual([['drbdadm', 'adjust', 'r0'],
                          ['drbdadm', 'down', 'r0']], self.changes())
        self.assertEqual(before, (self.res_dir / 'r0.res').read_text())

    def test_adjust_beyond_what_the_lv_holds_is_refused_first(self):
        # drbdadm adjust changes the connections before it finds the size
        # too big: the refusal must come before anything runs.
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = samples.spec(size=64 * GiB, allow_two_primaries=True)
        before = (self.res_dir / 'r0.res').read_text()
        err, state = self.error('adjust', protocol.E_INVALID, 'spec.size',
                                **req)
        self.assertIn('vg0/r0', err['message'])
        self.assertIn('resize', err['message'])
        self.assertEqual([], self.changes())
        self.assertEqual(state, self.fake.snapshot())
        self.assertEqual(before, (self.res_dir / 'r0.res').read_text())

    def test_adjust_refuses_disk_outside_pools(self):
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = samples.spec(hosts=[('nodea', 0, '10.0.0.1', 'vg1')])
        self.error('adjust', protocol.E_INVALID, 'spec.hosts[0].vg', **req)
        # Another LV than the resource's own cannot even be named.
        req['spec']['hosts'][0]['disk'] = '/dev/vg0/other'
        self.error('adjust', protocol.E_INVALID, 'spec.hosts[0].disk',
                   **req)

    def test_adjust_refuses_disk_change(self):
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = samples.spec(hosts=[
            ('nodea', 0, '10.0.0.1', None),
            ('nodeb', 1, '10.0.0.2', 'vg0')])
        _, before = self.error('adjust', protocol.E_CONFLICT,
                               'spec.hosts[0]', **req)
        self.assertEqual(before, self.fake.snapshot())

    def test_resize(self):
        size = 2 * GiB
        need = sizing.lv_size_for(size, protocol.MAX_PEERS_MAX, EXTENT)
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=size)
        self.assertEqual([['lvextend', '--size', f'{need}b', 'vg0/r0']],
                         self.changes())
        self.assertEqual({'resource': 'r0', 'lv_size': need,
                          'lv_size_before': result['lv_size_before'],
                          'lv_size_base': result['lv_size_before'],
                          'lv_grown': True, 'drbd_resized': False,
                          'res_changed': False, 'zeroed': None,
                          'resynced': False, 'zero_pending': None}, result)
        self.assertLess(result['lv_size_before'], need)
        self.fake.calls.clear()
        self.ok('resize', resource='r0', pool='vg0/thin', size=size,
                lv=False, drbd=True, assume_clean=True)
        self.assertEqual([['drbdadm', '--', '--assume-clean', 'resize',
                           'r0/0']], self.changes())
        self.fake.calls.clear()
        self.ok('resize', resource='r0', pool='vg0/thin', size=size,
                drbd=True)
        self.assertEqual([['drbdadm', 'resize', 'r0/0']], self.changes())

    def device_agent(self, with_device=True, device_size=MiB):
        """An agent whose device_root holds r0's device as a file.

        DRBD reports the device at ``device_size`` until it is resized
        (then at its .res's size); the file holds 4 MiB of 0xff.
        """
        root = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        running = self.agent.drbd.state('r0')
        minor = running['devices'][0]['minor']
        self.fake.running['r0']['devices'][0]['size'] = device_size // 1024
        device = root / f'drbd{minor}'
        if with_device:
            device.write_bytes(b'\xff' * (4 * MiB))
        self.agent = agent.Agent(
            dataclasses.replace(self.conf, device_root=str(root)),
            execute=self.fake)
        return device

    def mark_path(self):
        return pathlib.Path(self.conf.lock_dir) / 'r0.grow'

    def test_grow_zeroes_the_old_metadata_through_the_device(self):
        device = self.device_agent()
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=2 * GiB, lv=False, drbd=True,
                         assume_clean=True, zero_from=1 * MiB,
                         zero_to=3 * MiB)
        self.assertEqual([['drbdadm', '--', '--assume-clean', 'resize',
                           'r0/0']], self.changes())
        self.assertEqual([MiB, 3 * MiB], result['zeroed'])
        self.assertFalse(result['resynced'])
        self.assertIsNone(result['zero_pending'])
        self.assertFalse(self.mark_path().exists())
        data = device.read_bytes()
        self.assertEqual(b'\xff' * MiB, data[:MiB])
        self.assertEqual(bytes(2 * MiB), data[MiB:3 * MiB])
        self.assertEqual(b'\xff' * MiB, data[3 * MiB:])

    def test_grow_zeroing_stops_at_the_device_end(self):
        device = self.device_agent(device_size=3 * MiB)
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=2 * GiB, lv=False, drbd=True,
                         assume_clean=True, zero_from=3 * MiB,
                         zero_to=9 * MiB)
        self.assertEqual([3 * MiB, 4 * MiB], result['zeroed'])
        self.assertEqual(4 * MiB, len(device.read_bytes()))

    def test_grow_with_zeroing_refused_while_io_is_suspended(self):
        # The zeroing writes through the device, which waits while I/O is
        # suspended: the agent hung holding the lock (found by fuzzing).
        device = self.device_agent()
        self.ok('suspend-io', resource='r0')
        lv_before = dict(self.fake.lvs[('vg0', 'r0')])
        err, before = self.error(
            'resize', protocol.E_CONFLICT, 'resource', resource='r0',
            pool='vg0/thin', size=2 * GiB, drbd=True, assume_clean=True,
            zero_from=MiB, zero_to=3 * MiB)
        self.assertIn('suspended', err['message'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual(lv_before, self.fake.lvs[('vg0', 'r0')])
        self.assertEqual(b'\xff' * (4 * MiB), device.read_bytes())
        self.ok('resume-io', resource='r0')
        self.ok('resize', resource='r0', pool='vg0/thin', size=2 * GiB,
                drbd=True, assume_clean=True, zero_from=MiB,
                zero_to=3 * MiB)

    def test_grow_resyncs_when_the_device_cannot_be_opened(self):
        self.device_agent(with_device=False)
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=2 * GiB, lv=False, drbd=True,
                         assume_clean=True, zero_from=MiB, zero_to=3 * MiB)
        self.assertEqual([['drbdadm', 'resize', 'r0/0']], self.changes())
        self.assertTrue(result['resynced'])
        self.assertIsNone(result['zeroed'])
        self.assertFalse(self.mark_path().exists())

    def test_grow_records_the_old_lv_size_before_growing(self):
        before = self.agent.lvm.find(self.agent.lvm.pool('vg0/thin'),
                                     'r0').size
        self.fake.fail('lvextend')
        self.error('resize', protocol.E_FAILED, resource='r0',
                   pool='vg0/thin', size=2 * GiB)
        # recorded before the lvextend, kept although it failed
        mark = zeroing.GrowMarks(self.conf.lock_dir).read('r0')
        self.assertEqual(before, mark.lv_size)
        self.assertIsNone(mark.zero)

    def test_retry_after_a_half_done_grow_reports_the_first_lv_size(self):
        first = self.ok('resize', resource='r0', pool='vg0/thin',
                        size=2 * GiB)
        self.assertTrue(first['lv_grown'])
        # The node restarts (a new agent) and the extend is retried: the
        # LV is grown already; the old metadata ended at the old LV end.
        self.agent = agent.Agent(self.conf, execute=self.fake)
        again = self.ok('resize', resource='r0', pool='vg0/thin',
                        size=2 * GiB)
        self.assertFalse(again['lv_grown'])
        self.assertEqual(first['lv_size'], again['lv_size_before'])
        self.assertEqual(first['lv_size_before'], again['lv_size_base'])
        self.assertLess(again['lv_size_base'], again['lv_size'])

    def test_the_mark_is_stale_once_drbd_was_resized(self):
        first = self.ok('resize', resource='r0', pool='vg0/thin',
                        size=2 * GiB)
        self.fake.running['r0']['devices'][0]['size'] = 2 * GiB // 1024
        again = self.ok('resize', resource='r0', pool='vg0/thin',
                        size=2 * GiB)
        self.assertEqual(first['lv_size'], again['lv_size_base'])
        self.assertFalse(self.mark_path().exists())

    def test_a_range_the_device_exposes_already_is_not_zeroed(self):
        device = self.device_agent(device_size=2 * MiB)
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=2 * GiB, lv=False, drbd=True,
                         assume_clean=True, zero_from=MiB, zero_to=3 * MiB)
        self.assertIsNone(result['zeroed'])
        self.assertEqual(b'\xff' * (4 * MiB), device.read_bytes())
        self.assertEqual([['drbdadm', '--', '--assume-clean', 'resize',
                           'r0/0']], self.changes())

    def fail_zeroing(self):
        """The next zeroing fails with EIO half-way (a lost peer)."""
        def half(fd, start, end, **kwargs):
            os.pwrite(fd, bytes(MiB), start)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return mock.patch.object(zeroing, 'zero_range',
                                 side_effect=half)

    def test_a_failed_zeroing_stays_pending_and_the_next_resize_ends_it(
            self):
        device = self.device_agent()
        req = self.resize_req(zero_from=MiB, zero_to=3 * MiB)
        with self.fail_zeroing():
            err, _ = self.error('resize', protocol.E_FAILED, **req)
        self.assertIn('stays pending', err['message'])
        # DRBD has the new size: the new .res stays (no shrink back)
        self.assertIn('size 2097152k;', (self.res_dir / 'r0.res').read_text())
        self.assertEqual([MiB, 3 * MiB],
                         self.ok('status', resource='r0')['zero_pending'])
        self.assertEqual([MiB, 3 * MiB], self.ok('inventory')['resources'][
            'r0']['zero_pending'])
        self.assertEqual(b'\xff' * MiB, device.read_bytes()[2 * MiB:3 * MiB])
        self.fake.calls.clear()
        # the finishing request: no .res, no range of its own
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=2 * GiB, lv=False, drbd=True,
                         assume_clean=True, zero_from=MiB)
        self.assertEqual([MiB, 3 * MiB], result['zeroed'])
        self.assertIsNone(result['zero_pending'])
        # the device had its size already: no drbdadm resize
        self.assertEqual([], self.changes())
        self.assertEqual(bytes(2 * MiB), device.read_bytes()[MiB:3 * MiB])
        self.assertIsNone(self.ok('status', resource='r0')['zero_pending'])
        self.assertFalse(self.mark_path().exists())

    def test_a_pending_zeroing_is_ended_by_the_retried_grow(self):
        device = self.device_agent()
        req = self.resize_req(zero_from=MiB, zero_to=3 * MiB)
        with self.fail_zeroing():
            self.error('resize', protocol.E_FAILED, **req)
        # the retry asks from the old size; the device exposes it already
        result = self.ok('resize', **req)
        self.assertEqual([MiB, 3 * MiB], result['zeroed'])
        self.assertEqual(bytes(2 * MiB), device.read_bytes()[MiB:3 * MiB])
        self.assertFalse(self.mark_path().exists())

    def pending(self, start=MiB, end=3 * MiB):
        zeroing.GrowMarks(self.conf.lock_dir).write(
            'r0', zeroing.GrowMark(end, start, (start, end)))

    def test_a_pending_zeroing_below_the_volume_size_is_refused(self):
        device = self.device_agent(device_size=4 * MiB)
        self.pending()
        err, before = self.error('resize', protocol.E_CONFLICT, 'zero_from',
                                 resource='r0', pool='vg0/thin',
                                 size=2 * GiB, lv=False, drbd=True,
                                 assume_clean=True, zero_from=2 * MiB)
        self.assertIn('may hold data', err['message'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], self.changes())
        self.assertEqual(b'\xff' * (4 * MiB), device.read_bytes())
        self.assertTrue(self.mark_path().exists())

    def test_a_pending_zeroing_needs_the_volume_size(self):
        self.device_agent(device_size=4 * MiB)
        self.pending()
        self.error('resize', protocol.E_INVALID, 'zero_from', resource='r0',
                   pool='vg0/thin', size=2 * GiB, lv=False, drbd=True)
        self.assertEqual([], self.changes())

    def test_a_pending_zeroing_waits_while_the_device_is_held(self):
        self.device_agent(with_device=False, device_size=4 * MiB)
        self.pending()
        self.error('resize', protocol.E_BUSY, 'resource', resource='r0',
                   pool='vg0/thin', size=2 * GiB, lv=False, drbd=True,
                   assume_clean=True, zero_from=MiB)
        self.assertEqual([], self.changes())
        self.assertTrue(self.mark_path().exists())

    def test_delete_removes_the_mark(self):
        self.pending()
        self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertFalse(self.mark_path().exists())

    def resize_req(self, size=2 * GiB, spec_size=2 * GiB, **extra):
        fields = dict(resource='r0', pool='vg0/thin', size=size, lv=False,
                      drbd=True, assume_clean=True, secret=samples.SECRET,
                      spec=samples.spec(size=spec_size))
        fields.update(extra)
        return fields

    def test_resize_with_the_new_res(self):
        self.ok('resize', resource='r0', pool='vg0/thin', size=2 * GiB)
        self.fake.calls.clear()
        result = self.ok('resize', **self.resize_req())
        # the .res first (drbdadm resize reads the size from it)
        self.assertEqual([['drbdadm', '--', '--assume-clean', 'resize',
                           'r0/0']], self.changes())
        written = [i for i, c in enumerate(self.fake.calls)
                   if 'sh-ll-dev' in c]
        resized = [i for i, c in enumerate(self.fake.calls)
                   if 'resize' in c]
        self.assertLess(max(written), min(resized))
        text = (self.res_dir / 'r0.res').read_text()
        self.assertIn('size 2097152k;', text)
        self.assertIn(samples.SECRET, text)
        self.assertTrue(result['res_changed'])
        self.assertTrue(result['drbd_resized'])
        self.fake.calls.clear()
        again = self.ok('resize', **self.resize_req())
        self.assertFalse(again['res_changed'])

    def test_resize_failure_restores_the_res(self):
        old = (self.res_dir / 'r0.res').read_text()
        self.fake.fail('drbdadm', 'resize')
        self.error('resize', protocol.E_FAILED, **self.resize_req())
        self.assertEqual(old, (self.res_dir / 'r0.res').read_text())

    @ddt.data(({'drbd': False}, 'spec'),
              ({'secret': None}, 'secret'),
              ({'spec': samples.spec(hosts=[
                  ('nodea', 0, '10.0.0.1', None),
                  ('nodeb', 1, '10.0.0.2', 'vg0')])}, 'spec.hosts[0]'),
              ({'spec': samples.spec(hosts=[
                  ('nodea', 0, '10.0.0.1', 'vg1')])}, 'spec.hosts[0]'))
    @ddt.unpack
    def test_resize_bad_res_changes_nothing(self, changes, field):
        req = self.resize_req(lv=True, size=5 * GiB, **changes)
        if req['secret'] is None:
            del req['secret']
        _, before = self.error('resize', protocol.E_INVALID, field, **req)
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], self.changes())

    def test_resize_down_refused(self):
        self.fake.running.clear()
        _, before = self.error('resize', protocol.E_CONFLICT, 'resource',
                               resource='r0', pool='vg0/thin', size=5 * GiB)
        self.assertEqual(before, self.fake.snapshot())

    def test_resize_missing(self):
        self.error('resize', protocol.E_NOT_FOUND, 'resource',
                   resource='r9', pool='vg0/thin', size=GiB)

    def test_suspend_resume(self):
        self.ok('suspend-io', resource='r0')
        self.ok('suspend-io', resource='r0')
        self.ok('resume-io', resource='r0')
        self.ok('resume-io', resource='r0')
        self.assertEqual([['drbdadm', 'suspend-io', 'r0'],
                          ['drbdadm', 'resume-io', 'r0']], self.changes())
        result = self.ok('suspend-io', resource='r9')
        self.assertFalse(result['running'])

    def test_new_current_uuid(self):
        self.ok('new-current-uuid', resource='r0')
        self.ok('new-current-uuid', resource='r0', clear_bitmap=False)
        self.assertEqual(
            [['drbdadm', 'new-current-uuid', '--clear-bitmap', 'r0/0'],
             ['drbdadm', 'new-current-uuid', 'r0/0']], self.changes())
        self.error('new-current-uuid', protocol.E_NOT_FOUND, 'resource',
                   resource='r9')

    def test_forget_peer(self):
        self.ok('forget-peer', resource='r0', node_id=5)
        self.assertEqual([['drbdsetup', 'forget-peer', 'r0', '5']],
                         self.changes())
        # a peer the .res still lists keeps its slot
        self.error('forget-peer', protocol.E_CONFLICT, 'node_id',
                   resource='r0', node_id=1)
        self.error('forget-peer', protocol.E_NOT_FOUND, 'resource',
                   resource='r9', node_id=5)
        self.error('forget-peer', protocol.E_INVALID, 'node_id',
                   resource='r0', node_id=32)
        self.assertEqual([['drbdsetup', 'forget-peer', 'r0', '5']],
                         self.changes())

    def test_status(self):
        result = self.ok('status', resource='r0')
        self.assertTrue(result['exists'])
        self.assertEqual(1000, result['definition']['minor'])
        self.assertEqual(samples.SECRET, result['definition']['secret'])
        self.assertEqual('r0', result['state']['name'])
        self.assertEqual(sizing.usable_size_of(self.need(), 7),
                         result['device_size'])
        result = self.ok('status', resource='r9')
        self.assertEqual({'resource': 'r9', 'exists': False,
                          'definition': None, 'state': None,
                          'device_size': None, 'zero_pending': None},
                         result)

    def test_no_shrink_on_adjust(self):
        # The device runs with 2 GiB; a .res saying 1 GiB must not land.
        self.ok('resize', resource='r0', pool='vg0/thin', size=2 * GiB)
        self.ok('resize', **self.resize_req())
        old = (self.res_dir / 'r0.res').read_text()
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = samples.spec(size=GiB)
        err, before = self.error('adjust', protocol.E_CONFLICT, 'size',
                                 **req)
        self.assertIn(str(GiB), err['message'])
        self.assertIn(str(2 * GiB), err['message'])
        self.assertEqual({'size': GiB, 'device_size': 2 * GiB},
                         err['details'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual(old, (self.res_dir / 'r0.res').read_text())
        # The same size, or a larger one, is fine.
        req['spec'] = samples.spec(size=2 * GiB)
        self.ok('adjust', **req)

    def test_no_shrink_on_create_and_resize(self):
        self.ok('resize', **self.resize_req())
        req = self.create_req()
        req['spec'] = samples.spec(size=GiB)
        err, _ = self.error('create', protocol.E_CONFLICT, 'size', **req)
        self.assertIn('never shrinks', err['message'])
        self.fake.calls.clear()
        self.error('resize', protocol.E_CONFLICT, 'size',
                   **self.resize_req(size=GiB, spec_size=2 * GiB - 1024))
        self.assertEqual([], self.changes())

    def test_no_shrink_check_needs_a_running_device(self):
        self.ok('resize', **self.resize_req())
        self.fake.running.clear()
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = samples.spec(size=GiB)
        self.ok('adjust', **req)


class InventoryTestCase(AgentTestCase):

    def test_inventory(self):
        self.ok('create', **self.create_req())
        self.ok('create', **self.create_req('r1', 1001, 7001, size=5 * GiB))
        self.ok('snapshot-create', resource='r0', pool='vg0/thin',
                snapshot='s1')
        self.fake.add_lv('vg0', 'foreign', GiB, tags=())
        # An operator's resource in the same directory still counts.
        (self.res_dir / 'other.res').write_text(samples.res_text(
            'other', 7, 7789, placeholder=False).replace(
                'nodea', 'x1').replace('nodeb', 'x2'))
        result = self.ok('inventory')
        self.assertEqual('nodea', result['hostname'])
        self.assertRegex(result['drbd_utils_version'], r'^\d+\.\d+')
        thin_size = self.fake.lvs[('vg0', 'thin')]['size']
        provisioned = sum(lv['size'] for key, lv in self.fake.lvs.items()
                          if lv['pool_lv'] == 'thin')
        self.assertEqual([{'name': 'vg0/thin', 'total_bytes': thin_size,
                           'free_bytes': int(thin_size * 0.9),
                           'provisioned_bytes': provisioned,
                           'extent_bytes': EXTENT,
                           'vg_free_bytes': 50 * GiB,
                           'zero_new_blocks': True}], result['pools'])
        self.assertEqual(['other', 'r0', 'r1'], sorted(result['resources']))
        r0 = result['resources']['r0']
        self.assertEqual(1000, r0['definition']['minor'])
        self.assertNotIn('secret', r0['definition'])
        self.assertNotIn(samples.SECRET, str(result))
        self.assertEqual('r0', r0['state']['name'])
        self.assertIsNone(result['resources']['other']['definition'])
        self.assertEqual(
            [{'name': 'r0', 'pool': 'vg0/thin', 'size_bytes': self.need(),
              'origin': None, 'create_ids': []},
             {'name': 'r1', 'pool': 'vg0/thin',
              'size_bytes': self.need(5 * GiB), 'origin': None,
              'create_ids': []}],
            result['volumes'])
        self.assertEqual([{'name': 's1', 'pool': 'vg0/thin',
                           'size_bytes': self.need(), 'origin': 'r0'}],
                         result['snapshots'])
        self.assertEqual([7, 1000, 1001], result['used_minors'])
        self.assertEqual([7000, 7001, 7789], result['used_ports'])
        self.assertEqual([], result['removed_temp_files'])

    def test_pool_without_zeroing(self):
        self.fake.lvs[('vg0', 'thin')]['zero'] = False
        pools = self.ok('inventory')['pools']
        self.assertIs(False, pools[0]['zero_new_blocks'])
        lvs = [c for c in self.fake.calls if c[0] == 'lvs']
        self.assertEqual(1, len(lvs))
        self.assertIn('zero', lvs[0][lvs[0].index('-o') + 1].split(','))

    def test_inventory_removes_stale_temp_files(self):
        self.ok('create', **self.create_req())
        old = time.time() - restemp.STALE_AGE - 1
        stale = self.res_dir / '.r0.0123456789abcdef.tmp'
        fresh = self.res_dir / '.r1.0123456789abcdef.tmp'
        other = self.res_dir / '.r0.res.swp'
        for path in (stale, fresh, other):
            path.write_text(samples.SECRET)
        for path in (stale, other):
            os.utime(path, (old, old))
        result = self.ok('inventory')
        self.assertEqual([str(stale)], result['removed_temp_files'])
        self.assertEqual(sorted([fresh.name, other.name, 'r0.res']),
                         sorted(os.listdir(self.res_dir)))
        self.assertIn(f'Removed {stale}', self.log.output)
        self.assertNotIn(samples.SECRET, self.log.output)
        self.assertEqual([], self.ok('inventory')['removed_temp_files'])

    def test_inventory_without_resource_dir(self):
        self.res_dir.rmdir()
        self.assertEqual([], self.ok('inventory')['removed_temp_files'])

    def test_missing_everything(self):
        def nothing(*cmd, **kwargs):
            raise OSError(2, 'No such file or directory', cmd[0])
        self.agent = agent.Agent(self.conf, execute=nothing)
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        for what in ('drbdadm', 'vgs', 'drbdsetup', 'lvmconfig'):
            self.assertIn(what, err['message'])

    def test_missing_vg_and_module(self):
        self.fake.vgs.clear()
        self.fake.fail('drbdsetup', 'status', rc=20,
                       stderr='Failed to modprobe drbd (No such file)')
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        self.assertIn('volume group vg0 not found', err['message'])
        self.assertIn('kernel module', err['message'])

    def test_config_not_including_dir(self):
        self.conf_file.write_text('# empty\n')
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        self.assertIn('does not include', err['message'])

    def test_lvm_scanning_drbd_devices_refused(self):
        # what the VM tier had: udev's /dev/block/147:N got through
        self.fake.lvm_conf['devices/global_filter'] = ['r|^/dev/drbd|',
                                                       'a|.*|']
        err, before = self.error('inventory', protocol.E_MISSING, None)
        message = err['message']
        self.assertTrue(message.startswith('this node cannot serve: LVM '
                                           'would scan DRBD devices'),
                        message)
        for what in ('/dev/block/147:1000', 'lvm.conf', 'global_filter = [',
                     'devices/global_filter accepts'):
            self.assertIn(what, message)
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], self.changes())

    def test_lvm_default_filter_refused(self):
        self.fake.lvm_conf['devices/global_filter'] = None
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        self.assertIn('devices/global_filter accepts /dev/drbd1000',
                      err['message'])

    def test_lvm_filter_unreadable(self):
        self.fake.lvm_conf['devices/filter'] = '[1,"a|.*|"]'
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        self.assertIn('devices/filter in lvm.conf cannot be used: not a '
                      'list of quoted patterns: [1,"a|.*|"]', err['message'])

    def test_lvm_filter_problem_among_others(self):
        self.fake.lvm_conf['devices/global_filter'] = None
        self.conf_file.write_text('# empty\n')
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        self.assertIn('does not include', err['message'])
        self.assertIn('LVM would scan DRBD devices', err['message'])

    def test_client_without_pools(self):
        self.conf.pools = []
        self.agent = agent.Agent(self.conf, execute=self.fake)
        # A client runs no LVM command: its filters do not matter.
        self.fake.lvm_conf['devices/global_filter'] = None
        result = self.ok('inventory')
        self.assertEqual([], result['pools'])
        self.assertFalse(any(c[0] in ('vgs', 'lvs', 'lvmconfig')
                             for c in self.fake.calls))


class InventoryScaleTestCase(AgentTestCase):
    """An inventory runs as many commands for 50 resources as for 1."""

    #: nodea's replication address is one of this host's: drbdadm's
    #: ``dump all`` checks it (``dump <res>`` only warns).
    HOSTS = [('nodea', 0, '127.0.0.1', 'vg0'), ('nodeb', 1, '10.0.0.2', None)]

    def populate(self, count, hosts=HOSTS):
        for i in range(count):
            self.ok('create', resource=f'r{i}', pool='vg0/thin', size=GiB,
                    spec=samples.spec(1000 + i, 7000 + i, hosts=hosts),
                    secret=samples.SECRET)

    def commands(self, **fields):
        self.fake.calls.clear()
        result = self.ok('inventory', **fields)
        return [fakes.strip_config(c) for c in self.fake.calls], result

    def test_commands_do_not_grow_with_resources(self):
        self.populate(1)
        one, _ = self.commands()
        self.populate(50)
        fifty, result = self.commands()
        self.assertEqual(50, len(result['resources']))
        self.assertEqual(one, fifty)
        self.assertEqual(1, sum(c[:2] == ['drbdadm', 'dump'] for c in fifty))
        self.assertIn(['drbdadm', 'dump', 'all'], fifty)
        self.assertEqual(1, sum(c[:2] == ['drbdsetup', 'status']
                                for c in fifty))

    def test_brief_reads_no_definition(self):
        self.populate(3)
        calls, result = self.commands(brief=True)
        self.assertFalse(any(c[:2] == ['drbdadm', 'dump'] for c in calls))
        self.assertTrue(result['brief'])
        self.assertEqual({'r0': {}, 'r1': {}, 'r2': {}}, result['resources'])
        full = self.ok('inventory')
        self.assertFalse(full['brief'])
        for key in ('pools', 'volumes', 'snapshots', 'used_minors',
                    'used_ports', 'hostname', 'protocol_version',
                    'drbd_kernel_version'):
            self.assertEqual(full[key], result[key], key)

    def assertSameAsEachRead(self, result):
        """Each entry is what a ``dump <res>`` of its own gives."""
        for name, entry in result['resources'].items():
            try:
                expected = self.agent.store.read_definition(name)
            except agent.AgentError as e:
                self.assertEqual({'definition': None, 'error': e.message},
                                 {k: entry.get(k) for k in
                                  ('definition', 'error')}, name)
                continue
            expected.pop('secret', None)
            self.assertEqual(expected, entry['definition'], name)
            self.assertNotIn('error', entry)

    def test_same_definitions_as_one_dump_each(self):
        self.populate(3)
        # An operator's resource of other hosts: "ignored" in dump all.
        (self.res_dir / 'other.res').write_text(samples.res_text(
            'other', 7, 7789, placeholder=False).replace(
                'nodea', 'x1').replace('nodeb', 'x2'))
        # A file that defines another resource than its name says.
        (self.res_dir / 'named.res').write_text(samples.res_text(
            'misnamed', 8, 7790).replace('10.0.0.1', '127.0.0.1'))
        calls, result = self.commands()
        self.assertEqual(['named', 'other', 'r0', 'r1', 'r2'],
                         sorted(result['resources']))
        self.assertIsNone(result['resources']['other']['definition'])
        self.assertIn('not defined', result['resources']['named']['error'])
        self.assertEqual(1000, result['resources']['r0']['definition'][
            'minor'])
        # Only the two odd ones are read on their own.
        self.assertEqual([['drbdadm', 'dump', 'all'],
                          ['drbdadm', 'dump', 'named'],
                          ['drbdadm', 'dump', 'other']],
                         [c for c in calls if 'dump' in c])
        self.assertSameAsEachRead(result)

    def test_dump_all_refused_reads_each(self):
        # nodea's address is not on this host: dump all refuses, each
        # dump <res> only warns; every entry is still read.
        self.populate(2, hosts=None)
        calls, result = self.commands()
        self.assertEqual(3, sum('dump' in c for c in calls))
        self.assertEqual(['r0', 'r1'], sorted(result['resources']))
        self.assertEqual(1001, result['resources']['r1']['definition'][
            'minor'])
        self.assertSameAsEachRead(result)

    def test_unparsable_file(self):
        self.populate(2)
        (self.res_dir / 'bad.res').write_text('resource bad {\n')
        result = self.ok('inventory')
        self.assertIn('cannot read', result['resources']['bad']['error'])
        self.assertIsNone(result['resources']['r0']['definition'])
        self.assertSameAsEachRead(result)
        self.assertIn('drbdadm dump all failed', self.log.output)
        self.assertNotIn(samples.SECRET, self.log.output)
        self.assertNotIn(samples.SECRET, str(result))


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


class AttachTestCase(AgentTestCase):

    def setUp(self):
        super().setUp()
        patcher = mock.patch(
            'blackstor_cinder.node.client.DisklessClient')
        self.client_cls = patcher.start()
        self.addCleanup(patcher.stop)
        self.client = self.client_cls.return_value

    def attach_req(self, **extra):
        return dict(resource='r0', spec=samples.spec(),
                    secret=samples.SECRET, **extra)

    def test_attach(self):
        self.client.connect.return_value = '/dev/drbd1000'
        result = self.ok('attach', **self.attach_req(
            device_path='/dev/drbd/by-res/r0/0', timeout=5))
        self.assertEqual({'resource': 'r0', 'device_path': '/dev/drbd1000'},
                         result)
        kwargs = self.client_cls.call_args[1]
        self.assertEqual(5, kwargs['attach_timeout'])
        self.assertEqual('nodea', kwargs['node_name'])
        self.assertEqual(str(self.res_dir), kwargs['resource_dir'])
        self.assertEqual(str(self.conf_file), kwargs['drbd_config'])
        self.client.connect.assert_called_once_with(
            'r0', resrender.render('r0', samples.spec()), samples.SECRET,
            '/dev/drbd/by-res/r0/0')

    def test_attach_default_timeout(self):
        self.client.connect.return_value = '/dev/drbd1000'
        self.ok('attach', **self.attach_req())
        self.assertEqual(60.0, self.client_cls.call_args[1]['attach_timeout'])

    def test_attach_timeout(self):
        self.client.connect.side_effect = client.AttachTimeout('slow')
        err, _ = self.error('attach', protocol.E_TIMEOUT, None,
                            **self.attach_req())
        self.assertIn('slow', err['message'])

    def test_attach_passes_agent_errors(self):
        self.client.connect.side_effect = AgentError(
            protocol.E_CONFLICT, 'minor taken', 'minor')
        self.error('attach', protocol.E_CONFLICT, 'minor',
                   **self.attach_req())

    def test_detach(self):
        self.ok('detach', resource='r0', force=True)
        self.client.disconnect.assert_called_once_with('r0', force=True)

    def test_detach_in_use(self):
        self.client.disconnect.side_effect = client.DeviceInUse('open')
        self.error('detach', protocol.E_BUSY, None, resource='r0')

    def test_detach_of_a_replica_is_a_conflict(self):
        self.client.disconnect.side_effect = client.ReplicaHere(
            'nodea holds a replica of r0')
        err, _ = self.error('detach', protocol.E_CONFLICT, None,
                            resource='r0')
        self.assertIn('holds a replica', err['message'])
