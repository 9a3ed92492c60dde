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
"""ResFileStore against the real drbdadm, on temporary directories."""

import fcntl
import logging
import json
import os
import pathlib
import shutil
import stat
import time
from unittest import mock

import ddt
import fixtures
import testtools

from blackstor_cinder.node import errors
from blackstor_cinder.node import executor
from blackstor_cinder.node import resfiles
from blackstor_cinder.node import restemp
from blackstor_cinder import protocol
from tests.unit.node import samples
from tests.unit import base

HAVE_DRBDADM = shutil.which('drbdadm') is not None


class _Base(base.TestCase):

    def setUp(self):
        super().setUp()
        base = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.res_dir = base / 'drbd.d'
        self.res_dir.mkdir()
        self.conf = base / 'drbd.conf'
        self.conf.write_text('include "drbd.d/*.res";\n')
        self.calls = []

        def execute(*cmd, **kwargs):
            self.calls.append(list(cmd))
            return executor.default_execute(*cmd, **kwargs)

        self.store = resfiles.ResFileStore(
            str(self.res_dir), str(self.conf), 'nodea', execute=execute)

    def _files(self):
        return sorted(p.name for p in self.res_dir.iterdir())


class ResFileStoreTestCase(_Base):
    def test_path_and_names(self):
        self.assertEqual(self.res_dir / 'r0.res', self.store.path('r0'))
        for bad in ('../x', 'a/b', 'a b', '', '.', '..', 'x;y', '$(id)',
                    '-x', 'a' * 64):
            e = self.assertRaises(errors.AgentError, self.store.path, bad)
            self.assertEqual(protocol.E_INVALID, e.code)
            self.assertEqual('resource', e.field)

    def test_list_and_exists(self):
        self.assertEqual([], self.store.list_resources())
        (self.res_dir / 'r1.res').write_text('x')
        (self.res_dir / 'r0.res').write_text('x')
        (self.res_dir / '.r2.0123456789abcdef.tmp').write_text('x')
        (self.res_dir / '.r2.abc.tmp').write_text('x')
        (self.res_dir / 'global_common.conf').write_text('x')
        (self.res_dir / 'bad name.res').write_text('x')
        self.assertEqual(['r0', 'r1'], self.store.list_resources())
        self.assertTrue(self.store.exists('r0'))
        self.assertFalse(self.store.exists('r2'))
        self.assertEqual([str(self.res_dir / '.r2.0123456789abcdef.tmp')],
                         self.store.stale_temp_files())

    def test_list_missing_dir(self):
        store = resfiles.ResFileStore('/nonexistent/x', str(self.conf), 'a')
        self.assertEqual([], store.list_resources())

    def test_drbdadm_argv_and_env(self):
        fake = mock.Mock(return_value=('out', 'err'))
        store = resfiles.ResFileStore(str(self.res_dir), '/etc/x.conf',
                                      'nodeq', execute=fake)
        self.assertEqual(('out', 'err'), store.drbdadm('dump', 'r0'))
        args, kwargs = fake.call_args
        self.assertEqual(('drbdadm', '-c', '/etc/x.conf', 'dump', 'r0'), args)
        self.assertEqual('nodeq', kwargs['env_variables']['__DRBD_NODE__'])
        self.assertIn('PATH', kwargs['env_variables'])
        store.drbdadm('sh-nop', config='/tmp/other')
        self.assertEqual(('drbdadm', '-c', '/tmp/other', 'sh-nop'),
                         fake.call_args[0])

    def test_drbdadm_with_root_helper(self):
        fake = mock.Mock(return_value=('', ''))
        store = resfiles.ResFileStore(str(self.res_dir), '/etc/x.conf',
                                      'nodeq', execute=fake,
                                      root_helper='sudo')
        store.drbdadm('up', 'r0')
        args, kwargs = fake.call_args
        self.assertEqual(('env', '__DRBD_NODE__=nodeq', 'drbdadm', '-c',
                          '/etc/x.conf', 'up', 'r0'), args)
        self.assertEqual('sudo', kwargs['root_helper'])
        self.assertTrue(kwargs['run_as_root'])

    def test_drbdadm_failure(self):
        from oslo_concurrency import processutils
        fake = mock.Mock(side_effect=processutils.ProcessExecutionError(
            exit_code=10, stdout='', stderr='r0: No such resource'))
        store = resfiles.ResFileStore(str(self.res_dir), '/x', 'n',
                                      execute=fake)
        e = self.assertRaises(errors.CommandError, store.drbdadm, 'up', 'r0')
        self.assertEqual(10, e.rc)
        self.assertIn('No such resource', e.message)
        self.assertEqual(('', 'r0: No such resource'),
                         store.drbdadm('up', 'r0', check_exit_code=False))

    def test_remove(self):
        (self.res_dir / 'r0.res').write_text('x')
        self.assertTrue(self.store.remove('r0'))
        self.assertFalse(self.store.remove('r0'))
        self.assertEqual([], self._files())

    def test_config_problem(self):
        self.assertIsNone(self.store.config_problem())
        self.conf.write_text(f'include "{self.res_dir}/*.res";\n')
        self.assertIsNone(self.store.config_problem())
        self.conf.write_text('include "drbd.d/*.conf";\n')
        problem = self.store.config_problem()
        self.assertIn('does not include', problem)
        self.assertIn(str(self.res_dir), problem)
        self.conf.unlink()
        self.assertIn('cannot read', self.store.config_problem())


