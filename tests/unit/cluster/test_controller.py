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

import concurrent.futures
import re

import ddt
import testtools

from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit.cluster import fakes

G = 1 << 30
VOL = 'volume-0001'


def make(nodes=('n1', 'n2', 'n3'), zones=None, sizes=None, replicas=3,
         clients=('hv1', 'hv2'), **config):
    cluster = fakes.FakeCluster()
    storage = []
    for i, name in enumerate(nodes):
        cluster.add(name, pool_bytes=(sizes[i] if sizes else 100) * G)
        storage.append(model.Node(name, f'10.0.0.{i + 1}', ssh_host=name,
                                  zone=(zones or {}).get(name)))
    client_nodes = []
    for i, name in enumerate(clients):
        cluster.add(name, pool=None)
        client_nodes.append(model.Node(name, f'10.0.1.{i + 1}',
                                       ssh_host=name, storage=False))
    cfg = model.ClusterConfig(
        storage_nodes=tuple(storage), client_nodes=tuple(client_nodes),
        pool='vg/pool', minors=range(1000, 1100), ports=range(7000, 7100),
        replicas=replicas, connect_timeout=1.0, **config)
    controller = ctl.Controller(cfg, cluster.transport_for,
                                poll_interval=0.01)
    return cluster, controller


class ControllerTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.cluster, self.ctl = make()
        self.addCleanup(self.ctl.close)

    def definition(self, node, name=VOL):
        return fakes.parse_res(self.cluster.agents[node].res[name][0])

    def res_sizes(self, name=VOL, nodes=('n1', 'n2', 'n3')):
        """Node -> the size its .res gives the device (None: not set)."""
        return {n: self.definition(n, name)['disk'].get('size')
                for n in nodes}

    def requests(self, op, name=VOL):
        return [(node, req) for node, req in self.cluster.requests
                if req['op'] == op and req.get('resource') == name]

    @staticmethod
    def text_size(req):
        return fakes.parse_res(req['res_text'])['disk'].get('size')


