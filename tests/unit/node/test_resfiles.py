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

import os
import pathlib
import shutil
import stat
from unittest import mock

import fixtures
import testtools

from blackstor_cinder.node import errors
from blackstor_cinder.node import executor
from blackstor_cinder.node import resfiles
from blackstor_cinder import protocol
from tests.unit.node import samples
from tests.unit import base

HAVE_DRBDADM = shutil.which('drbdadm') is not None


class StoreTestCase(base.TestCase):
    """A store on a temporary directory, running the real drbdadm."""

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


class ResFileStoreTestCase(StoreTestCase):
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
class WriteTestCase(StoreTestCase):

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

    def test_read_definition_zone_policy(self):
        # a comment drbdadm drops: read from the file, as the role
        self.store.write('r0', samples.res_text(), samples.SECRET,
                         expect_disk='/dev/vg0/r0')
        self.assertIsNone(self.store.read_definition('r0')['zones'])
        self.store.write('r0', '# blackstor-zones spread\n'
                         + samples.res_text(), samples.SECRET,
                         expect_disk='/dev/vg0/r0')
        self.assertEqual('spread',
                         self.store.read_definition('r0')['zones'])
        self.assertEqual('spread',
                         self.store.read_definitions(['r0'])['r0']['zones'])

    def test_read_definition_config_problem(self):
        self.store.write('r0', samples.res_text(), samples.SECRET,
                         expect_disk='/dev/vg0/r0')
        self.conf.write_text('# nothing\n')
        e = self.assertRaises(errors.AgentError, self.store.read_definition,
                              'r0')
        self.assertEqual(protocol.E_MISSING, e.code)