@testtools.skipUnless(HAVE_DRBDADM, 'drbdadm is not installed')
class WriteTestCase(_Base):

    def test_write_new(self):
        text = samples.res_text()
        self.assertTrue(self.store.write('r0', text, samples.SECRET,
                                         expect_disk='/dev/vg0/r0'))
        path = self.res_dir / 'r0.res'
        self.assertEqual(['r0.res'], self._files())
        content = path.read_text()
        self.assertIn(f'"{samples.SECRET}"', content)
        self.assertNotIn(protocol.SECRET_PLACEHOLDER, content)
        self.assertEqual(0o600, stat.S_IMODE(path.stat().st_mode))
        # The temporary file never matches *.res and is gone.
        tmp_argvs = [c for c in self.calls if c[3] == 'dump']
        tmp = tmp_argvs[0][2]
        self.assertFalse(tmp.endswith('.res'))
        self.assertEqual(str(self.res_dir), os.path.dirname(tmp))
        self.assertFalse(os.path.exists(tmp))
        # dump, the running state (for the invariants), sh-ll-dev on the
        # temp file, then the clash check.
        self.assertEqual(
            [['drbdadm', '-c', tmp, 'dump', 'r0'],
             ['drbdsetup', 'status', '--json', '--statistics', 'r0'],
             ['drbdadm', '-c', tmp, 'sh-ll-dev', 'r0/0'],
             ['drbdadm', '-c', str(self.conf), '--config-to-test', tmp,
              'sh-nop']], self.calls)

    def test_write_identical_is_noop(self):
        text = samples.res_text()
        self.store.write('r0', text, samples.SECRET, expect_disk='/dev/vg0/r0')
        self.calls.clear()
        before = (self.res_dir / 'r0.res').stat()
        self.assertFalse(self.store.write('r0', text, samples.SECRET,
                                          expect_disk='/dev/vg0/r0'))
        self.assertEqual([], self.calls)
        after = (self.res_dir / 'r0.res').stat()
        self.assertEqual(before.st_ino, after.st_ino)

    def test_rewrite_excludes_current_file(self):
        self.store.write('r0', samples.res_text(), samples.SECRET,
                         expect_disk='/dev/vg0/r0')
        self.calls.clear()
        new = samples.res_text(extra_net='        max-buffers 8000;')
        self.assertTrue(self.store.write('r0', new, samples.SECRET,
                                         expect_disk='/dev/vg0/r0'))
        self.assertIn('--config-to-exclude', self.calls[-1])
        self.assertIn(str(self.res_dir / 'r0.res'), self.calls[-1])
        self.assertIn('max-buffers', (self.res_dir / 'r0.res').read_text())

    def test_diskless(self):
        store = resfiles.ResFileStore(str(self.res_dir), str(self.conf),
                                      'nodeb')
        self.assertTrue(store.write('r0', samples.res_text(), samples.SECRET,
                                    expect_disk=None))
        e = self.assertRaises(errors.AgentError, self.store.write, 'r1',
                              samples.res_text('r1', 1001, 7001),
                              samples.SECRET, expect_disk=None)
        self.assertEqual(protocol.E_INVALID, e.code)
        self.assertIn("'/dev/vg0/r1'", e.message)

    def _assert_refused(self, resource, text, code, field,
                        expect_disk='/dev/vg0/r1', store=None):
        before = {p.name: p.read_text() for p in self.res_dir.iterdir()}
        e = self.assertRaises(errors.AgentError, (store or self.store).write,
                              resource, text, samples.SECRET,
                              expect_disk=expect_disk)
        self.assertEqual(code, e.code, e.message)
        self.assertEqual(field, e.field, e.message)
        self.assertNotIn(samples.SECRET, e.message)
        after = {p.name: p.read_text() for p in self.res_dir.iterdir()}
        self.assertEqual(before, after)
        return e

    def test_minor_clash_refused(self):
        self.store.write('r0', samples.res_text(), samples.SECRET,
                         expect_disk='/dev/vg0/r0')
        e = self._assert_refused('r1', samples.res_text('r1', 1000, 7001),
                                 protocol.E_CONFLICT, 'minor')
        self.assertIn('1000', e.message)

    def test_port_clash_refused(self):
        self.store.write('r0', samples.res_text(), samples.SECRET,
                         expect_disk='/dev/vg0/r0')
        e = self._assert_refused('r1', samples.res_text('r1', 1001, 7000),
                                 protocol.E_CONFLICT, 'port')
        self.assertIn('7000', e.message)

    def test_no_clash_accepted(self):
        self.store.write('r0', samples.res_text(), samples.SECRET,
                         expect_disk='/dev/vg0/r0')
        self.assertTrue(self.store.write(
            'r1', samples.res_text('r1', 1001, 7001), samples.SECRET,
            expect_disk='/dev/vg0/r1'))
        self.assertEqual(['r0', 'r1'], self.store.list_resources())

    def test_clash_on_rewrite_keeps_old_file(self):
        self.store.write('r0', samples.res_text(), samples.SECRET,
                         expect_disk='/dev/vg0/r0')
        self.store.write('r1', samples.res_text('r1', 1001, 7001),
                         samples.SECRET, expect_disk='/dev/vg0/r1')
        self._assert_refused('r1', samples.res_text('r1', 1000, 7001),
                             protocol.E_CONFLICT, 'minor')

    def test_syntax_error_refused(self):
        text = samples.res_text('r1').replace('protocol C;', 'protocol C')
        e = self._assert_refused('r1', text, protocol.E_INVALID, 'spec')
        self.assertNotIn('.tmp', e.message)

    def test_other_resource_name_refused(self):
        self._assert_refused('r1', samples.res_text('r2'),
                             protocol.E_INVALID, 'spec')

    def test_not_for_this_host_refused(self):
        store = resfiles.ResFileStore(str(self.res_dir), str(self.conf),
                                      'nodec')
        self._assert_refused('r1', samples.res_text('r1'),
                             protocol.E_INVALID, 'spec', store=store)

    def test_wrong_disk_refused(self):
        self._assert_refused('r1', samples.res_text('r1'),
                             protocol.E_INVALID, 'spec',
                             expect_disk='/dev/vg1/r1')

    def test_node_id_32_refused(self):
        hosts = [('nodea', 0, '10.0.0.1', '/dev/vg0/r1'),
                 ('nodeb', 32, '10.0.0.2', None)]
        e = self._assert_refused('r1', samples.res_text('r1', hosts=hosts),
                                 protocol.E_INVALID, 'node_id')
        self.assertIn('32', e.message)

    def test_missing_placeholder_refused(self):
        self._assert_refused('r1', samples.res_text('r1', placeholder=False),
                             protocol.E_INVALID, 'spec')

    def test_bad_secret_refused_without_echo(self):
        e = self.assertRaises(errors.AgentError, self.store.write, 'r1',
                              samples.res_text('r1'), 'short secret!',
                              expect_disk='/dev/vg0/r1')
        self.assertEqual('secret', e.field)
        self.assertNotIn('short secret!', e.message)
        self.assertEqual([], self._files())

    def test_config_not_including_dir_refused(self):
        self.conf.write_text('# nothing\n')
        e = self._assert_refused('r1', samples.res_text('r1'),
                                 protocol.E_MISSING, None)
        self.assertIn('does not include', e.message)

    def test_failure_in_rename_cleans_up(self):
        with mock.patch.object(os, 'rename', side_effect=OSError(28, 'x')):
            self.assertRaises(OSError, self.store.write, 'r1',
                              samples.res_text('r1'), samples.SECRET,
                              expect_disk='/dev/vg0/r1')
        self.assertEqual([], self._files())

    def test_read_definition(self):
        self.assertIsNone(self.store.read_definition('r0'))
        hosts = [('nodea', 0, '10.0.0.1', '/dev/vg+0/r0'),
                 ('nodeb', 3, '10.0.0.2', None),
                 ('nodec', 5, '10.0.0.3', '/dev/vg0/r0')]
        self.store.write('r0', samples.res_text(hosts=hosts), samples.SECRET,
                         expect_disk='/dev/vg+0/r0')
        d = self.store.read_definition('r0')
        self.assertEqual('r0', d['name'])
        self.assertEqual(1000, d['minor'])
        self.assertEqual(samples.SECRET, d['secret'])
        self.assertEqual({'quorum': 'majority', 'on-no-quorum': 'io-error',
                          'auto-promote': 'yes'}, d['options'])
        self.assertEqual({'protocol': 'C', 'cram-hmac-alg': 'sha256'},
                         d['net'])
        self.assertEqual(
            [{'name': 'nodea', 'node_id': 0, 'address': '10.0.0.1',
              'port': 7000, 'family': 'ipv4', 'diskful': True,
              'disk': '/dev/vg+0/r0', 'tiebreaker': False},
             {'name': 'nodeb', 'node_id': 3, 'address': '10.0.0.2',
              'port': 7000, 'family': 'ipv4', 'diskful': False,
              'disk': None, 'tiebreaker': False},
             {'name': 'nodec', 'node_id': 5, 'address': '10.0.0.3',
              'port': 7000, 'family': 'ipv4', 'diskful': True,
              'disk': '/dev/vg0/r0', 'tiebreaker': False}], d['hosts'])

    def test_read_definition_tiebreaker(self):
        # drbdadm drops comments: the role is read from the file itself,
        # and only for a diskless host
        hosts = [('nodea', 0, '10.0.0.1', '/dev/vg0/r0'),
                 ('nodeb', 1, '10.0.0.2', None),
                 ('nodec', 2, '10.0.0.3', None)]
        text = ('# blackstor-tiebreaker nodeb\n# blackstor-tiebreaker '
                'nodea\n' + samples.res_text(hosts=hosts))
        self.store.write('r0', text, samples.SECRET,
                         expect_disk='/dev/vg0/r0')
        d = self.store.read_definition('r0')
        self.assertEqual({'nodea': False, 'nodeb': True, 'nodec': False},
                         {h['name']: h['tiebreaker'] for h in d['hosts']})
        # the same from the one 'drbdadm dump all' of an inventory (it
        # refuses an address not on this host: nodea's is local here)
        self.store.write('r0', text.replace('10.0.0.1', '127.0.0.1'),
                         samples.SECRET, expect_disk='/dev/vg0/r0')
        self.calls.clear()
        d = self.store.read_definitions(['r0'])['r0']
        self.assertEqual([['dump', 'all']],
                         [c[-2:] for c in self.calls if 'dump' in c])
        self.assertEqual({'nodea': False, 'nodeb': True, 'nodec': False},
                         {h['name']: h['tiebreaker'] for h in d['hosts']})

    def test_read_definition_config_problem(self):
        self.store.write('r0', samples.res_text(), samples.SECRET,
                         expect_disk='/dev/vg0/r0')
        self.conf.write_text('# nothing\n')
        e = self.assertRaises(errors.AgentError, self.store.read_definition,
                              'r0')
        self.assertEqual(protocol.E_MISSING, e.code)


