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

import io
import json
import os
import sys
from unittest import mock

import ddt
import fixtures
import yaml

from blackstor_cinder import backend
from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import manage
from blackstor_cinder import protocol
from tests.unit.cluster import fakes
from tests.unit import base

G = 1 << 30
VOL_A = 'volume-aaaa'
VOL_B = 'volume-bbbb'
STORAGE = ('n1', 'n2', 'n3')

CONF = """
[DEFAULT]
enabled_backends = lvm-1,blackstor-1

[lvm-1]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver

[backend_defaults]
blackstor_replicas = 2
blackstor_pool = other/pool

[blackstor-1]
volume_driver = blackstor_cinder.driver.BlackStorDriver
volume_backend_name = blackstor
blackstor_storage_nodes = n1,n2,n3
blackstor_client_nodes = hv1
blackstor_ssh_addresses = n1:10.0.0.1,n2:10.0.0.2,n3:10.0.0.3,hv1:10.0.1.1
blackstor_node_zones = n1:z1,n2:z2,n3:z3
blackstor_pool = vg/pool
blackstor_replicas = 3
blackstor_minor_range = 1000-1099
blackstor_port_range = 7000-7099
"""


class ManageTestCase(base.TestCase):
    """main() in-process against the fake agents of tests.unit.cluster."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.FakeLogger())
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.conf_file = self.write('cinder.conf', CONF)
        self.cluster = fakes.FakeCluster()
        self.origins = {}
        for name in STORAGE:
            self.with_origins(self.cluster.add(name, pool_bytes=100 * G))
        self.cluster.add('hv1', pool=None)
        self.useFixture(fixtures.MockPatchObject(
            backend, 'transport_factory',
            lambda conf: self.cluster.transport_for))

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def with_origins(self, agent):
        # The real agent reports each LV's origin; the fake does not.
        inner = agent.op_inventory

        def op_inventory(req):
            reply = inner(req)
            for lv in reply['volumes'] + reply['snapshots']:
                lv['origin'] = self.origins.get((agent.name, lv['name']))
            return reply
        agent.op_inventory = op_inventory

    def controller(self):
        conf = manage.load_backend([self.conf_file], 'blackstor-1')
        config = backend.cluster_config(conf, 20.0)
        controller = ctl.Controller(config, self.cluster.transport_for,
                                    poll_interval=0.01)
        self.addCleanup(controller.close)
        return controller

    def run_main(self, *argv, config=True):
        if config:
            argv = ('--config-file', self.conf_file) + argv
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.object(sys, 'stdout', out), \
                mock.patch.object(sys, 'stderr', err):
            code = manage.main(list(argv))
        self.assertIsInstance(code, int)
        return code, out.getvalue(), err.getvalue()

    def run_json(self, *argv, expect=0):
        code, out, err = self.run_main(*(argv + ('-f', 'json')))
        self.assertEqual(expect, code, err)
        return json.loads(out)

    def agent(self, name):
        return self.cluster.agents[name]

    def two_volumes(self):
        controller = self.controller()
        controller.create_volume(VOL_A, 2 * G)
        controller.create_volume(VOL_B, G)
        controller.attach(VOL_A, 'hv1')
        return controller


@ddt.ddt
class ConfigTest(ManageTestCase):

    @ddt.data(
        # (backend section, backend_defaults, expected)
        ('blackstor_replicas = 4', 'blackstor_replicas = 2', 4),
        ('', 'blackstor_replicas = 2', 2),
        ('', '', 3),
    )
    @ddt.unpack
    def test_backend_section_then_backend_defaults(self, mine, shared,
                                                   expected):
        path = self.write('c.conf', f'[backend_defaults]\n{shared}\n'
                                    f'[b]\n{mine}\n')
        conf = manage.load_backend([path], 'b')
        self.assertEqual(expected, conf.blackstor_replicas)

    def test_empty_list_in_backend_section_wins(self):
        path = self.write('c.conf', '[backend_defaults]\n'
                                    'blackstor_client_nodes = a,b\n'
                                    '[b]\nblackstor_client_nodes =\n'
                                    '[c]\n')
        self.assertEqual([], manage.load_backend(
            [path], 'b').blackstor_client_nodes)
        self.assertEqual(['a', 'b'], manage.load_backend(
            [path], 'c').blackstor_client_nodes)

    def test_later_config_file_wins(self):
        extra = self.write('extra.conf', '[blackstor-1]\n'
                                         'blackstor_pool = vg2/thin\n')
        conf = manage.load_backend([self.conf_file, extra], 'blackstor-1')
        self.assertEqual('vg2/thin', conf.blackstor_pool)
        self.assertEqual(['n1', 'n2', 'n3'], conf.blackstor_storage_nodes)

    def test_only_blackstor_backend_is_the_default(self):
        conf = manage.load_backend([self.conf_file])
        self.assertEqual('blackstor-1', conf.group)
        self.assertEqual('vg/pool', conf.blackstor_pool)

    def test_two_blackstor_backends_need_a_name(self):
        path = self.write('two.conf', CONF.replace(
            'lvm-1,blackstor-1', 'blackstor-1,blackstor-2') +
            '[blackstor-2]\nvolume_driver = blackstor_cinder.driver.X\n')
        e = self.assertRaises(manage.ConfigError, manage.load_backend,
                              [path])
        self.assertIn('blackstor-1, blackstor-2', str(e))

    @ddt.data(('--backend', 'nope'), ('--backend', 'lvm-1'))
    def test_bad_backend_is_a_clear_error(self, extra):
        code, out, err = self.run_main(*extra, 'nodes', 'list')
        self.assertEqual(2, code)
        self.assertEqual('', out)
        self.assertIn(extra[1], err)
        self.assertNotIn('Traceback', err)

    def test_missing_config_file(self):
        code, out, err = self.run_main(
            '--config-file', os.path.join(self.dir, 'none.conf'), 'nodes',
            'list', config=False)
        self.assertEqual(2, code)
        self.assertIn('none.conf', err)

    def test_invalid_backend_values(self):
        path = self.write('bad.conf', '[b]\nblackstor_storage_nodes = '
                                      'bad_name!\n')
        code, _out, err = self.run_main('--config-file', path, '--backend',
                                        'b', 'nodes', 'list', config=False)
        self.assertEqual(2, code)
        self.assertIn('bad_name!', err)
        self.assertNotIn('Traceback', err)

    def test_options_after_the_command_words(self):
        code, out, err = self.run_main(
            'nodes', 'list', '--config-file', self.conf_file, '--backend',
            'blackstor-1', '-f', 'json', config=False)
        self.assertEqual(0, code, err)
        self.assertEqual(4, len(json.loads(out)))

    def test_usage_error_returns_2(self):
        code, _out, err = self.run_main('nodes', 'explode')
        self.assertEqual(2, code)
        self.assertIn('invalid choice', err)


@ddt.ddt
class NodesListTest(ManageTestCase):

    def test_json_has_every_node(self):
        self.two_volumes()
        self.agent('n2').written_bytes = 25 * G
        before = len(self.cluster.requests)
        rows = {r['Name']: r for r in self.run_json('nodes', 'list')}
        # One inventory per node, nothing else.
        self.assertEqual(sorted((n, 'inventory')
                                for n in ('n1', 'n2', 'n3', 'hv1')), sorted(
            (n, r['op']) for n, r in self.cluster.requests[before:]))
        self.assertEqual({'n1', 'n2', 'n3', 'hv1'}, set(rows))
        n2 = rows['n2']
        self.assertEqual(('storage', 'z2', 'up'),
                         (n2['Role'], n2['Zone'], n2['State']))
        self.assertEqual((75.0, 100.0, 3.0), (
            n2['Free GiB'], n2['Total GiB'], n2['Provisioned GiB']))
        self.assertEqual(('9.22.0', '9.2.18'),
                         (n2['DRBD Utils'], n2['DRBD Kernel']))
        self.assertEqual(2, n2['Resources'])
        self.assertIsNone(n2['Problem'])
        hv1 = rows['hv1']
        self.assertEqual(('client', 'up', 1, None),
                         (hv1['Role'], hv1['State'], hv1['Resources'],
                          hv1['Free GiB']))

    @ddt.data('table', 'yaml')
    def test_other_formats_list_every_node(self, fmt):
        code, out, _err = self.run_main('nodes', 'list', '-f', fmt)
        self.assertEqual(0, code)
        if fmt == 'yaml':
            self.assertEqual(['n1', 'n2', 'n3', 'hv1'],
                             [r['Name'] for r in yaml.safe_load(out)])
        else:
            lines = out.splitlines()
            names = [line.split('|')[1].strip() for line in lines[3:-1]]
            self.assertEqual(['n1', 'n2', 'n3', 'hv1'], names)
            # Aligned: every line as wide as the border.
            self.assertEqual({len(lines[0])}, {len(x) for x in lines})
            self.assertIn('100.00', out)

    def test_unreachable_node_shown_as_such(self):
        self.cluster.down.add('n3')
        rows = {r['Name']: r for r in self.run_json('nodes', 'list')}
        self.assertEqual('unreachable', rows['n3']['State'])
        self.assertIn('connection refused', rows['n3']['Problem'])
        self.assertIsNone(rows['n3']['Free GiB'])
        self.assertEqual('up', rows['n1']['State'])

    def test_every_node_down_is_an_error(self):
        self.cluster.down.update(STORAGE + ('hv1',))
        code, out, err = self.run_main('nodes', 'list', '-f', 'json')
        self.assertEqual(1, code)
        self.assertEqual(4, len(json.loads(out)))
        self.assertIn('no node answered', err)

    def test_node_problems(self):
        self.agent('n1').pool = 'vg/other'
        rows = {r['Name']: r for r in self.run_json('nodes', 'list')}
        self.assertIn('thin pool vg/pool not found', rows['n1']['Problem'])

    def test_columns(self):
        rows = self.run_json('nodes', 'list', '-c', 'Name', '-c', 'state')
        self.assertEqual({'Name', 'State'}, set(rows[0]))
        code, _out, err = self.run_main('nodes', 'list', '-c', 'nope')
        self.assertEqual(2, code)
        self.assertIn('Provisioned GiB', err)

    def test_yaml_without_pyyaml(self):
        with mock.patch.dict(sys.modules, {'yaml': None}):
            code, out, err = self.run_main('nodes', 'list', '-f', 'yaml')
        self.assertEqual(2, code)
        self.assertIn('PyYAML', err)
        self.assertEqual([], self.cluster.requests)


class ResourcesTest(ManageTestCase):

    def test_resources_list(self):
        self.two_volumes()
        rows = {r['Name']: r for r in self.run_json('resources', 'list')}
        self.assertEqual({VOL_A, VOL_B}, set(rows))
        a = rows[VOL_A]
        self.assertEqual(['n1', 'n2', 'n3'], a['Replicas'])
        self.assertEqual(['hv1'], a['Clients'])
        self.assertEqual({'n1': 'UpToDate', 'n2': 'UpToDate',
                          'n3': 'UpToDate'}, a['Disk States'])
        self.assertFalse(a['Degraded'])
        self.assertEqual([], a['Problems'])
        self.assertNotEqual(a['Minor'], rows[VOL_B]['Minor'])
        self.assertNotEqual(a['Port'], rows[VOL_B]['Port'])
        self.assertEqual([], rows[VOL_B]['Clients'])

    def test_degraded_and_out_of_sync(self):
        self.two_volumes()
        self.cluster.down.add('n3')
        inner = self.agent('n1')._state

        def state(name):
            st = inner(name)
            if st and name == VOL_B:
                st['connections'][0]['peer_devices'][0]['out-of-sync'] = 8
            return st
        self.agent('n1')._state = state
        code, out, err = self.run_main('resources', 'list', '-f', 'json')
        self.assertEqual(0, code)
        self.assertIn('n3 unreachable', err)
        rows = {r['Name']: r for r in json.loads(out)}
        a = rows[VOL_A]
        self.assertTrue(a['Degraded'])
        self.assertEqual('unreachable', a['Disk States']['n3'])
        self.assertIn('n1: Connecting to n3', a['Problems'])
        self.assertEqual(8 * 1024, rows[VOL_B]['Out Of Sync'])
        self.assertIsNone(a['Out Of Sync'])

    def test_divergent_res_marked(self):
        self.two_volumes()
        text, secret = self.agent('n3').res[VOL_B]
        port = fakes.parse_res(text)['hosts'][0]['port']
        self.agent('n3').res[VOL_B] = (
            text.replace(f':{port};', f':{port + 50};'), secret)
        rows = {r['Name']: r for r in self.run_json('resources', 'list')}
        self.assertEqual(port, rows[VOL_B]['Port'])
        self.assertTrue(rows[VOL_B]['Degraded'])
        self.assertIn('.res differs on n3', rows[VOL_B]['Problems'])

    def test_show_without_secret(self):
        self.two_volumes()
        secret = self.agent('n1').res[VOL_A][1]
        for fmt in manage.FORMATS:
            code, out, err = self.run_main('resource', 'show', VOL_A,
                                           '-f', fmt)
            self.assertEqual(0, code, err)
            self.assertNotIn(secret, out)
            self.assertNotIn(secret, err)
        shown = self.run_json('resource', 'show', VOL_A)
        self.assertEqual(VOL_A, shown['Name'])
        self.assertEqual(['n1', 'n2', 'n3'], shown['Replicas'])
        self.assertEqual(['hv1'], shown['Clients'])
        self.assertEqual({'n1', 'n2', 'n3', 'hv1'}, set(shown['Nodes']))
        self.assertEqual('Diskless', shown['Nodes']['hv1']['disk'])
        self.assertEqual('Connected', shown['Nodes']['n1']['connections']
                         ['n2']['connection'])
        self.assertEqual(['client', 'replica'], sorted(
            {h['role'] for h in shown['Hosts']}))
        self.assertFalse(shown['Degraded'])

    def test_show_unknown_resource(self):
        self.two_volumes()
        code, out, err = self.run_main('resource', 'show', 'volume-none')
        self.assertEqual((1, ''), (code, out))
        self.assertIn('volume-none not found', err)
        self.cluster.down.add('n2')
        code, out, err = self.run_main('resource', 'show', 'volume-none')
        self.assertEqual(1, code)
        self.assertIn('unreachable: n2', err)
        code, out, err = self.run_main('resource', 'show', '../etc')
        self.assertEqual(1, code)
        self.assertNotIn('Traceback', err)


class CheckTest(ManageTestCase):

    def check(self, *extra, expect=None):
        code, out, err = self.run_main('check', '-f', 'json', *extra)
        if expect is not None:
            self.assertEqual(expect, code, err)
        return {(p['Kind'], p['Node'], p['Name']): p
                for p in json.loads(out)}

    def test_clean_cluster(self):
        self.two_volumes()
        code, out, err = self.run_main('check')
        self.assertEqual(0, code, err)
        self.assertEqual(3, len(out.splitlines()))      # header only
        self.assertEqual({}, self.check(expect=0))

    def plant(self):
        """Orphans and inconsistencies of every kind."""
        self.two_volumes()
        n1, n2, n3 = (self.agent(n) for n in STORAGE)
        n1.lvs['volume-orphan'] = G                     # no .res anywhere
        n1.lvs['volume-origin'] = G                     # has a snapshot
        n1.snapshots['snapshot-1'] = G
        self.origins[('n1', 'snapshot-1')] = 'volume-origin'
        n2.snapshots['snapshot-2'] = G                  # family gone
        for agent in (n1, n2, n3):                      # clone leftovers
            agent.snapshots['clone-volume-cccc'] = G
            self.origins[(agent.name, 'clone-volume-cccc')] = VOL_A
        text, secret = n3.res[VOL_B]                    # divergent port
        port = fakes.parse_res(text)['hosts'][0]['port']
        n3.res[VOL_B] = (text.replace(f':{port};', f':{port + 50};'),
                         secret)
        del n2.res[VOL_A]                               # replica lost .res
        n1.lvs.pop(VOL_B)                               # .res without LV
        return port

    def test_names_what_an_interrupted_revert_left(self):
        self.two_volumes()
        self.agent('n2').lvs[VOL_A + '.previous'] = G
        found = self.check(expect=1)
        problem = found[('leftover-lv', 'n2', VOL_A + '.previous')]
        self.assertIn(f'previous LV of an interrupted revert of {VOL_A}',
                      problem['Detail'])
        # not an orphan volume, not a volume Cinder lacks, nothing removed
        self.assertEqual([('leftover-lv', 'n2', VOL_A + '.previous')],
                         list(found))
        self.check('--fix', '--fix-orphan-lvs', expect=1)
        self.assertIn(VOL_A + '.previous', self.agent('n2').lvs)

    def test_finds_planted_problems(self):
        self.plant()
        found = self.check(expect=1)
        expected = {
            ('orphan-lv', 'n1', 'volume-orphan'),
            ('orphan-lv', 'n1', 'volume-origin'),
            ('orphan-snapshot', 'n2', 'snapshot-2'),
            ('clone-snapshot', 'n1', 'clone-volume-cccc'),
            ('clone-snapshot', 'n2', 'clone-volume-cccc'),
            ('clone-snapshot', 'n3', 'clone-volume-cccc'),
            ('divergent-res', 'n3', VOL_B),
            ('replica-missing-res', 'n2', VOL_A),
            ('res-without-lv', 'n1', VOL_B),
        }
        self.assertTrue(expected <= set(found), set(found))
        # snapshot-1 has its volume; the LV under a replica is no orphan
        self.assertNotIn(('orphan-snapshot', 'n1', 'snapshot-1'), found)
        self.assertNotIn(('orphan-lv', 'n2', VOL_A), found)
        self.assertIn('other LVs are snapshots of it',
                      found[('orphan-lv', 'n1', 'volume-origin')]['Detail'])
        self.assertIn('port', found[('divergent-res', 'n3', VOL_B)]
                      ['Detail'])
        self.assertEqual('report only', found[('orphan-snapshot', 'n2',
                                               'snapshot-2')]['Fix'])
        # Read-only: nothing but inventories was sent.
        self.assertEqual({'inventory'}, {r['op'] for _n, r in
                                         self.cluster.requests[-3:]})
        self.assertIn('volume-orphan', self.agent('n1').lvs)

    def test_fix_repairs_only_what_is_safe(self):
        port = self.plant()
        n1, n2, n3 = (self.agent(n) for n in STORAGE)
        before = len(self.cluster.requests)
        found = self.check('--fix', expect=1)
        for node in STORAGE:
            self.assertNotIn('clone-volume-cccc',
                             self.agent(node).snapshots)
            self.assertEqual('removed', found[('clone-snapshot', node,
                                               'clone-volume-cccc')]
                             ['Result'])
        self.assertEqual(fakes.parse_res(n1.res[VOL_B][0]),
                         fakes.parse_res(n3.res[VOL_B][0]))
        self.assertEqual(port, fakes.parse_res(n3.res[VOL_B][0])
                         ['hosts'][0]['port'])
        self.assertEqual(n1.res[VOL_B][1], n3.res[VOL_B][1])
        self.assertIn(VOL_A, n2.res)
        self.assertEqual(fakes.parse_res(n1.res[VOL_A][0]),
                         fakes.parse_res(n2.res[VOL_A][0]))
        self.assertTrue(found[('divergent-res', 'n3', VOL_B)]['Result']
                        .startswith('adjusted'))
        # Not without --fix-orphan-lvs; and never what a snapshot needs.
        self.assertIn('volume-orphan', n1.lvs)
        self.assertIn('volume-origin', n1.lvs)
        self.assertIn('needs --fix-orphan-lvs',
                      found[('orphan-lv', 'n1', 'volume-orphan')]['Result'])
        self.assertIn('snapshot-2', n2.snapshots)
        self.assertIn('snapshot-1', n1.snapshots)
        self.assertIn(VOL_B, n1.res)
        ops = {r['op'] for _n, r in self.cluster.requests[before:]}
        self.assertEqual({'inventory', 'status', 'adjust',
                          'snapshot-delete'}, ops)
        # No secret in what was printed.
        code, out, err = self.run_main('check', '--fix')
        self.assertNotIn(n1.res[VOL_B][1], out + err)

    def test_fix_takes_the_volume_lock_without_waiting(self):
        self.plant()
        n3 = self.agent('n3')
        stale = n3.res[VOL_B]
        held = mock.Mock()
        held.acquire.return_value = False       # a driver operation runs
        free = mock.Mock()
        free.acquire.return_value = True

        def lock(self_, name):
            return held if name == f'blackstor-resource-{VOL_B}' else free
        with mock.patch.object(core.LocalLocks, '__call__', lock):
            found = self.check('--fix', expect=1)
        self.assertEqual('busy', found[('divergent-res', 'n3', VOL_B)]
                         ['Result'])
        self.assertEqual(stale, n3.res[VOL_B])
        held.acquire.assert_called_once_with(blocking=False)
        held.release.assert_not_called()
        # VOL_A's lock was free: taken, its replica repaired, given back.
        self.assertTrue(found[('replica-missing-res', 'n2', VOL_A)]
                        ['Result'].startswith('adjusted'))
        free.acquire.assert_called_once_with(blocking=False)
        free.release.assert_called_once_with()

    def test_fix_orphan_lvs(self):
        self.plant()
        found = self.check('--fix', '--fix-orphan-lvs', expect=1)
        n1 = self.agent('n1')
        self.assertNotIn('volume-orphan', n1.lvs)
        self.assertEqual('removed', found[('orphan-lv', 'n1',
                                           'volume-orphan')]['Result'])
        self.assertIn('volume-origin', n1.lvs)
        deletes = [(n, r) for n, r in self.cluster.requests
                   if r['op'] == 'delete']
        self.assertEqual([('n1', {'op': 'delete',
                                  'resource': 'volume-orphan',
                                  'pool': 'vg/pool'})], deletes)
        # What is left is only what --fix must not touch.
        left = self.check()
        self.assertEqual({('orphan-lv', 'n1', 'volume-origin'),
                          ('orphan-snapshot', 'n2', 'snapshot-2'),
                          ('res-without-lv', 'n1', VOL_B)}, set(left))

    def test_fix_orphan_lvs_needs_fix(self):
        code, _out, err = self.run_main('check', '--fix-orphan-lvs')
        self.assertEqual(2, code)
        self.assertIn('--fix-orphan-lvs needs --fix', err)

    def test_orphan_lv_kept_while_a_node_is_unreachable(self):
        self.two_volumes()
        self.agent('n1').lvs['volume-orphan'] = G
        self.cluster.down.add('n3')
        found = self.check('--fix', '--fix-orphan-lvs', expect=1)
        self.assertIn('volume-orphan', self.agent('n1').lvs)
        self.assertIn(('node-unreachable', 'n3', None), found)
        self.assertIn('unreachable', found[('orphan-lv', 'n1',
                                            'volume-orphan')]['Detail'])

    def test_orphan_lv_kept_when_origins_unknown(self):
        self.cluster.add('n1')              # no origins reported
        self.agent('n1').lvs['volume-orphan'] = G
        found = self.check('--fix', '--fix-orphan-lvs', expect=1)
        self.assertIn('volume-orphan', self.agent('n1').lvs)
        self.assertIn('origins unknown', found[('orphan-lv', 'n1',
                                                'volume-orphan')]['Detail'])

    def test_orphan_lv_kept_when_drbd_runs_it(self):
        self.agent('n1').lvs['volume-orphan'] = G
        with mock.patch.object(self.agent('n1'), 'op_status',
                               return_value={'exists': False,
                                             'state': {'name': 'x'}}):
            found = self.check('--fix', '--fix-orphan-lvs', expect=1)
        self.assertIn('volume-orphan', self.agent('n1').lvs)
        self.assertIn('DRBD runs', found[('orphan-lv', 'n1',
                                          'volume-orphan')]['Result'])

    def test_missing_replica_reported_not_fixed(self):
        self.two_volumes()
        n2 = self.agent('n2')
        del n2.res[VOL_B]
        del n2.lvs[VOL_B]
        found = self.check('--fix', expect=1)
        problem = found[('missing-replica', 'n2', VOL_B)]
        self.assertEqual(('report only', ''),
                         (problem['Fix'], problem['Result']))
        self.assertNotIn(VOL_B, n2.res)

    def test_no_majority_not_fixed(self):
        controller = self.controller()
        controller.create_volume(VOL_A, G, replicas=2)
        holders = [n for n in STORAGE if VOL_A in self.agent(n).lvs]
        agent = self.agent(holders[1])
        text, secret = agent.res[VOL_A]
        port = fakes.parse_res(text)['hosts'][0]['port']
        agent.res[VOL_A] = (text.replace(f':{port};', f':{port + 1};'),
                            secret)
        found = self.check('--fix', expect=1)
        for node in holders:
            self.assertIn('no .res has a majority',
                          found[('divergent-res', node, VOL_A)]['Detail'])
        self.assertEqual(text.replace(f':{port};', f':{port + 1};'),
                         agent.res[VOL_A][0])

    def half_done_extend(self):
        controller = self.controller()
        controller.create_volume(VOL_A, G)
        first = sorted(n for n in STORAGE if VOL_A in self.agent(n).res)[0]
        self.cluster.faults[(first, 'zeroing')] = [tp.NodeError(
            first, protocol.E_FAILED, 'zeroing failed: EIO')]
        self.assertRaises(errors.NodeOperationFailed,
                          controller.extend_volume, VOL_A, 3 * G)
        return first

    def test_pending_zeroing_reported_and_fixed_before_the_push(self):
        first = self.half_done_extend()
        found = self.check(expect=1)
        problem = found[('zeroing-pending', first, VOL_A)]
        self.assertIn(f'[{G}, {G + fakes.MD_BYTES})', problem['Detail'])
        self.assertEqual('finish the zeroing (resize)', problem['Fix'])
        others = [n for n in STORAGE if n != first]
        for node in others:
            self.assertIn(('divergent-res', node, VOL_A), found)
        mark = len(self.cluster.requests)
        found = self.check('--fix', expect=0)
        steps = [(n, r['op']) for n, r in self.cluster.requests[mark:]
                 if r['op'] in ('resize', 'adjust')]
        # the zeroing first, whichever problem --fix took first
        self.assertEqual((first, 'resize'), steps[0])
        self.assertEqual(sorted((n, 'adjust') for n in others),
                         sorted(steps[1:]))
        self.assertIsNone(self.agent(first)._pending(VOL_A))
        self.assertEqual({}, self.check(expect=0))

    def test_pending_zeroing_that_cannot_finish_blocks_the_push(self):
        first = self.half_done_extend()
        self.agent(first).held.add(VOL_A)
        found = self.check('--fix', expect=1)
        self.assertIn('zeroing pending, not finished',
                      found[('zeroing-pending', first, VOL_A)]['Result'])
        for node in STORAGE:
            if node != first:
                self.assertEqual('1048576k', fakes.parse_res(
                    self.agent(node).res[VOL_A][0])['disk']['size'])

    def test_cinder_volumes(self):
        self.two_volumes()
        self.agent('n1').lvs['volume-orphan'] = G
        path = self.write('vols.json', json.dumps([VOL_A]))
        found = self.check('--cinder-volumes', path, expect=1)
        self.assertEqual({('no-cinder-volume', 'n1, n2, n3', VOL_B),
                          ('no-cinder-volume', 'n1', 'volume-orphan'),
                          ('orphan-lv', 'n1', 'volume-orphan')}, set(found))
        # IDs and "openstack volume list -f json" objects work too.
        path = self.write('vols2.json', json.dumps(
            ['aaaa', {'ID': 'bbbb', 'Name': 'my disk'},
             {'ID': 'x', 'name_id': 'orphan'}]))
        self.assertEqual({('orphan-lv', 'n1', 'volume-orphan')},
                         set(self.check('--cinder-volumes', path)))

    def test_orphan_lv_of_a_cinder_volume_kept(self):
        self.agent('n1').lvs['volume-orphan'] = G
        path = self.write('vols.json', json.dumps(['volume-orphan']))
        found = self.check('--cinder-volumes', path, '--fix',
                           '--fix-orphan-lvs', expect=1)
        self.assertIn('a Cinder volume has this name',
                      found[('orphan-lv', 'n1', 'volume-orphan')]['Detail'])
        self.assertIn('volume-orphan', self.agent('n1').lvs)

    def test_bad_cinder_volumes_file(self):
        path = self.write('vols.json', '{"not": "a list"}')
        code, _out, err = self.run_main('check', '--cinder-volumes', path)
        self.assertEqual(2, code)
        self.assertIn('not a JSON list', err)

    def test_table_and_yaml(self):
        self.plant()
        code, out, _err = self.run_main('check')
        self.assertEqual(1, code)
        self.assertIn('clone-volume-cccc', out)
        code, out, _err = self.run_main('check', '-f', 'yaml')
        kinds = {p['Kind'] for p in yaml.safe_load(out)}
        self.assertIn('orphan-lv', kinds)


class FormatTest(base.TestCase):

    def test_multiline_cells_aligned(self):
        text = manage.render_table(
            ('A', 'Long heading'),
            [('x', {'n1': 'UpToDate', 'n2': 'Inconsistent'}),
             (1.5, ['a', 'b']), (None, True)])
        lines = text.splitlines()
        self.assertEqual({len(lines[0])}, {len(x) for x in lines})
        self.assertIn('| x    | n1=UpToDate     |', text)
        self.assertIn('|      | n2=Inconsistent |', text)
        self.assertIn('| 1.50 | a, b ', text)
        self.assertIn('True', text)

    def test_show_formats(self):
        data = {'Name': 'r', 'Nodes': {'n1': {'disk': 'UpToDate'}}}
        self.assertEqual(data, json.loads(manage.format_show(data, 'json')))
        self.assertEqual(data, yaml.safe_load(manage.format_show(data,
                                                                 'yaml')))
        table = manage.format_show(data, 'table')
        self.assertIn('| Nodes | n1:             |\n'
                      '|       |   disk=UpToDate |', table)
        self.assertEqual({'Name': 'r'}, json.loads(
            manage.format_show(data, 'json', ['name'])))

    def test_public_drops_secrets(self):
        self.assertEqual({'net': {'protocol': 'C'}, 'hosts': [{'a': 1}]},
                         manage._public({'secret': 's', 'net': {
                             'protocol': 'C', 'shared-secret': 's'},
                             'hosts': [{'a': 1, 'Secret': 'x'}]}))
