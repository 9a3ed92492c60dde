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
"""The tiebreaker of two-replica volumes, through the controller's flows."""

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import tiebreaker
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder.node import resrender
from blackstor_cinder import protocol
from blackstor_cinder.protocol import spec as protocol_spec
from tests.unit import base
from tests.unit.cluster import fakes
from tests.unit.cluster.test_controller import make

G = 1 << 30
VOL = 'volume-0001'


class TiebreakerTestCase(base.TestCase):

    nodes = ('n1', 'n2', 'n3')
    zones = None
    sizes = None
    config: dict = {}

    def setUp(self):
        super().setUp()
        self.cluster, self.ctl = make(nodes=self.nodes, zones=self.zones,
                                      sizes=self.sizes, replicas=2,
                                      **self.config)
        self.addCleanup(self.ctl.close)

    def agent(self, node):
        return self.cluster.agents[node]

    def hosts(self, node, name=VOL):
        """{host: (diskful, tiebreaker)} of ``node``'s .res."""
        return {h['name']: (h['diskful'], h['tiebreaker'])
                for h in fakes.parse_res(self.agent(node).res[name][0])[
                    'hosts']}

    def replicas(self, spec):
        return sorted(h.name for h in spec.diskful_hosts)


class CreateTest(TiebreakerTestCase):

    def test_two_replicas_get_a_tiebreaker_on_the_third_node(self):
        spec = self.ctl.create_volume(VOL, G)
        self.assertEqual(['n1', 'n2'], self.replicas(spec))
        self.assertEqual('n3', spec.tiebreaker_host.name)
        self.assertEqual(2, spec.tiebreaker_host.node_id)
        # every node's .res says so; n3 runs it diskless, without an LV
        want = {'n1': (True, False), 'n2': (True, False),
                'n3': (False, True)}
        for node in self.nodes:
            self.assertEqual(want, self.hosts(node), node)
        self.assertIn(VOL, self.agent('n3').up)
        self.assertEqual({}, self.agent('n3').lvs)
        # the replicas only were created; the tiebreaker came up by adjust
        self.assertEqual(['n1', 'n2'], sorted(self.cluster.ops('create')))
        self.assertIn(('n3', 'adjust'), [(n, r['op']) for n, r in
                                         self.cluster.requests])
        # the same minor and port everywhere, as read back
        self.assertEqual(spec, self.ctl.find(VOL).spec.with_hosts(
            spec.hosts, secret=spec.secret))

    def test_three_replicas_get_none(self):
        spec = self.ctl.create_volume(VOL, G, replicas=3)
        self.assertIsNone(spec.tiebreaker_host)
        self.assertEqual((), spec.diskless_hosts)

    def test_stats_not_degraded_none_missing(self):
        self.ctl.create_volume(VOL, G)
        stats = self.ctl.stats()
        self.assertEqual((), stats.degraded_volumes)
        self.assertEqual((), stats.without_tiebreaker)
        self.assertEqual(1, stats.total_volumes)
        self.assertEqual(G, stats.provisioned_bytes)

    def test_delete_removes_it(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())
        self.assertNotIn(VOL, self.agent('n3').up)

    def test_tiebreaker_node_failing_leaves_the_volume_without(self):
        self.cluster.faults[('n3', 'adjust')] = [
            tp.NodeError('n3', protocol.E_FAILED, 'adjust failed')]
        spec = self.ctl.create_volume(VOL, G)
        self.assertIsNone(spec.tiebreaker_host)
        # the replicas took their old .res back; nothing left on n3
        for node in ('n1', 'n2'):
            self.assertEqual({'n1': (True, False), 'n2': (True, False)},
                             self.hosts(node))
        self.assertNotIn(VOL, self.agent('n3').res)
        self.assertEqual((VOL,), self.ctl.stats().without_tiebreaker)
        # the periodic repair makes it
        self.assertEqual('tiebreaker placed on n3',
                         self.ctl.ensure_tiebreaker(VOL))
        self.assertEqual('n3', self.ctl.find(VOL).spec.tiebreaker_host.name)
        self.assertEqual((), self.ctl.stats().without_tiebreaker)