@ddt.ddt
class ShapeTestCase(_Base):
    """Only the renderer's shape gets to drbdadm (issue 13's findings)."""

    @ddt.data(
        # include is followed by drbdadm as root (and its parse error
        # quoted the included file)
        ('    net {', 'include "/etc/shadow";\n    net {'),
        ('resource "r0" {', 'include "/etc/drbd.d/x.res";\nresource "r0" {'),
        # handlers run through /bin/sh -c as root
        ('    net {', '    handlers { before-resync-target "id"; }\n'
         '    net {'),
        ('    net {', '    startup { wfc-timeout 1; }\n    net {'),
        ('    net {', '    proxy { memlimit 1M; }\n    net {'),
        # create-md runs on every volume's disk
        ('        volume 0 {', '        volume 1 { device minor 1001; '
         'disk "/dev/vg0/other"; meta-disk internal; }\n'
         '        volume 0 {'),
        ('meta-disk internal;', 'meta-disk "/dev/vg0/md";'),
        ('meta-disk internal;', 'meta-disk internal; '
         'handlers { x "id"; }'),
        ('    net {', '    net { net { x; }'),
        ('        node-id 0;', '        node-id 0; handlers { x "y"; }'))
    @ddt.unpack
    def test_refused_before_drbdadm_reads_it(self, old, new):
        text = samples.res_text().replace(old, new, 1)
        self.assertNotEqual(samples.res_text(), text)
        e = self._refused(text)
        self.assertEqual([], self.calls)
        self.assertNotIn('root', e.message)

    def test_second_resource_refused(self):
        text = samples.res_text() + samples.res_text('r9', 1009, 7009)
        self._refused(text)
        self.assertEqual([], self.calls)

    def test_field_named_as_asked(self):
        text = samples.res_text().replace('    net {', 'include "x";\n'
                                          '    net {')
        e = self.assertRaises(errors.AgentError, self.store.write, 'r0',
                              text, samples.SECRET,
                              expect_disk='/dev/vg0/r0', field='config')
        self.assertEqual('config', e.field)

    def _refused(self, text):
        e = self.assertRaises(errors.AgentError, self.store.write, 'r0',
                              text, samples.SECRET,
                              expect_disk='/dev/vg0/r0')
        self.assertEqual(protocol.E_INVALID, e.code, e.message)
        self.assertEqual('spec', e.field)
        self.assertEqual([], self._files())
        return e