@ddt.ddt
class CreateTest(ControllerTestCase):

    def test_three_replicas_same_identity(self):
        spec = self.ctl.create_volume(VOL, 2 * G)
        self.assertEqual(['n1', 'n2', 'n3'],
                         sorted(h.name for h in spec.diskful_hosts))
        defs = [self.definition(n) for n in ('n1', 'n2', 'n3')]
        self.assertEqual({1000}, {d['minor'] for d in defs})
        self.assertEqual({7000}, {h['port'] for d in defs
                                  for h in d['hosts']})
        self.assertEqual([0, 1, 2], sorted(h['node_id']
                                           for h in defs[0]['hosts']))
        secrets = {self.cluster.agents[n].res[VOL][1]
                   for n in ('n1', 'n2', 'n3')}
        self.assertEqual(1, len(secrets))
        self.assertTrue(protocol.SECRET_RE.match(secrets.pop()))
        # Initial sync skipped once, on one node, and every replica is
        # UpToDate.
        self.assertEqual(1, len(self.cluster.ops('new-current-uuid')))
        for agent in ('n1', 'n2', 'n3'):
            self.assertIn(VOL, self.cluster.agents[agent].uptodate)

    def test_device_size_is_the_volume_size(self):
        spec = self.ctl.create_volume(VOL, 2 * G)
        self.assertEqual(2 * G, spec.size)
        self.assertEqual({'n1': '2097152k', 'n2': '2097152k',
                          'n3': '2097152k'}, self.res_sizes())
        # The LV is sized by the agent for the same size.
        for _, req in self.requests('create'):
            self.assertEqual(2 * G, req['size'])
            self.assertEqual('2097152k', self.text_size(req))
        self.assertEqual(2 * G, self.ctl.find(VOL).spec.size)

    @ddt.data(G + 1, G + 100, -512, True, 1.0 * G)
    def test_size_not_in_sectors_refused(self, size):
        self.assertRaises(errors.InvalidRequest, self.ctl.create_volume,
                          VOL, size)
        self.assertEqual([], self.cluster.ops('create'))
        self.assertEqual([], self.cluster.ops('inventory'))

    def test_secret_not_in_res_text(self):
        spec = self.ctl.create_volume(VOL, G)
        for node, req in self.cluster.requests:
            if 'res_text' in req:
                self.assertNotIn(spec.secret, req['res_text'])

    def test_distinct_identities_per_volume(self):
        a = self.ctl.create_volume('volume-a', G)
        b = self.ctl.create_volume('volume-b', G)
        self.assertNotEqual(a.minor, b.minor)
        self.assertNotEqual(a.port, b.port)
        self.assertNotEqual(a.secret, b.secret)

    def test_one_replica(self):
        spec = self.ctl.create_volume(VOL, G, replicas=1)
        self.assertEqual(1, len(spec.hosts))
        self.assertEqual([], self.cluster.ops('status'))

    def test_bad_sizes_and_counts_change_nothing(self):
        self.assertRaises(errors.InvalidRequest, self.ctl.create_volume,
                          VOL, 0)
        self.assertRaises(errors.InvalidRequest, self.ctl.create_volume,
                          VOL, G, replicas=4)
        self.assertRaises(errors.PlacementError, self.ctl.create_volume,
                          VOL, 10_000 * G)
        self.assertEqual([], self.cluster.ops('create'))

    def test_node_failing_after_two_rolls_back_everywhere(self):
        self.cluster.faults[('n3', 'create')] = tp.NodeError(
            'n3', protocol.E_FAILED, 'lvcreate: pool full')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                self.ctl.create_volume, VOL, G)
        self.assertIn('n3', str(exc))
        self.assertEqual({}, self.cluster.clean())
        self.assertEqual(['n1', 'n2', 'n3'],
                         sorted(self.cluster.ops('delete')))
        # The identities are free again.
        spec = self.ctl.create_volume('volume-b', G, replicas=2)
        self.assertEqual(1000, spec.minor)

    def test_unreachable_node_is_not_placed(self):
        self.cluster.down.add('n2')
        spec = self.ctl.create_volume(VOL, G, replicas=2)
        self.assertEqual(['n1', 'n3'], sorted(h.name for h in spec.hosts))
        self.assertRaises(errors.PlacementError, self.ctl.create_volume,
                          'volume-b', G, replicas=3)

    def test_conflict_from_agent_reallocates(self):
        self.cluster.faults[('n2', 'create')] = [tp.NodeError(
            'n2', protocol.E_CONFLICT, 'minor 1000 clashes', 'res_text')]
        spec = self.ctl.create_volume(VOL, G)
        self.assertEqual(1001, spec.minor)
        self.assertEqual(1001, self.definition('n2')['minor'])

    def test_replicas_that_never_connect_are_removed(self):
        self.cluster.faults[('n1', 'new-current-uuid')] = tp.NodeError(
            'n1', protocol.E_FAILED, 'drbdsetup failed')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.create_volume, VOL, G)
        self.assertEqual({}, self.cluster.clean())

    def test_concurrent_creates_never_share_minor_or_port(self):
        self.cluster, self.ctl = make(nodes=('n1', 'n2', 'n3', 'n4'))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            specs = list(pool.map(
                lambda i: self.ctl.create_volume(f'volume-{i}', G,
                                                 replicas=2), range(16)))
        self.assertEqual(16, len({s.minor for s in specs}))
        self.assertEqual(16, len({s.port for s in specs}))
        for agent in self.cluster.agents.values():
            minors = [fakes.parse_res(t)['minor']
                      for t, _ in agent.res.values()]
            self.assertEqual(len(minors), len(set(minors)))


