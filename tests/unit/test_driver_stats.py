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
"""The driver's stats and the repairs they trigger, on a fake cluster."""

import time
from unittest import mock

from cinder import exception

from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import driver
from blackstor_cinder import driver_stats
from tests.unit.cluster import fakes
from tests.unit import test_driver

G = 1 << 30
STATS_LOG = test_driver.STATS_LOG


class StatsTest(test_driver.DriverTestCase):

    def test_stats(self):
        self.drv.create_volume(self.volume(size=5))
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(test_driver.BACKEND, stats['volume_backend_name'])
        self.assertEqual('DRBD', stats['storage_protocol'])
        self.assertEqual(driver.BlackStorDriver.VERSION,
                         stats['driver_version'])
        self.assertEqual(100.0, stats['total_capacity_gb'])
        self.assertEqual(100.0, stats['free_capacity_gb'])
        self.assertEqual(5.0, stats['provisioned_capacity_gb'])
        self.assertEqual(1, stats['total_volumes'])
        self.assertTrue(stats['thin_provisioning_support'])
        self.assertEqual(20.0, stats['max_over_subscription_ratio'])
        self.assertIn('vg/pool', stats['location_info'])
        self.assertEqual([], stats['blackstor_nodes_down'])

    def test_no_online_extend(self):
        # Nova's LibvirtVolumeDriver ('local') cannot grow an attached
        # volume: Cinder's scheduler refuses in-use extends on False.
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertIs(False, stats['online_extend_support'])

    def test_multiattach_only_when_the_operator_opts_in(self):
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertIs(False, stats['multiattach'])
        self.config(blackstor_multiattach=True)
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertIs(True, stats['multiattach'])

    def test_room_left_in_the_ranges(self):
        self.drv.create_volume(self.volume(size=1))
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(18999, stats['blackstor_minors_free'])
        self.assertEqual(999, stats['blackstor_ports_free'])

    def test_little_room_left_is_logged(self):
        self.config(blackstor_port_range='7000-7009')
        self.drv = self.make_driver()
        self.drv.create_volume(self.volume(size=1))
        with self.assertLogs(STATS_LOG, 'WARNING') as logs:
            stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(9, stats['blackstor_ports_free'])
        self.assertIn('room for 9 more volume(s)', logs.output[0])
        self.assertIn('blackstor_port_range', logs.output[0])

    def test_provisioned_is_what_volumes_were_asked_for(self):
        for _ in range(3):
            self.drv.create_volume(self.volume(size=10))
        for agent in self.cluster.agents.values():
            for name in agent.lvs:      # metadata + extent rounding
                agent.lvs[name] += 40 << 20
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(30.0, stats['provisioned_capacity_gb'])
        self.assertEqual(3, stats['total_volumes'])

    def test_stats_with_a_node_on_an_old_drbd(self):
        self.cluster.agents['n2'].kernel_version = '9.2.12'
        with self.assertLogs(STATS_LOG, 'WARNING') as logs:
            stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(['n2'], stats['blackstor_nodes_refused'])
        self.assertEqual([], stats['blackstor_nodes_down'])
        self.assertEqual(2, stats['blackstor_capacity_replicas'])
        self.assertIn('n2', logs.output[0])
        self.assertIn('9.2.12', logs.output[0])

    def test_stats_with_node_down(self):
        # 3 replicas by default: with 2 nodes left the capacity is what
        # types of 2 replicas can still place (the scheduler lets them
        # through; a create that needs 3 fails in placement)
        self.cluster.down.add('n1')
        with self.assertLogs(STATS_LOG, 'WARNING') as logs:
            stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(100.0, stats['free_capacity_gb'])
        self.assertEqual(100.0, stats['total_capacity_gb'])
        self.assertEqual(2, stats['blackstor_capacity_replicas'])
        self.assertEqual(['n1'], stats['blackstor_nodes_down'])
        self.assertIn('can place 2 replica(s) only, fewer than '
                      'blackstor_replicas (3)', logs.output[-1])
        self.drv.create_volume(self.volume(**{driver.SPEC_REPLICAS: '2'}))
        self.assertRaises(exception.VolumeBackendAPIException,
                          self.drv.create_volume, self.volume())

    def test_stats_heal_a_node_down_longer_than_heal_after(self):
        # Four storage nodes: two replicas, the tiebreaker, one free.
        nodes = ('n1', 'n2', 'n3', 'n4')
        self.config(blackstor_storage_nodes=list(nodes),
                    blackstor_ssh_addresses={'n1': '192.0.2.1',
                                             'n2': '192.0.2.2',
                                             'n3': '192.0.2.3',
                                             'n4': '192.0.2.4',
                                             'hv1': '192.0.2.9'},
                    blackstor_node_zones={'n1': 'a', 'n2': 'b', 'n3': 'c',
                                          'n4': 'd'})
        self.cluster.add('n4', pool_bytes=100 * G)
        self.drv = self.make_driver()
        self.drv.create_volume(self.volume(**{driver.SPEC_REPLICAS: '2'}))
        name = next(iter(self.cluster.agents['n1'].res))
        holders = sorted(n for n in nodes
                         if name in self.cluster.agents[n].lvs)
        self.assertEqual(2, len(holders))
        tiebreaker = self.drv.controller.find(name).spec.tiebreaker_host
        free = next(n for n in nodes
                    if n not in holders and n != tiebreaker.name)
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertIsNone(stats['blackstor_healing'])     # off by default
        self.config(blackstor_heal_after=1)
        self.cluster.down.add(holders[0])
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(1, stats['blackstor_degraded_volumes'])
        self.assertEqual(0, stats['blackstor_healing']['total'])
        time.sleep(1.1)
        self.drv.get_volume_stats(refresh=True)
        self.drv.reporter.auto_heal.wait(10)
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual({'node': holders[0], 'total': 1, 'done': 1,
                          'failed': 0, 'running': 0},
                         stats['blackstor_healing'])
        self.assertEqual(0, stats['blackstor_degraded_volumes'])
        self.assertIn(name, self.cluster.agents[free].uptodate)

    def stale_replica(self):
        """A volume attached to hv1 while n3 kept its old .res."""
        self.drv.create_volume(self.volume(size=1))
        name = next(iter(self.cluster.agents['n1'].res))
        n3 = self.cluster.agents['n3']
        old = n3.res[name]
        self.drv.controller.attach(name, 'hv1')
        n3.res[name] = old
        return name

    def clients_on(self, node, name):
        text = self.cluster.agents[node].res[name][0]
        return [h['name'] for h in fakes.parse_res(text)['hosts']
                if not h['diskful']]

    def test_stats_remove_the_tiebreaker_of_a_volume_deleted_meanwhile(self):
        vol = self.volume(**{driver.SPEC_REPLICAS: '2'})
        self.drv.create_volume(vol)
        name = next(iter(self.cluster.agents['n1'].res))
        node = self.drv.controller.find(name).spec.tiebreaker_host.name
        self.cluster.down.add(node)
        self.drv.delete_volume(vol)
        self.assertIn(name, self.cluster.agents[node].res)
        self.cluster.down.discard(node)
        self.drv.get_volume_stats(refresh=True)
        self.assertEqual({}, self.cluster.clean())

    def test_stats_repair_a_divergent_res(self):
        name = self.stale_replica()
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(1, stats['blackstor_divergent_volumes'])
        self.assertEqual(['hv1'], self.clients_on('n3', name))
        self.assertEqual('n3', self.cluster.ops('adjust')[-1])
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(0, stats['blackstor_divergent_volumes'])

    def test_stats_repair_a_client_left_with_two_primaries(self):
        vol = self.volume(size=1)
        self.drv.create_volume(vol)
        self.drv.initialize_connection(vol, {'host': 'hv1'})
        self.drv.initialize_connection(vol, {'host': 'hv2',
                                             'ip': '192.0.2.10'})
        # the source's agent misses the detach's adjust
        self.cluster.faults[('hv1', 'adjust')] = [tp.NodeTimeout(
            'hv1', 'no answer')]
        self.drv.terminate_connection(vol, {'host': 'hv2'})

        def two_primaries(node):
            return fakes.parse_res(self.cluster.agents[node].res[
                vol.name][0])['net'].get('allow-two-primaries')
        self.assertIsNone(two_primaries('n1'))
        self.assertEqual('yes', two_primaries('hv1'))
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(1, stats['blackstor_divergent_volumes'])
        self.assertIsNone(two_primaries('hv1'))
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(0, stats['blackstor_divergent_volumes'])

    def test_stats_make_a_missing_tiebreaker(self):
        vol = self.volume(size=1, **{'blackstor:replicas': '2'})
        # the only third node is down at the create: none is made
        self.cluster.down.add('n3')
        self.drv.create_volume(vol)
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(1, stats['blackstor_volumes_without_tiebreaker'])
        self.assertEqual(0, stats['blackstor_degraded_volumes'])
        self.cluster.down.discard('n3')
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(['n3'], self.clients_on('n1', vol.name))
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(0, stats['blackstor_volumes_without_tiebreaker'])

    def test_no_repair_without_divergence(self):
        self.drv.create_volume(self.volume(size=1))
        with mock.patch.object(driver_stats.reconcile, 'reconcile') as repair:
            stats = self.drv.get_volume_stats(refresh=True)
        repair.assert_not_called()
        self.assertEqual(0, stats['blackstor_divergent_volumes'])

    def test_auto_repair_off(self):
        self.config(blackstor_auto_repair=False)
        name = self.stale_replica()
        before = len(self.cluster.ops('adjust'))
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(1, stats['blackstor_divergent_volumes'])
        self.assertEqual([], self.clients_on('n3', name))
        self.assertEqual(before, len(self.cluster.ops('adjust')))

    def test_repair_error_does_not_fail_stats(self):
        name = self.stale_replica()
        with mock.patch.object(driver_stats.reconcile, 'reconcile',
                               side_effect=RuntimeError('boom')) as repair:
            stats = self.drv.get_volume_stats(refresh=True)
        repair.assert_called_once_with(self.drv.controller, (name,))
        self.assertEqual(1, stats['blackstor_divergent_volumes'])
        self.assertEqual(100.0, stats['total_capacity_gb'])
        # An agent failing the push is an outcome, not an exception.
        self.cluster.faults[('n3', 'adjust')] = RuntimeError('agent boom')
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(1, stats['blackstor_divergent_volumes'])
        self.assertEqual([], self.clients_on('n3', name))

    def clone_snapshot_left_on_n3(self):
        src = self.volume(size=1)
        self.drv.create_volume(src)
        clone = self.volume(size=1)
        temp = f'clone-{clone.name}'
        self.cluster.faults[('n3', 'snapshot-delete')] = [
            tp.NodeUnreachable('n3', 'connection refused')]
        self.drv.create_cloned_volume(clone, src)
        self.assertIn(temp, self.cluster.agents['n3'].snapshots)
        return temp

    def test_stats_remove_a_clone_snapshot_left_behind(self):
        temp = self.clone_snapshot_left_on_n3()
        self.drv.get_volume_stats(refresh=True)
        self.assertEqual({}, self.cluster.agents['n3'].snapshots)
        self.assertEqual('n3', [n for n, r in self.cluster.requests
                                if r['op'] == 'snapshot-delete'
                                and r['snapshot'] == temp][-1])

    def test_clone_snapshot_kept_with_auto_repair_off(self):
        self.config(blackstor_auto_repair=False)
        temp = self.clone_snapshot_left_on_n3()
        self.drv.get_volume_stats(refresh=True)
        self.assertIn(temp, self.cluster.agents['n3'].snapshots)

    def test_gib_rounds_down(self):
        self.assertEqual(1.99, driver_stats._gib(2 * G - 1))
        self.assertEqual(0.0, driver_stats._gib(G // 200))