class InvariantsTestCase(_Base):
    """What every write keeps, whoever asks: drbdsetup status is faked."""

    def setUp(self):
        super().setUp()
        self.state = None
        real = self.store._execute

        def execute(*cmd, **kwargs):
            if cmd[:2] == ('drbdsetup', 'status'):
                if self.state is None:
                    return '', ''
                return json.dumps([self.state]), ''
            return real(*cmd, **kwargs)

        self.store._execute = execute
        self.store.write('r0', samples.res_text(size='1048576k'),
                         samples.SECRET, expect_disk='/dev/vg0/r0')

    def run_as(self, minor=1000, node_id=0, peer_id=1, disk='UpToDate'):
        self.state = {'name': 'r0', 'node-id': node_id, 'devices': [
            {'volume': 0, 'minor': minor, 'disk-state': disk,
             'size': 1 << 20}],
            'connections': [{'name': 'nodeb', 'peer-node-id': peer_id}]}

    def refused(self, field, text, expect_disk='/dev/vg0/r0'):
        before = (self.res_dir / 'r0.res').read_text()
        e = self.assertRaises(errors.AgentError, self.store.write, 'r0',
                              text, samples.SECRET, expect_disk=expect_disk)
        self.assertEqual(protocol.E_CONFLICT, e.code, e.message)
        self.assertEqual(field, e.field, e.message)
        self.assertEqual(before, (self.res_dir / 'r0.res').read_text())
        self.assertEqual(['r0.res'], self._files())
        return e

    def hosts(self, a=0, b=1, disk='/dev/vg0/r0'):
        return [('nodea', a, '10.0.0.1', disk), ('nodeb', b, '10.0.0.2',
                                                 '/dev/vg0/r0')]

    def test_replica_never_rewritten_diskless(self):
        # down, and whatever the caller expects: the file says disk
        e = self.refused('spec.hosts', samples.res_text(
            hosts=self.hosts(disk=None)), expect_disk=None)
        self.assertIn('/dev/vg0/r0', e.message)

    def test_running_disk_never_rewritten_diskless(self):
        self.run_as()
        (self.res_dir / 'r0.res').unlink()
        e = self.assertRaises(errors.AgentError, self.store.write, 'r0',
                              samples.res_text(hosts=self.hosts(disk=None)),
                              samples.SECRET, expect_disk=None)
        self.assertEqual(protocol.E_CONFLICT, e.code)
        self.assertEqual('spec.hosts', e.field)
        self.assertEqual([], self._files())

    def test_running_minor_kept(self):
        self.run_as()
        self.refused('minor', samples.res_text(minor=1001,
                                               size='1048576k'))

    def test_running_port_kept(self):
        self.run_as()
        self.refused('port', samples.res_text(port=7001, size='1048576k'))

    def test_running_node_ids_kept(self):
        self.run_as()
        self.refused('node_id', samples.res_text(
            hosts=self.hosts(a=2), size='1048576k'))
        self.refused('node_id', samples.res_text(
            hosts=self.hosts(b=3), size='1048576k'))

    def test_node_ids_of_the_running_state_count_without_a_file(self):
        self.run_as(node_id=5, peer_id=6)
        (self.res_dir / 'r0.res').unlink()
        e = self.assertRaises(errors.AgentError, self.store.write, 'r0',
                              samples.res_text(size='1048576k'),
                              samples.SECRET, expect_disk='/dev/vg0/r0')
        self.assertEqual('node_id', e.field)

    def test_no_shrink_on_any_store(self):
        self.run_as()
        self.refused('size', samples.res_text(size='1048575k'))

    def test_all_may_change_while_down(self):
        self.assertTrue(self.store.write(
            'r0', samples.res_text(minor=1001, port=7001,
                                   hosts=self.hosts(a=2, b=3)),
            samples.SECRET, expect_disk='/dev/vg0/r0'))

    def test_same_identity_while_running_accepted(self):
        self.run_as()
        self.assertTrue(self.store.write(
            'r0', samples.res_text(size='2097152k'), samples.SECRET,
            expect_disk='/dev/vg0/r0'))
        # a client added keeps everyone else's node-id
        hosts = self.hosts() + [('hv1', 2, '10.0.0.3', None)]
        self.assertTrue(self.store.write(
            'r0', samples.res_text(hosts=hosts, size='2097152k'),
            samples.SECRET, expect_disk='/dev/vg0/r0'))