class DeleteWhileDownTest(TiebreakerTestCase):

    def test_delete_with_the_tiebreaker_node_down_succeeds(self):
        spec = self.ctl.create_volume(VOL, G)
        node = spec.tiebreaker_host.name
        self.cluster.down.add(node)
        self.ctl.delete_volume(VOL)      # no data there: not needed
        left = self.cluster.clean()
        for name in self.replicas(spec):
            self.assertNotIn(name, left)
        self.assertIn(VOL, self.agent(node).res)
        # down: nothing is called an orphan while a node is missing
        self.assertEqual({}, self.ctl.stats().orphan_tiebreakers)
        self.cluster.down.discard(node)
        stats = self.ctl.stats()
        self.assertEqual({VOL: node}, stats.orphan_tiebreakers)
        self.assertEqual({VOL: f'removed from {node}'},
                         self.ctl.remove_orphan_tiebreakers(
                             stats.orphan_tiebreakers))
        self.assertEqual({}, self.cluster.clean())
        self.assertEqual({}, self.ctl.stats().orphan_tiebreakers)

    def test_a_live_volume_is_no_orphan(self):
        spec = self.ctl.create_volume(VOL, G)
        self.assertEqual({}, self.ctl.stats().orphan_tiebreakers)
        node = spec.tiebreaker_host.name
        # a stale stats result: the volume is there, so it is kept
        self.assertEqual({VOL: 'kept: the volume is not gone'},
                         self.ctl.remove_orphan_tiebreakers({VOL: node}))
        self.assertIn(VOL, self.agent(node).res)

    def test_a_replica_down_still_fails_the_delete(self):
        spec = self.ctl.create_volume(VOL, G)
        self.cluster.down.add(self.replicas(spec)[0])
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.delete_volume, VOL)


class TwoNodesTest(TiebreakerTestCase):

    nodes = ('n1', 'n2')

    def test_created_without_one_and_reported(self):
        with self.assertLogs('blackstor_cinder.cluster.tiebreaker',
                             'WARNING') as logs:
            spec = self.ctl.create_volume(VOL, G)
        self.assertIsNone(spec.tiebreaker_host)
        self.assertIn('has two replicas and no tiebreaker',
                      '\n'.join(logs.output))
        stats = self.ctl.stats()
        self.assertEqual((VOL,), stats.without_tiebreaker)
        self.assertEqual((), stats.degraded_volumes)
        self.assertEqual(
            'unchanged: no tiebreaker could be placed (see the log)',
            self.ctl.ensure_tiebreaker(VOL))


class ZonesTest(TiebreakerTestCase):

    nodes = ('n1', 'n2', 'n3', 'n4')
    zones = {'n1': 'a', 'n2': 'b', 'n3': 'a', 'n4': 'c'}
    # the replicas go to n1 and n2 (most room)
    sizes = (200, 200, 100, 100)

    def test_another_zone_than_the_replicas(self):
        spec = self.ctl.create_volume(VOL, G, zone_policy='spread')
        self.assertEqual(['n1', 'n2'], self.replicas(spec))
        # n3 has fewer resources and sorts first, but is in zone a
        self.assertEqual('n4', spec.tiebreaker_host.name)

    def test_same_zone_when_no_other(self):
        self.cluster.down.add('n4')
        spec = self.ctl.create_volume(VOL, G, zone_policy='spread')
        self.assertEqual('n3', spec.tiebreaker_host.name)