class ZonesTest(testtools.TestCase):

    def test_spread_places_in_distinct_zones(self):
        zones = {'n1': 'a', 'n2': 'a', 'n3': 'b', 'n4': 'c'}
        cluster, controller = make(nodes=('n1', 'n2', 'n3', 'n4'),
                                   zones=zones, sizes=[90, 80, 10, 20])
        spec = controller.create_volume(VOL, G, 3, 'spread')
        self.assertEqual({'a', 'b', 'c'},
                         {zones[h.name] for h in spec.hosts})

    def test_spread_with_too_few_zones(self):
        cluster, controller = make(zones={'n1': 'a', 'n2': 'a', 'n3': 'b'})
        exc = self.assertRaises(errors.PlacementError,
                                controller.create_volume, VOL, G, 3,
                                'spread')
        self.assertIn('zones', str(exc))
        self.assertEqual({}, cluster.clean())


class DeleteTest(ControllerTestCase):

    def test_delete_everywhere_and_twice(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())
        self.ctl.delete_volume(VOL)

    def test_delete_with_replica_down_converges(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.down.add('n2')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.delete_volume, VOL)
        self.cluster.down.clear()
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())

    def test_identities_reused_after_delete(self):
        first = self.ctl.create_volume(VOL, G)
        self.ctl.delete_volume(VOL)
        again = self.ctl.create_volume('volume-b', G)
        self.assertEqual((first.minor, first.port),
                         (again.minor, again.port))