class StaleTempFilesTestCase(_Base):
    """Temporary files a killed writer left behind (they hold a secret)."""

    OURS = ('.r0.0123456789abcdef.tmp',     # this version
            '.r1.ab_c1234.tmp',             # mkstemp, older agents
            '.r-2_x.res.restore.tmp')       # restore, older agents
    NOT_OURS = ('r0.res', '.r0.res', 'x.tmp', '.r0.tmp', '.r2.abc.tmp',
                '.r0.0123456789ABCDEF.tmp', '.r0.0123456789abcdef.tmp~',
                '.r0.0123456789abcdef.tmp.bak', '..0123456789abcdef.tmp',
                '.-r0.0123456789abcdef.tmp', '.r 0.0123456789abcdef.tmp',
                '.r0.0123456789abcdef0.tmp', '.r0.abc_12345.tmp',
                '.r0.restore.tmp', 'r0.0123456789abcdef.tmp',
                '.r0.x.0123456789abcdef.tmp', '.swp.tmp')

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        self.old = time.time() - restemp.STALE_AGE - 5

    def make(self, name, age=None, content='secret'):
        path = self.res_dir / name
        path.write_text(content)
        os.chmod(path, 0o600)
        mtime = self.old if age is None else time.time() - age
        os.utime(path, (mtime, mtime))
        return str(path)

    def test_write_temp_name_is_ours(self):
        with self.store._lock():
            tmp = restemp.write(self.res_dir, 'r0', 'text')
        self.assertRegex(os.path.basename(tmp),
                         r'^\.r0\.[0-9a-f]{16}\.tmp$')
        self.assertEqual(str(self.res_dir), os.path.dirname(tmp))
        self.assertEqual(0o600, stat.S_IMODE(os.stat(tmp).st_mode))
        self.assertEqual('text', pathlib.Path(tmp).read_text())
        self.assertEqual([tmp], self.store.stale_temp_files())
        os.utime(tmp, (self.old, self.old))
        self.assertEqual([tmp], self.store.remove_stale_temp_files())

    def test_write_temp_never_reuses_a_name(self):
        taken = self.make('.r0.0000000000000000.tmp', content='old')
        with mock.patch('secrets.token_hex',
                        side_effect=['0' * 16, '1' * 16]):
            with self.store._lock():
                tmp = restemp.write(self.res_dir, 'r0', 'new')
        self.assertEqual('old', pathlib.Path(taken).read_text())
        self.assertTrue(tmp.endswith('.r0.1111111111111111.tmp'))

    def test_removes_only_old_files_with_our_names(self):
        ours = [self.make(name) for name in self.OURS]
        for name in self.NOT_OURS:
            self.make(name)
        fresh = self.make('.r3.fedcba9876543210.tmp', age=10)
        self.assertEqual(sorted(ours), self.store.remove_stale_temp_files())
        self.assertEqual(sorted([*self.NOT_OURS,
                                 os.path.basename(fresh)]), self._files())
        for path in ours:
            self.assertIn(f'Removed {path}', self.log.output)
        self.assertEqual([], self.store.remove_stale_temp_files())
        self.assertEqual([fresh], self.store.stale_temp_files())
        self.assertEqual([fresh],
                         self.store.remove_stale_temp_files(min_age=5))

    def test_symlinks_and_directories_left_alone(self):
        outside = self.useFixture(fixtures.TempDir()).path
        target = os.path.join(outside, '.r0.0123456789abcdef.tmp')
        pathlib.Path(target).write_text('not ours')
        link = self.res_dir / '.r0.0123456789abcdef.tmp'
        os.symlink(target, link)
        dir_link = self.res_dir / '.r1.0123456789abcdef.tmp'
        os.symlink(outside, dir_link)
        subdir = self.res_dir / '.r2.0123456789abcdef.tmp'
        subdir.mkdir()
        (subdir / 'x').write_text('x')
        for path in (target, outside, subdir):
            os.utime(path, (self.old, self.old))
        for path in (link, dir_link):
            os.utime(path, (self.old, self.old), follow_symlinks=False)
        self.assertEqual([], self.store.stale_temp_files())
        self.assertEqual([], self.store.remove_stale_temp_files())
        self.assertTrue(os.path.islink(link))
        self.assertTrue(os.path.islink(dir_link))
        self.assertEqual('not ours', pathlib.Path(target).read_text())
        self.assertTrue((subdir / 'x').exists())

    def test_nothing_while_a_write_holds_the_lock(self):
        stale = self.make(self.OURS[0])
        fd = os.open(self.res_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.assertEqual([], self.store.remove_stale_temp_files())
            self.assertTrue(os.path.exists(stale))
        finally:
            os.close(fd)
        self.assertEqual([stale], self.store.remove_stale_temp_files())

    def test_missing_directory(self):
        store = resfiles.ResFileStore('/nonexistent/x', str(self.conf), 'a')
        self.assertEqual([], store.remove_stale_temp_files())
        self.assertEqual([], store.stale_temp_files())

    def test_file_that_cannot_be_removed_is_skipped(self):
        first, second = sorted(self.make(name) for name in self.OURS[:2])
        real = os.unlink

        def unlink(name, *args, **kwargs):
            if name == os.path.basename(first):
                raise PermissionError(13, 'Permission denied')
            return real(name, *args, **kwargs)
        with mock.patch.object(os, 'unlink', side_effect=unlink):
            self.assertEqual([second], self.store.remove_stale_temp_files())
        self.assertTrue(os.path.exists(first))
        self.assertIn(f'Cannot remove the stale temporary file {first}',
                      self.log.output)

    def test_restore(self):
        path = self.res_dir / 'r0.res'
        path.write_text('new')
        os.chmod(path, 0o644)
        self.store.restore('r0', b'old with secret')
        self.assertEqual('old with secret', path.read_text())
        self.assertEqual(0o600, stat.S_IMODE(os.stat(path).st_mode))
        self.assertEqual(['r0.res'], self._files())
        self.assertRaises(errors.AgentError, self.store.restore, '../x',
                          b'x')

    def test_restore_failure_leaves_no_temp(self):
        (self.res_dir / 'r0.res').write_text('new')
        with mock.patch.object(os, 'rename', side_effect=OSError(28, 'x')):
            self.assertRaises(OSError, self.store.restore, 'r0', b'old')
        self.assertEqual(['r0.res'], self._files())