class AttachDetachTest(TiebreakerTestCase):

    def setUp(self):
        super().setUp()
        self.ctl.create_volume(VOL, G)

    def test_detach_keeps_it(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.detach(VOL, 'hv1')
        spec = self.ctl.find(VOL).spec
        self.assertEqual('n3', spec.tiebreaker_host.name)
        self.assertEqual((), spec.client_hosts)
        self.assertIn(VOL, self.agent('n3').up)
        # a detach of every client (force detach) keeps it too
        self.ctl.attach(VOL, 'hv1')
        self.ctl.detach(VOL, None, force=True)
        self.assertEqual('n3', self.ctl.find(VOL).spec.tiebreaker_host.name)
        self.assertNotIn('n3', self.cluster.ops('detach'))
        self.assertIn(VOL, self.agent('n3').up)

    def test_not_a_user_for_two_primaries(self):
        spec = self.ctl.find(VOL).spec
        self.ctl.attach(VOL, 'hv1')
        self.assertFalse(self.ctl.find(VOL).spec.allow_two_primaries)
        self.assertTrue(all(not fakes.parse_res(self.agent(n).res[VOL][0])[
            'net'] for n in ('n1', 'n2', 'n3', 'hv1')))
        # a live migration: two clients do turn it on
        self.ctl.attach(VOL, 'hv2')
        self.assertTrue(self.ctl.find(VOL).spec.allow_two_primaries)
        self.ctl.detach(VOL, 'hv1')
        after = self.ctl.find(VOL).spec
        self.assertFalse(after.allow_two_primaries)
        self.assertEqual(spec.tiebreaker_host, after.tiebreaker_host)

    def test_clients_get_the_tiebreaker_in_their_res(self):
        self.ctl.attach(VOL, 'hv1')
        self.assertEqual({'n1': (True, False), 'n2': (True, False),
                          'n3': (False, True), 'hv1': (False, False)},
                         self.hosts('hv1'))
        self.assertEqual((), self.ctl.stats().divergent_volumes)

    def test_attach_on_its_node_makes_it_the_client_there(self):
        path = self.ctl.attach(VOL, 'n3')
        self.assertEqual(f'/dev/drbd/by-res/{VOL}/0', path)
        spec = self.ctl.find(VOL).spec
        self.assertIsNone(spec.tiebreaker_host)
        self.assertEqual(['n3'], [h.name for h in spec.client_hosts])
        self.assertEqual(2, spec.host('n3').node_id)    # never changes
        # it still is the third vote: no second tiebreaker is made
        self.assertEqual((), self.ctl.stats().without_tiebreaker)
        self.assertEqual('tiebreaker on n3', self.ctl.ensure_tiebreaker(VOL))
        # a live migration to hv1: two users
        self.ctl.attach(VOL, 'hv1')
        self.assertTrue(self.ctl.find(VOL).spec.allow_two_primaries)
        self.ctl.detach(VOL, 'hv1')
        self.ctl.detach(VOL, 'n3')
        spec = self.ctl.find(VOL).spec
        # the tiebreaker again, still up, its agent never asked to detach
        self.assertEqual('n3', spec.tiebreaker_host.name)
        self.assertFalse(spec.allow_two_primaries)
        self.assertIn(VOL, self.agent('n3').up)
        self.assertNotIn('n3', self.cluster.ops('detach'))
        for node in ('n1', 'n2', 'n3'):
            self.assertEqual((False, True), self.hosts(node)['n3'], node)

    def test_snapshot_does_not_suspend_it(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        # its node is asked (every storage node's suspend reports the
        # volume there) and suspends nothing, as its .res names it
        self.assertEqual(['n1', 'n2'], sorted(
            n for n, op in self.cluster.log if op == 'suspend-io'))
        self.assertEqual(['n1', 'n2'], sorted(self.cluster.ops('resume-io')))
        self.assertEqual(set(), self.cluster.agents['n3'].suspended)
        # its node unreachable does not stop a snapshot either
        self.cluster.down.add('n3')
        self.ctl.create_snapshot(VOL, 'snap-2')

    def test_lost_node_replaced(self):
        self.cluster.add('n4')
        self.ctl.config = model.ClusterConfig(
            storage_nodes=self.ctl.config.storage_nodes + (
                model.Node('n4', '10.0.0.4', ssh_host='n4'),),
            client_nodes=self.ctl.config.client_nodes,
            pool='vg/pool', replicas=2, minors=self.ctl.config.minors,
            ports=self.ctl.config.ports)
        self.cluster.down.add('n3')
        self.assertEqual('tiebreaker placed on n4',
                         self.ctl.ensure_tiebreaker(VOL, lost=['n3']))
        spec = self.ctl.find(VOL).spec
        self.assertEqual('n4', spec.tiebreaker_host.name)
        self.assertIsNone(spec.host('n3'))
        self.assertIn(VOL, self.agent('n4').up)

    def test_lost_node_without_another_removed_from_the_res(self):
        self.cluster.down.add('n3')
        # a replica refuses: nothing changes, no error
        self.cluster.faults[('n1', 'adjust')] = [
            tp.NodeError('n1', protocol.E_FAILED, 'adjust failed')]
        unchanged = 'unchanged: no tiebreaker could be placed (see the log)'
        self.assertEqual(unchanged,
                         self.ctl.ensure_tiebreaker(VOL, lost=['n3']))
        self.assertEqual('n3', self.ctl.find(VOL).spec.tiebreaker_host.name)
        self.assertEqual('tiebreaker removed: no storage node can take it',
                         self.ctl.ensure_tiebreaker(VOL, lost=['n3']))
        spec = self.ctl.find(VOL).spec
        self.assertEqual((), spec.diskless_hosts)
        for node in ('n1', 'n2'):
            self.assertNotIn('n3', self.hosts(node))

    def test_node_removed_from_the_config_replaced(self):
        self.cluster.add('n4')
        cfg = self.ctl.config
        self.ctl.config = model.ClusterConfig(
            storage_nodes=cfg.storage_nodes[:2] + (
                model.Node('n4', '10.0.0.4', ssh_host='n4'),),
            client_nodes=cfg.client_nodes, pool='vg/pool', replicas=2,
            minors=cfg.minors, ports=cfg.ports)
        self.assertEqual((VOL,), self.ctl.stats().without_tiebreaker)
        self.assertEqual('tiebreaker placed on n4',
                         self.ctl.ensure_tiebreaker(VOL))
        spec = self.ctl.find(VOL).spec
        self.assertEqual(['n4'], [h.name for h in spec.diskless_hosts])
        self.assertEqual((), self.ctl.stats().without_tiebreaker)


class MaxPeersTest(TiebreakerTestCase):

    config = {'max_peers': 4}        # 5 hosts: 2 + tiebreaker + 2

    def test_counted_for_clients(self):
        self.cluster.add('hv3', pool=None)
        spec = self.ctl.create_volume(VOL, G)
        self.assertEqual('n3', spec.tiebreaker_host.name)
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        exc = self.assertRaises(errors.InvalidRequest, self.ctl.attach,
                                VOL, 'hv3', '10.0.1.3')
        self.assertIn('2 replicas, a tiebreaker and 2 clients already',
                      str(exc))

    def test_no_room_no_tiebreaker(self):
        # max_peers 3: the tiebreaker would leave room for one client
        self.ctl.config = model.ClusterConfig(
            storage_nodes=self.ctl.config.storage_nodes,
            client_nodes=self.ctl.config.client_nodes, pool='vg/pool',
            replicas=2, minors=self.ctl.config.minors,
            ports=self.ctl.config.ports, max_peers=3)
        spec = self.ctl.create_volume(VOL, G)
        self.assertIsNone(spec.tiebreaker_host)
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')


class ChooseTest(base.TestCase):

    def config(self, *nodes):
        return model.ClusterConfig(
            storage_nodes=tuple(model.Node(n, a, zone=z)
                                for n, a, z in nodes),
            pool='vg/pool', minors=range(1000, 1010),
            ports=range(7000, 7010))

    def report(self, name, resources=0):
        return inv.NodeInventory(
            node=name, hostname=name, drbd_utils_version=None,
            drbd_kernel_version=None, pools={},
            resources={f'r{i}': {} for i in range(resources)},
            volumes={}, snapshots={}, used_minors=frozenset(),
            used_ports=frozenset())

    def test_ip_version_of_the_replicas(self):
        cfg = self.config(('a', '10.0.0.1', None), ('b', '10.0.0.2', None),
                          ('c', 'fd00::3', None), ('d', '10.0.0.4', None))
        reports = {n: self.report(n) for n in 'cd'}
        self.assertEqual('d', tiebreaker.choose(cfg, ['a', 'b'], reports))

    def test_fewest_resources_then_name(self):
        cfg = self.config(('a', '10.0.0.1', None), ('b', '10.0.0.2', None),
                          ('c', '10.0.0.3', None), ('d', '10.0.0.4', None))
        reports = {'c': self.report('c', 2), 'd': self.report('d', 1)}
        self.assertEqual('d', tiebreaker.choose(cfg, ['a', 'b'], reports))
        self.assertEqual('c', tiebreaker.choose(cfg, ['a', 'b'], reports,
                                                exclude=['d']))
        self.assertIsNone(tiebreaker.choose(cfg, ['a', 'b'], {}))


class RenderTest(base.TestCase):

    def test_role_written_and_read_back(self):
        spec = {'version': protocol.SPEC_VERSION, 'minor': 1000,
                'port': 7000, 'protocol': 'C', 'quorum': 'majority',
                'on_no_quorum': 'io-error', 'allow_two_primaries': False,
                'hosts': [{'name': 'a', 'node_id': 0, 'address': '10.0.0.1',
                           'role': 'diskful', 'vg': 'vg'},
                          {'name': 'b', 'node_id': 1, 'address': '10.0.0.2',
                           'role': 'diskful', 'vg': 'vg'},
                          {'name': 'c', 'node_id': 2, 'address': '10.0.0.3',
                           'role': 'diskless', 'tiebreaker': True},
                          {'name': 'd', 'node_id': 3, 'address': '10.0.0.4',
                           'role': 'diskless'}],
                'connections': [['a', 'b'], ['a', 'c'], ['b', 'c'],
                                ['a', 'd'], ['b', 'd']]}
        text = resrender.render('r0', spec)
        self.assertEqual({'c'}, resrender.tiebreakers(text))
        spec['hosts'][2]['tiebreaker'] = False
        self.assertEqual(set(), resrender.tiebreakers(
            resrender.render('r0', spec)))

    def test_a_diskful_tiebreaker_refused(self):
        host = {'name': 'a', 'node_id': 0, 'address': '10.0.0.1',
                'role': 'diskful', 'vg': 'vg', 'tiebreaker': True}
        self.assertRaises(protocol.ProtocolError, protocol_spec._check_host,
                          'h', host)
        self.assertRaises(ValueError, model.ResourceHost, 'a', 0,
                          '10.0.0.1', True, '/dev/vg/r0', True)
