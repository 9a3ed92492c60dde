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

"""Unit tests of ``cluster/stats.py``, through the Controller facade."""

import json
import re
from unittest import mock

import ddt

from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit import base
from tests.unit.cluster.test_controller import ControllerTestCase
from tests.unit.cluster.test_controller import G
from tests.unit.cluster.test_controller import make
from tests.unit.cluster.test_controller import VOL


@ddt.ddt
class StatsTest(base.TestCase):

    @ddt.data(
        # sizes of 3 nodes (GiB), replicas, expected total/free (GiB)
        ((100, 200, 300), 1, 600),
        ((100, 200, 300), 2, 300),
        ((100, 200, 300), 3, 100),
        ((50, 50, 400), 2, 100),
    )
    @ddt.unpack
    def test_capacity(self, sizes, replicas, expected):
        cluster, controller = make(sizes=sizes, replicas=replicas,
                                   clients=())
        stats = controller.stats()
        self.assertEqual(expected * G, stats.total_bytes)
        self.assertEqual(expected * G, stats.free_bytes)

    def test_free_follows_physical_use_and_provisioned_counts_once(self):
        cluster, controller = make(sizes=(100, 100, 100), clients=())
        controller.create_volume(VOL, 10 * G)
        for agent in cluster.agents.values():
            agent.written_bytes = 30 * G
        stats = controller.stats()
        self.assertEqual(100 * G, stats.total_bytes)
        self.assertEqual(70 * G, stats.free_bytes)
        self.assertEqual(10 * G, stats.provisioned_bytes)
        self.assertEqual(1, stats.total_volumes)
        self.assertEqual((), stats.degraded_volumes)

    def test_provisioned_counts_volume_sizes_not_lvs(self):
        cluster, controller = make(clients=())
        controller.create_volume('volume-a', 10 * G)
        controller.create_volume('volume-b', 2 * G, replicas=2)
        for agent in cluster.agents.values():
            # what the agent makes: metadata and extent rounding on top
            for name in agent.lvs:
                agent.lvs[name] += 4 << 20
        stats = controller.stats()
        self.assertEqual(12 * G, stats.provisioned_bytes)
        self.assertEqual(2, stats.total_volumes)

    def test_provisioned_counts_lv_of_a_resource_without_size(self):
        cluster, controller = make(clients=())
        controller.create_volume('volume-a', 10 * G)
        controller.create_volume('volume-b', 2 * G)
        for agent in cluster.agents.values():
            agent.lvs['volume-a'] += 4 << 20
            agent.lvs['volume-b'] += 4 << 20
            text, secret = agent.res['volume-b']
            agent.res['volume-b'] = (re.sub(r'    disk \{[^}]*\}\n', '',
                                            text), secret)
        stats = controller.stats()
        self.assertEqual(12 * G + (4 << 20), stats.provisioned_bytes)

    def test_one_inventory_per_node_whatever_the_volumes(self):
        cluster, controller = make(clients=())
        for i in range(5):
            controller.create_volume(f'volume-{i}', G)
        cluster.requests.clear()
        controller.stats()
        self.assertEqual(['n1', 'n2', 'n3'],
                         sorted(n for n, _ in cluster.requests))

    def test_node_down_shows_degraded(self):
        cluster, controller = make(clients=())
        controller.create_volume(VOL, G)
        cluster.down.add('n3')
        stats = controller.stats()
        self.assertIn('n3', stats.nodes_down)
        self.assertEqual((VOL,), stats.degraded_volumes)
        # 3 replicas by default, 2 nodes: capacity for what fits there
        self.assertEqual(2, stats.capacity_replicas)
        self.assertEqual(100 * G, stats.free_bytes)
        self.assertEqual(100 * G, stats.total_bytes)

    def test_capacity_is_for_the_default_replicas_when_they_fit(self):
        cluster, controller = make(clients=())
        stats = controller.stats()
        self.assertEqual(3, stats.capacity_replicas)
        self.assertEqual(100 * G, stats.free_bytes)
        cluster.down.update({'n2', 'n3'})
        stats = controller.stats()
        self.assertEqual(1, stats.capacity_replicas)
        self.assertEqual(100 * G, stats.free_bytes)
        cluster.down.add('n1')
        stats = controller.stats()
        self.assertEqual(0, stats.free_bytes)
        self.assertEqual(0, stats.total_bytes)

    def test_check_setup_reports_per_node(self):
        cluster, controller = make(clients=())
        cluster.down.add('n2')
        cluster.agents['n3'].pool = 'vg/other'
        problems = controller.check_setup()
        self.assertEqual({'n2', 'n3'}, set(problems))
        self.assertIn('vg/pool', problems['n3'])


class CompactInventoryTest(ControllerTestCase):
    """Stats ask the compact inventory and report what the full gives."""

    def inventories(self):
        found = [(node, bool(req.get('compact')), bool(req.get('brief')))
                 for node, req in self.cluster.requests
                 if req['op'] == 'inventory']
        self.cluster.requests.clear()
        return found

    def test_stats_ask_compact(self):
        self.ctl.create_volume(VOL, G)
        self.inventories()
        self.ctl.stats()
        self.assertEqual({(n, True, False) for n in
                          ('n1', 'n2', 'n3', 'hv1', 'hv2')},
                         set(self.inventories()))

    def test_agent_without_compact_asked_the_full_inventory(self):
        self.ctl.create_volume(VOL, G)
        self.inventories()
        self.cluster.faults[('n2', 'inventory')] = [tp.NodeError(
            'n2', protocol.E_INVALID, 'compact: not a field of inventory',
            'compact')]
        stats = self.ctl.stats()
        self.assertEqual([('n2', True, False), ('n2', False, False)],
                         [f for f in self.inventories() if f[0] == 'n2'])
        self.assertEqual({}, stats.nodes_down)
        self.assertEqual(1, stats.total_volumes)

    def test_same_stats_as_from_full_inventories(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.create_volume('volume-b', 2 * G, replicas=2)
        self.ctl.create_volume('volume-c', G)
        # volume-c degraded: a replica not UpToDate
        self.cluster.agents['n3'].uptodate.discard('volume-c')
        # VOL divergent: hv1 fenced at detach keeps its .res
        self.ctl.attach(VOL, 'hv1')
        self.cluster.down.add('hv1')
        self.ctl.detach(VOL, 'hv1')
        self.cluster.down.discard('hv1')
        compact = self.ctl.stats()
        real = core.Core.survey

        def full(ctl, brief=False, compact=False):
            return real(ctl, brief)

        with mock.patch.object(core.Core, 'survey', autospec=True,
                               side_effect=full):
            whole = self.ctl.stats()
        self.assertEqual(whole, compact)
        self.assertEqual(('volume-c',), compact.degraded_volumes)
        self.assertEqual((VOL,), compact.divergent_volumes)
        self.assertEqual(3, compact.total_volumes)
        self.assertEqual(4 * G, compact.provisioned_bytes)

    def test_compact_entries_one_per_resource_and_smaller(self):
        for i in range(10):
            self.ctl.create_volume(f'volume-{i}', G)
        agent = self.cluster.agents['n1']
        full = agent.op_inventory({'op': 'inventory'})
        small = agent.op_inventory({'op': 'inventory', 'compact': True})
        self.assertEqual(10, len(small['resources']))
        self.assertEqual(sorted(full['resources']),
                         sorted(small['resources']))
        self.assertLess(len(json.dumps(small['resources'])),
                        len(json.dumps(full['resources'])))
        for entry in small['resources'].values():
            self.assertNotIn('options', entry['definition'])