class SnapshotTest(ControllerTestCase):

    def setUp(self):
        super().setUp()
        self.ctl.create_volume(VOL, 2 * G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.log.clear()

    def test_snapshot_suspends_everyone_and_resumes(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        suspends = [n for n, op in self.cluster.log if op == 'suspend-io']
        self.assertEqual(['hv1', 'n1', 'n2', 'n3'], sorted(suspends))
        ops = [op for _, op in self.cluster.log]
        # Every snapshot is taken while every node is suspended.
        self.assertEqual(['suspend-io'] * 4 + ['snapshot-create'] * 3 +
                         ['resume-io'] * 4, ops)
        for name in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[name]
            self.assertIn('snap-1', agent.snapshots)
            self.assertEqual(set(), agent.suspended)
        self.assertNotIn('snap-1', self.cluster.agents['hv1'].snapshots)

    def test_failed_snapshot_resumes_and_cleans(self):
        self.cluster.faults[('n3', 'snapshot-create')] = tp.NodeError(
            'n3', protocol.E_FAILED, 'lvcreate failed')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.create_snapshot, VOL, 'snap-1')
        for agent in self.cluster.agents.values():
            self.assertEqual(set(), agent.suspended)
            self.assertNotIn('snap-1', agent.snapshots)

    def test_snapshot_refused_with_replica_down(self):
        self.cluster.down.add('n3')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                self.ctl.create_snapshot, VOL, 'snap-1')
        self.assertIn('n3', str(exc))
        self.assertEqual([], [op for _, op in self.cluster.log])

    def test_unreachable_client_does_not_block(self):
        self.cluster.down.add('hv1')
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.assertIn('snap-1', self.cluster.agents['n1'].snapshots)

    def test_delete_snapshot(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.ctl.delete_snapshot('snap-1')
        self.ctl.delete_snapshot('snap-1')
        for agent in self.cluster.agents.values():
            self.assertEqual({}, agent.snapshots)

    def test_volume_from_snapshot_keeps_node_ids(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        spec = self.ctl.create_volume_from_snapshot(
            'volume-new', 'snap-1', VOL, 2 * G, 3 * G)
        src = self.definition('n1')
        new = self.definition('n1', 'volume-new')
        self.assertEqual(
            {h['name']: h['node_id'] for h in src['hosts'] if h['diskful']},
            {h['name']: h['node_id'] for h in new['hosts']})
        self.assertNotEqual(src['minor'], new['minor'])
        self.assertEqual([], self.cluster.ops('new-current-uuid')[1:])
        # Grown after it came up: every LV, DRBD once.
        for name in ('n1', 'n2', 'n3'):
            self.assertEqual(3 * G,
                             self.cluster.agents[name].lvs['volume-new'])
        resized = [r for a in self.cluster.agents.values()
                   for r in a.resized]
        self.assertEqual([('volume-new', 3 * G)], resized)
        self.assertEqual(spec.name, 'volume-new')

    def test_volume_from_snapshot_comes_up_capped_then_grows(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        spec = self.ctl.create_volume_from_snapshot(
            'volume-new', 'snap-1', VOL, 2 * G, 3 * G)
        self.assertEqual(3 * G, spec.size)
        [create] = {self.text_size(r) for _, r in
                    self.requests('create-from-snapshot', 'volume-new')}
        self.assertEqual('2097152k', create)
        self.assertEqual(
            dict.fromkeys(('n1', 'n2', 'n3'), '3145728k'),
            self.res_sizes('volume-new'))
        self.assertEqual(3 * G, self.ctl.find('volume-new').spec.size)

    def test_volume_from_snapshot_same_size_is_not_grown(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        spec = self.ctl.create_volume_from_snapshot(
            'volume-new', 'snap-1', VOL, 2 * G, 2 * G)
        self.assertEqual(2 * G, spec.size)
        self.assertEqual([], self.requests('resize', 'volume-new'))
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '2097152k'),
                         self.res_sizes('volume-new'))

    def test_volume_from_snapshot_failure_leaves_nothing(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.cluster.faults[('n2', 'create-from-snapshot')] = tp.NodeError(
            'n2', protocol.E_FAILED, 'boom')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.create_volume_from_snapshot,
                          'volume-new', 'snap-1', VOL, 2 * G, 2 * G)
        for agent in self.cluster.agents.values():
            self.assertNotIn('volume-new', agent.lvs)
            self.assertNotIn('volume-new', agent.res)

    def test_clone_removes_temporary_snapshot(self):
        spec = self.ctl.clone_volume('volume-clone', VOL, 2 * G, 2 * G)
        self.assertEqual(2 * G, spec.size)
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '2097152k'),
                         self.res_sizes('volume-clone'))
        for name in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[name]
            self.assertIn('volume-clone', agent.lvs)
            self.assertEqual({}, agent.snapshots)

    def test_revert_refused_while_attached(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.assertRaises(errors.InvalidRequest, self.ctl.revert_to_snapshot,
                          VOL, 'snap-1', 2 * G, 2 * G)
        self.assertEqual([], self.cluster.ops('snapshot-rollback'))

    def test_revert(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.ctl.extend_volume(VOL, 4 * G)
        self.ctl.detach(VOL, 'hv1')
        self.ctl.revert_to_snapshot(VOL, 'snap-1', 2 * G, 4 * G)
        self.assertEqual(['n1', 'n2', 'n3'],
                         sorted(self.cluster.ops('snapshot-rollback')))
        for name in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[name]
            self.assertIn(VOL, agent.up)
            self.assertEqual(4 * G, agent.lvs[VOL])
        # Up again at the snapshot's size (what its LVs hold), then grown.
        rollback = [i for i, (_, r) in enumerate(self.cluster.requests)
                    if r['op'] == 'snapshot-rollback']
        adjusts = [(i, r) for i, (_, r) in enumerate(self.cluster.requests)
                   if r['op'] == 'adjust' and i > max(rollback)]
        self.assertEqual('2097152k', self.text_size(adjusts[0][1]))
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '4194304k'),
                         self.res_sizes())

    def test_revert_to_the_same_size(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.ctl.detach(VOL, 'hv1')
        self.cluster.requests.clear()
        self.ctl.revert_to_snapshot(VOL, 'snap-1', 2 * G, 2 * G)
        self.assertEqual([], self.requests('resize'))
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '2097152k'),
                         self.res_sizes())

    def test_revert_to_a_larger_snapshot_refused(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.ctl.detach(VOL, 'hv1')
        self.assertRaises(errors.InvalidRequest, self.ctl.revert_to_snapshot,
                          VOL, 'snap-1', 3 * G, 2 * G)
        self.assertEqual([], self.cluster.ops('snapshot-rollback'))


class ExtendTest(ControllerTestCase):

    def test_extend_every_replica_then_drbd_once(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.extend_volume(VOL, 3 * G)
        for name in ('n1', 'n2', 'n3'):
            self.assertEqual(3 * G, self.cluster.agents[name].lvs[VOL])
        resized = [(n, r) for n, a in self.cluster.agents.items()
                   for r in a.resized]
        self.assertEqual(1, len(resized))

    def test_extend_lvs_then_one_resize_with_the_new_res(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.requests.clear()
        self.ctl.extend_volume(VOL, 3 * G)
        steps = [(node, r['op'], r.get('lv'), r.get('drbd'),
                  self.text_size(r) if 'res_text' in r else None)
                 for node, r in self.cluster.requests
                 if r['op'] in ('resize', 'adjust')]
        lvs = sorted(steps[:3])
        self.assertEqual([(n, 'resize', True, False, None)
                          for n in ('n1', 'n2', 'n3')], lvs)
        self.assertEqual(('n1', 'resize', False, True, '3145728k'),
                         steps[3])
        self.assertTrue(self.requests('resize')[3][1]['assume_clean'])
        self.assertEqual([('n2', 'adjust', None, None, '3145728k'),
                          ('n3', 'adjust', None, None, '3145728k')],
                         sorted(steps[4:]))
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '3145728k'),
                         self.res_sizes())
        # the client stays in the .res
        self.assertIn('hv1', [h['name']
                              for h in self.definition('n2')['hosts']])

    def test_extend_never_shrinks(self):
        self.ctl.create_volume(VOL, 2 * G)
        self.assertRaises(errors.InvalidRequest, self.ctl.extend_volume,
                          VOL, G)
        self.assertEqual([], self.cluster.ops('resize'))
        self.ctl.extend_volume(VOL, 2 * G)      # a retry: converges
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '2097152k'),
                         self.res_sizes())

    def test_extend_stopped_half_way_is_retried_at_the_new_size(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.faults[('n3', 'adjust')] = [tp.NodeError(
            'n3', protocol.E_FAILED, 'drbdadm adjust failed')]
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.extend_volume, VOL, 3 * G)
        self.assertEqual({'n1': '3145728k', 'n2': '3145728k',
                          'n3': '1048576k'}, self.res_sizes())
        # What the nodes say: the largest size (every LV was grown).
        self.assertEqual(3 * G, self.ctl.find(VOL).spec.size)
        self.ctl.attach(VOL, 'hv1')
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '3145728k'),
                         self.res_sizes())

    def test_extend_of_a_resource_without_size(self):
        # .res files written before sizes were: uncapped, and they work.
        self.ctl.create_volume(VOL, G)
        for agent in self.cluster.agents.values():
            if VOL in agent.res:
                text, secret = agent.res[VOL]
                agent.res[VOL] = (re.sub(r'    disk \{[^}]*\}\n', '',
                                         text), secret)
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3')),
                         self.res_sizes())
        self.assertIsNone(self.ctl.find(VOL).spec.size)
        self.ctl.attach(VOL, 'hv1')
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3')),
                         self.res_sizes())
        self.ctl.extend_volume(VOL, 2 * G)
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '2097152k'),
                         self.res_sizes())

    def test_extend_refused_with_replica_down(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.down.add('n1')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.extend_volume, VOL, 3 * G)
        self.assertEqual(G, self.cluster.agents['n2'].lvs[VOL])


