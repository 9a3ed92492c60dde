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
"""nodes list, resources list, resource show."""

import json

from tests.unit.cluster import fakes
from tests.unit.manage import fakes as mf


class NodesListTest(mf.ManageTestCase):

    def test_json_has_every_node(self):
        self.two_volumes()
        self.agent('n2').written_bytes = 25 * mf.G
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

    def test_unreachable_node_shown_as_such(self):
        self.cluster.down.add('n3')
        rows = {r['Name']: r for r in self.run_json('nodes', 'list')}
        self.assertEqual('unreachable', rows['n3']['State'])
        self.assertIn('connection refused', rows['n3']['Problem'])
        self.assertIsNone(rows['n3']['Free GiB'])
        self.assertEqual('up', rows['n1']['State'])

    def test_every_node_down_is_an_error(self):
        self.cluster.down.update(mf.STORAGE + ('hv1',))
        code, out, err = self.run_main('nodes', 'list', '-f', 'json')
        self.assertEqual(1, code)
        self.assertEqual(4, len(json.loads(out)))
        self.assertIn('no node answered', err)

    def test_node_problems(self):
        self.agent('n1').pool = 'vg/other'
        rows = {r['Name']: r for r in self.run_json('nodes', 'list')}
        self.assertIn('thin pool vg/pool not found', rows['n1']['Problem'])


class ResourcesTest(mf.ManageTestCase):

    def test_resources_list(self):
        self.two_volumes()
        rows = {r['Name']: r for r in self.run_json('resources', 'list')}
        self.assertEqual({mf.VOL_A, mf.VOL_B}, set(rows))
        a = rows[mf.VOL_A]
        self.assertEqual(['n1', 'n2', 'n3'], a['Replicas'])
        self.assertEqual(['hv1'], a['Clients'])
        self.assertEqual({'n1': 'UpToDate', 'n2': 'UpToDate',
                          'n3': 'UpToDate'}, a['Disk States'])
        self.assertFalse(a['Degraded'])
        self.assertEqual([], a['Problems'])
        self.assertNotEqual(a['Minor'], rows[mf.VOL_B]['Minor'])
        self.assertNotEqual(a['Port'], rows[mf.VOL_B]['Port'])
        self.assertEqual([], rows[mf.VOL_B]['Clients'])

    def test_degraded_and_out_of_sync(self):
        self.two_volumes()
        self.cluster.down.add('n3')
        inner = self.agent('n1')._state

        def state(name):
            st = inner(name)
            if st and name == mf.VOL_B:
                st['connections'][0]['peer_devices'][0]['out-of-sync'] = 8
            return st
        self.agent('n1')._state = state
        code, out, err = self.run_main('resources', 'list', '-f', 'json')
        self.assertEqual(0, code)
        self.assertIn('n3 unreachable', err)
        rows = {r['Name']: r for r in json.loads(out)}
        a = rows[mf.VOL_A]
        self.assertTrue(a['Degraded'])
        self.assertEqual('unreachable', a['Disk States']['n3'])
        self.assertIn('n1: Connecting to n3', a['Problems'])
        self.assertEqual(8 * 1024, rows[mf.VOL_B]['Out Of Sync'])
        self.assertIsNone(a['Out Of Sync'])

    def test_divergent_res_marked(self):
        self.two_volumes()
        text, secret = self.agent('n3').res[mf.VOL_B]
        port = fakes.parse_res(text)['hosts'][0]['port']
        self.agent('n3').res[mf.VOL_B] = (
            text.replace(f':{port};', f':{port + 50};'), secret)
        rows = {r['Name']: r for r in self.run_json('resources', 'list')}
        self.assertEqual(port, rows[mf.VOL_B]['Port'])
        self.assertTrue(rows[mf.VOL_B]['Degraded'])
        self.assertIn('.res differs on n3', rows[mf.VOL_B]['Problems'])

    def test_show_without_secret(self):
        self.two_volumes()
        secret = self.agent('n1').res[mf.VOL_A][1]
        for fmt in ('table', 'json', 'yaml', 'shell', 'value'):
            code, out, err = self.run_main('resource', 'show', mf.VOL_A,
                                           '-f', fmt)
            self.assertEqual(0, code, err)
            self.assertNotIn(secret, out)
            self.assertNotIn(secret, err)
        shown = self.run_json('resource', 'show', mf.VOL_A)
        self.assertEqual(mf.VOL_A, shown['Name'])
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
