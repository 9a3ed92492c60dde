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
"""LVM commands and the confinement to configured pools."""

import json
from unittest import mock

from oslo_concurrency import processutils

from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node.errors import CommandError
from blackstor_cinder.node import executor
from blackstor_cinder.node import lvm
from blackstor_cinder import protocol
from tests.unit import base


def report(key, rows):
    return json.dumps({'report': [{key: rows}]}), ''


LVS = [
    {'lv_name': 'thin', 'vg_name': 'vg0', 'lv_size': '1000',
     'lv_attr': 'twi-aotz--', 'pool_lv': '', 'origin': '',
     'data_percent': '25.00', 'lv_tags': '', 'zero': 'zero'},
    {'lv_name': 'r0', 'vg_name': 'vg0', 'lv_size': '300',
     'lv_attr': 'Vwi-a-tz--', 'pool_lv': 'thin', 'origin': '',
     'data_percent': '1.00', 'lv_tags': 'blackstor'},
    {'lv_name': 's0', 'vg_name': 'vg0', 'lv_size': '300',
     'lv_attr': 'Vwi-a-tz--', 'pool_lv': 'thin', 'origin': 'r0',
     'data_percent': '', 'lv_tags': 'blackstor,blackstor-snapshot'},
    {'lv_name': 'mine', 'vg_name': 'vg0', 'lv_size': '500',
     'lv_attr': 'Vwi-a-tz--', 'pool_lv': 'thin', 'origin': '',
     'data_percent': '', 'lv_tags': ''},
    {'lv_name': 'root', 'vg_name': 'vg0', 'lv_size': '7000',
     'lv_attr': '-wi-ao----', 'pool_lv': '', 'origin': '',
     'data_percent': '', 'lv_tags': ''},
]


class LvmTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.execute = mock.Mock(return_value=('', ''))
        self.lvm = lvm.Lvm(executor.Executor(self.execute), ['vg0/thin'])
        self.pool = self.lvm.pool('vg0/thin')

    def argv(self):
        return [list(c[0]) for c in self.execute.call_args_list]

    def test_pool_confinement(self):
        self.assertEqual(('vg0', 'thin'), (self.pool.vg, self.pool.thin))
        for bad in ('vg1/thin', 'vg0/other', None, 'vg0'):
            e = self.assertRaises(AgentError, self.lvm.pool, bad)
            self.assertEqual(protocol.E_INVALID, e.code)
            self.assertEqual('pool', e.field)

    def test_pool_of_device(self):
        self.assertEqual((self.pool, 'r0'),
                         self.lvm.pool_of_device('/dev/vg0/r0'))
        for path in ('/dev/vg1/r0', '/dev/vg0/../r0', '/dev/vg0/a/b',
                     '/tmp/vg0/r0', '/dev/sda', None, '/dev/vg0/a b'):
            self.assertIsNone(self.lvm.pool_of_device(path), path)

    def test_lvs_parse(self):
        self.execute.return_value = report('lv', LVS)
        lvs = self.lvm.lvs('vg0')
        self.assertEqual(['lvs', '--reportformat', 'json', '--units', 'b',
                          '--nosuffix', '-o', lvm.LV_FIELDS, 'vg0'],
                         self.argv()[0])
        self.assertTrue(lvs[0].is_thin_pool)
        self.assertEqual(25.0, lvs[0].data_percent)
        self.assertEqual((300, True, False), (lvs[1].size, lvs[1].ours,
                                              lvs[1].is_snapshot))
        self.assertTrue(lvs[2].is_snapshot)
        self.assertEqual('r0', lvs[2].origin)
        self.assertFalse(lvs[3].ours)

    def test_pool_usage(self):
        self.execute.side_effect = [
            report('vg', [{'vg_name': 'vg0', 'vg_size': '9000',
                           'vg_free': '100', 'vg_extent_size': '4'}]),
            report('lv', LVS)]
        self.assertEqual({'name': 'vg0/thin', 'total_bytes': 1000,
                          'free_bytes': 750, 'provisioned_bytes': 1100,
                          'extent_bytes': 4, 'vg_free_bytes': 100,
                          'zero_new_blocks': True},
                         self.lvm.pool_usage(self.pool))
        self.assertEqual(['vgs', 'lvs'], [a[0] for a in self.argv()])

    def test_pool_zeroing(self):
        # lvs prints "zero"/"" (1/0 with --binary); anything else is off.
        for shown, zero in (('zero', True), ('1', True), ('', False),
                            ('0', False), ('-1', False), (None, False)):
            rows = [dict(LVS[0], zero=shown)] + LVS[1:]
            self.execute.side_effect = [report('lv', rows)]
            lvm_ = lvm.Lvm(executor.Executor(self.execute), ['vg0/thin'])
            self.assertIs(zero, lvm_.thin_pool(self.pool).zero, shown)

    def test_thin_pool(self):
        self.execute.return_value = report('lv', LVS)
        self.assertEqual('thin', self.lvm.thin_pool(self.pool).name)
        self.assertEqual(['lvs'], [a[0] for a in self.argv()])
        self.execute.return_value = report('lv', LVS[1:])
        e = self.assertRaises(AgentError, self.lvm.thin_pool, self.pool)
        self.assertEqual((protocol.E_MISSING, 'pool'), (e.code, e.field))
        self.assertIn('vg0/thin', e.message)
        self.assertEqual(2, self.execute.call_count)

    def vgs_and_lvs(self, *argv, **kwargs):
        if argv[0] == 'vgs':
            return report('vg', [{'vg_name': 'vg0', 'vg_size': '9000',
                                  'vg_free': '100', 'vg_extent_size': '4'}])
        if argv[0] == 'lvs':
            return report('lv', LVS)
        return '', ''

    def count(self, command):
        return [a[0] for a in self.argv()].count(command)

    def test_session_reads_each_report_once(self):
        self.execute.side_effect = self.vgs_and_lvs
        with self.lvm.session():
            self.assertEqual(5, len(self.lvm.lvs('vg0')))
            self.assertEqual('r0', self.lvm.find(self.pool, 'r0').name)
            self.lvm.check_pool(self.pool)
            self.lvm.pool_usage(self.pool)
            self.assertEqual(4, self.lvm.vg('vg0').extent)
        self.assertEqual((1, 1), (self.count('lvs'), self.count('vgs')))
        # The list handed out is the caller's own.
        with self.lvm.session():
            self.lvm.lvs('vg0').clear()
            self.assertEqual(5, len(self.lvm.lvs('vg0')))

    def test_no_session_reads_every_time(self):
        self.execute.side_effect = self.vgs_and_lvs
        self.lvm.lvs('vg0')
        self.lvm.find(self.pool, 'r0')
        self.lvm.vg('vg0')
        self.lvm.vg('vg0')
        self.assertEqual((2, 2), (self.count('lvs'), self.count('vgs')))
        with self.lvm.session():
            self.lvm.lvs('vg0')
        self.lvm.lvs('vg0')
        self.assertEqual(4, self.count('lvs'))

    def test_sessions_do_not_nest(self):
        self.execute.side_effect = self.vgs_and_lvs
        with self.lvm.session():
            self.lvm.lvs('vg0')
            with self.lvm.session():
                self.lvm.lvs('vg0')
            self.lvm.lvs('vg0')
        self.assertEqual(1, self.count('lvs'))

    def test_session_reads_again_after_each_change(self):
        self.execute.side_effect = self.vgs_and_lvs
        changes = [
            lambda: self.lvm.create_thin(self.pool, 'r1', 4096),
            lambda: self.lvm.snapshot(self.pool, 'r1', 's1', ('a',)),
            lambda: self.lvm.extend(self.pool, 'r1', 8192),
            lambda: self.lvm.rename(self.pool, 'r1', 'r2'),
            lambda: self.lvm.add_tag(self.pool, 'r2', 't'),
            lambda: self.lvm.del_tag(self.pool, 'r2', 't'),
            lambda: self.lvm.remove(self.pool, 'r2')]
        with self.lvm.session():
            for change in changes:
                self.lvm.lvs('vg0')
                self.lvm.vg('vg0')
                change()
            self.lvm.lvs('vg0')
            self.lvm.vg('vg0')
        self.assertEqual(len(changes) + 1, self.count('lvs'))
        self.assertEqual(len(changes) + 1, self.count('vgs'))

    def test_session_other_vg_kept(self):
        self.execute.side_effect = self.vgs_and_lvs
        with self.lvm.session():
            self.lvm.lvs('vg1')
            self.lvm.create_thin(self.pool, 'r1', 4096)
            self.lvm.lvs('vg1')
        self.assertEqual(1, self.count('lvs'))

    def test_session_failed_change_reads_again(self):
        with self.lvm.session():
            self.execute.side_effect = self.vgs_and_lvs
            self.lvm.lvs('vg0')
            self.execute.side_effect = processutils.ProcessExecutionError(
                exit_code=5, stderr='  half done')
            self.assertRaises(CommandError, self.lvm.create_thin, self.pool,
                              'r1', 4096)
            self.execute.side_effect = self.vgs_and_lvs
            self.lvm.lvs('vg0')
        self.assertEqual(2, self.count('lvs'))

    def test_session_failed_read_not_kept(self):
        with self.lvm.session():
            self.execute.side_effect = processutils.ProcessExecutionError(
                exit_code=5, stderr='  Volume group "vg0" not found\n')
            self.assertRaises(AgentError, self.lvm.lvs, 'vg0')
            self.execute.side_effect = self.vgs_and_lvs
            self.assertEqual(5, len(self.lvm.lvs('vg0')))
        self.assertEqual(2, self.count('lvs'))

    def test_vg_missing(self):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=5, stderr='  Volume group "vg0" not found\n')
        e = self.assertRaises(AgentError, self.lvm.vg, 'vg0')
        self.assertEqual(protocol.E_MISSING, e.code)
        e = self.assertRaises(AgentError, self.lvm.lvs, 'vg0')
        self.assertEqual(protocol.E_MISSING, e.code)

    def test_garbage_output(self):
        self.execute.return_value = ('not json', '')
        e = self.assertRaises(AgentError, self.lvm.lvs, 'vg0')
        self.assertEqual(protocol.E_FAILED, e.code)

    def test_find_ours(self):
        self.execute.return_value = report('lv', LVS)
        self.assertEqual('r0', self.lvm.find_ours(self.pool, 'r0', 'x').name)
        self.assertIsNone(self.lvm.find_ours(self.pool, 'zz', 'x'))
        for name, snapshot in (('mine', None), ('root', None),
                               ('s0', False), ('r0', True)):
            e = self.assertRaises(AgentError, self.lvm.find_ours, self.pool,
                                  name, 'resource', snapshot=snapshot)
            self.assertEqual(protocol.E_CONFLICT, e.code)
            self.assertEqual('resource', e.field)

    def test_commands(self):
        self.lvm.create_thin(self.pool, 'r1', 4096)
        self.lvm.snapshot(self.pool, 'r1', 's1', ('a', 'b'))
        self.lvm.extend(self.pool, 'r1', 8192)
        self.lvm.rename(self.pool, 'r1', 'r2')
        self.lvm.add_tag(self.pool, 'r2', 't')
        self.lvm.del_tag(self.pool, 'r2', 't')
        self.assertTrue(self.lvm.remove(self.pool, 'r2'))
        self.assertEqual([
            ['lvcreate', '--yes', '--type', 'thin', '--virtualsize',
             '4096b', '--thinpool', 'thin', '--name', 'r1', '--addtag',
             'blackstor', 'vg0'],
            ['lvcreate', '--yes', '--snapshot', '--setactivationskip', 'n',
             '--activate', 'y', '--name', 's1', '--addtag', 'a', '--addtag',
             'b', 'vg0/r1'],
            ['lvextend', '--size', '8192b', 'vg0/r1'],
            ['lvrename', 'vg0', 'r1', 'r2'],
            ['lvchange', '--addtag', 't', 'vg0/r2'],
            ['lvchange', '--deltag', 't', 'vg0/r2'],
            ['lvremove', '--force', 'vg0/r2']], self.argv())

    def test_remove_absent(self):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=5, stderr='  Failed to find logical volume "vg0/x"')
        self.assertFalse(self.lvm.remove(self.pool, 'x'))
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=5, stderr='  Logical volume vg0/x in use.')
        self.assertRaises(CommandError, self.lvm.remove, self.pool, 'x')

    def test_names_checked_again(self):
        for bad in ('../x', 'a b', '-x', 'x/y', 'x.', 'x.Y1'):
            self.assertRaises(AgentError, self.lvm.remove, self.pool, bad)
        self.execute.assert_not_called()
        self.lvm.rename(self.pool, 'r0.rollback', 'r0')


class DeviceFiltersTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.execute = mock.Mock(return_value=(
            'global_filter=["a|^/dev/sdb$|","r|.*|"]\nfilter=["a|.*|"]\n',
            ''))
        self.lvm = lvm.Lvm(executor.Executor(self.execute),
                           ['blackstor/thinpool'])

    def test_reads_the_effective_values(self):
        self.assertEqual({'global_filter': '["a|^/dev/sdb$|","r|.*|"]',
                          'filter': '["a|.*|"]'}, self.lvm.device_filters())
        self.execute.assert_called_once_with(
            'lvmconfig', '--typeconfig', 'full', 'devices/global_filter',
            'devices/filter')
        self.assertIsNone(self.lvm.drbd_scan_problem())

    def test_problem_names_the_pool_vg(self):
        self.execute.return_value = ('global_filter=["a|.*|"]\n'
                                     'filter=["a|.*|"]\n', '')
        self.assertIn('/dev/drbd/by-disk/blackstor/volume-x',
                      self.lvm.drbd_scan_problem())

    def test_lvmconfig_fails(self):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=5, stderr='  Configuration node devices/filter not '
            'found\n')
        e = self.assertRaises(AgentError, self.lvm.drbd_scan_problem)
        self.assertEqual(protocol.E_MISSING, e.code)
        self.assertIn('devices/filter not found', e.message)
        self.assertIn('lvmconfig exited 5', e.message)