class AttachTest(ControllerTestCase):

    def setUp(self):
        super().setUp()
        self.ctl.create_volume(VOL, G)

    def test_attach_adds_diskless_client(self):
        path = self.ctl.attach(VOL, 'hv1')
        self.assertEqual(f'/dev/drbd/by-res/{VOL}/0', path)
        for node in ('n1', 'n2', 'n3', 'hv1'):
            hosts = {h['name']: h for h in self.definition(node)['hosts']}
            self.assertEqual(3, hosts['hv1']['node_id'])
            self.assertFalse(hosts['hv1']['diskful'])
            self.assertEqual('10.0.1.1', hosts['hv1']['address'])
        self.assertEqual({}, self.definition('n1')['net'])

    def test_attach_is_idempotent(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv1')
        hosts = self.definition('n1')['hosts']
        self.assertEqual(4, len(hosts))

    def test_live_migration_sequence(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        self.assertEqual('yes', self.definition('n1')['net'].get(
            'allow-two-primaries'))
        self.assertEqual('yes', self.definition('hv2')['net'].get(
            'allow-two-primaries'))
        self.ctl.detach(VOL, 'hv1')
        self.assertEqual({}, self.definition('n1')['net'])
        self.assertNotIn(VOL, self.cluster.agents['hv1'].res)
        self.ctl.detach(VOL, 'hv2')
        self.assertEqual(3, len(self.definition('n1')['hosts']))
        self.assertNotIn(VOL, self.cluster.agents['hv2'].res)

    def test_unknown_unreachable_host_changes_nothing(self):
        before = {n: dict(a.res) for n, a in self.cluster.agents.items()}
        exc = self.assertRaises(errors.NodeOperationFailed, self.ctl.attach,
                                VOL, 'stranger', '10.9.9.9')
        self.assertIn('stranger', str(exc))
        self.assertEqual([], self.cluster.ops('adjust'))
        self.assertEqual(before, {n: dict(a.res)
                                  for n, a in self.cluster.agents.items()})

    def test_unlisted_reachable_host_is_accepted(self):
        self.cluster.add('hv9', pool=None)
        self.ctl.attach(VOL, 'hv9', '10.0.9.9')
        hosts = {h['name']: h for h in self.definition('n1')['hosts']}
        self.assertEqual('10.0.9.9', hosts['hv9']['address'])

    def test_unlisted_host_refused_when_not_allowed(self):
        cluster, controller = make(allow_unlisted_clients=False)
        controller.create_volume(VOL, G)
        cluster.add('hv9', pool=None)
        self.assertRaises(errors.InvalidRequest, controller.attach, VOL,
                          'hv9', '10.0.9.9')

    def test_failed_client_attach_restores_storage_config(self):
        self.cluster.faults[('hv1', 'attach')] = tp.NodeError(
            'hv1', protocol.E_TIMEOUT, 'no UpToDate peer within 60s')
        self.assertRaises(errors.NodeOperationFailed, self.ctl.attach, VOL,
                          'hv1')
        self.assertEqual(3, len(self.definition('n1')['hosts']))

    def test_force_detach_everywhere_with_client_down(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        self.cluster.down.add('hv2')
        self.ctl.detach(VOL, None, force=True)
        self.assertEqual(3, len(self.definition('n1')['hosts']))
        self.assertEqual({}, self.definition('n1')['net'])

    def test_detach_of_unreachable_client_without_force_fails(self):
        self.ctl.attach(VOL, 'hv1')
        self.cluster.down.add('hv1')
        self.assertRaises(errors.NodeOperationFailed, self.ctl.detach, VOL,
                          'hv1')
        self.assertEqual(4, len(self.definition('n1')['hosts']))

    def test_detach_of_missing_volume_is_fine(self):
        self.ctl.detach('volume-gone', 'hv1')


@ddt.ddt
class StatsTest(testtools.TestCase):

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
        self.assertEqual(0, stats.free_bytes)   # 3 replicas, 2 nodes

    def test_check_setup_reports_per_node(self):
        cluster, controller = make(clients=())
        cluster.down.add('n2')
        cluster.agents['n3'].pool = 'vg/other'
        problems = controller.check_setup()
        self.assertEqual({'n2', 'n3'}, set(problems))
        self.assertIn('vg/pool', problems['n3'])
