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

"""Unit tests of ``cluster/attach.py``, through the Controller facade."""

import fixtures

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit import base
from tests.unit.cluster.test_controller import ControllerTestCase
from tests.unit.cluster.test_controller import G
from tests.unit.cluster.test_controller import make
from tests.unit.cluster.test_controller import VOL


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

    def test_a_replica_refusing_the_new_res_leaves_no_phantom_client(self):
        before = {n: self.definition(n) for n in ('n1', 'n2', 'n3')}
        self.cluster.faults[('n2', 'adjust')] = [tp.NodeError(
            'n2', protocol.E_FAILED, 'drbdadm adjust failed')]
        exc = self.assertRaises(errors.NodeOperationFailed, self.ctl.attach,
                                VOL, 'hv1')
        self.assertEqual(['n2'], list(exc.failures))
        self.assertEqual(before, {n: self.definition(n)
                                  for n in ('n1', 'n2', 'n3')})
        self.assertEqual([], self.cluster.ops('attach'))
        self.assertEqual((), self.ctl.stats().divergent_volumes)
        self.ctl.attach(VOL, 'hv1')
        self.assertEqual(4, len(self.definition('n2')['hosts']))

    def lose_at_adjust(self, node):
        """``node`` answers the lookup and is gone from its adjust on."""
        def hook(name, request):
            if name == node and request['op'] == 'adjust':
                self.cluster.down.add(node)
        self.cluster.hooks.append(hook)

    def test_a_replica_lost_after_the_lookup_does_not_stop_attach(self):
        self.lose_at_adjust('n3')
        logger = self.useFixture(fixtures.FakeLogger())
        path = self.ctl.attach(VOL, 'hv1')
        self.assertEqual(f'/dev/drbd/by-res/{VOL}/0', path)
        for node in ('n1', 'n2', 'hv1'):
            self.assertIn('hv1', [h['name']
                                  for h in self.definition(node)['hosts']])
        self.assertNotIn('hv1', [h['name']
                                 for h in self.definition('n3')['hosts']])
        self.assertIn('Replica n3 of %s became unreachable' % VOL,
                      logger.output)
        # back, the periodic repair gives it the client
        self.cluster.down.discard('n3')
        self.cluster.hooks.clear()
        self.assertEqual((VOL,), self.ctl.stats().divergent_volumes)

    def test_a_replica_lost_after_the_lookup_does_not_stop_detach(self):
        self.ctl.attach(VOL, 'hv1')
        self.lose_at_adjust('n3')
        self.ctl.detach(VOL, 'hv1')
        for node in ('n1', 'n2'):
            self.assertEqual(['n1', 'n2', 'n3'], sorted(
                h['name'] for h in self.definition(node)['hosts']))
        self.assertNotIn(VOL, self.cluster.agents['hv1'].res)

    def test_attach_fails_when_no_replica_takes_the_new_res(self):
        for node in ('n1', 'n2', 'n3'):
            self.lose_at_adjust(node)
        exc = self.assertRaises(errors.NodeOperationFailed, self.ctl.attach,
                                VOL, 'hv1')
        self.assertEqual(['n1', 'n2', 'n3'], sorted(exc.failures))
        self.assertEqual([], self.cluster.ops('attach'))

    def test_a_timed_out_adjust_still_fails_the_attach(self):
        # the adjust may have run there: not the same as never reached
        self.cluster.faults[('n3', 'adjust')] = [tp.NodeTimeout(
            'n3', 'no reply within 120s')]
        self.assertRaises(errors.NodeOperationFailed, self.ctl.attach, VOL,
                          'hv1')
        self.assertEqual([], self.cluster.ops('attach'))

    def test_a_second_client_refused_by_a_replica_changes_nothing(self):
        self.ctl.attach(VOL, 'hv1')
        before = {n: self.definition(n) for n in ('n1', 'n2', 'n3', 'hv1')}
        self.cluster.faults[('n3', 'adjust')] = [tp.NodeTimeout(
            'n3', 'no reply within 120s')]
        self.assertRaises(errors.NodeOperationFailed, self.ctl.attach, VOL,
                          'hv2')
        self.assertEqual(before, {n: self.definition(n)
                                  for n in ('n1', 'n2', 'n3', 'hv1')})
        self.assertNotIn(VOL, self.cluster.agents['hv2'].res)

    def test_force_detach_everywhere_with_client_down(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        self.cluster.down.add('hv2')
        self.ctl.detach(VOL, None, force=True)
        self.assertEqual(3, len(self.definition('n1')['hosts']))
        self.assertEqual({}, self.definition('n1')['net'])

    def test_detach_forgets_the_client_on_every_replica(self):
        # DRBD keeps the slot of a peer it once saw and counts it in a
        # quorum tie: a departed client must not stay a missing voter.
        self.ctl.attach(VOL, 'hv1')
        node_id = next(h['node_id'] for h in self.definition('n1')['hosts']
                       if h['name'] == 'hv1')
        self.ctl.detach(VOL, 'hv1')
        for node in ('n1', 'n2', 'n3'):
            self.assertEqual([(VOL, node_id)],
                             self.cluster.agents[node].forgotten, node)
        self.assertEqual([], self.cluster.agents['hv1'].forgotten)

    def test_a_failed_forget_does_not_fail_the_detach(self):
        self.ctl.attach(VOL, 'hv1')
        self.cluster.faults[('n2', 'forget-peer')] = tp.NodeError(
            'n2', protocol.E_FAILED, 'drbdsetup forget-peer failed')
        logger = self.useFixture(fixtures.FakeLogger())
        self.ctl.detach(VOL, 'hv1')
        self.assertEqual(3, len(self.definition('n2')['hosts']))
        self.assertIn('forget-peer 3 of %s on n2 failed' % VOL,
                      logger.output)

    def test_detach_of_a_dead_hypervisor_fences_it_off(self):
        self.ctl.attach(VOL, 'hv1')
        self.cluster.down.add('hv1')
        logger = self.useFixture(fixtures.FakeLogger())
        self.ctl.detach(VOL, 'hv1')
        for node in ('n1', 'n2', 'n3'):
            self.assertEqual(['n1', 'n2', 'n3'], sorted(
                h['name'] for h in self.definition(node)['hosts']))
        self.assertIn(f'Detach of {VOL}: host hv1 is unreachable',
                      logger.output)

    def test_dead_source_of_a_live_migration_turns_two_primaries_off(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        self.cluster.down.add('hv1')      # evacuated: the host is gone
        self.ctl.detach(VOL, 'hv1')
        for node in ('n1', 'n2', 'n3', 'hv2'):
            definition = self.definition(node)
            self.assertEqual({}, definition['net'], node)
            self.assertNotIn('hv1', [h['name']
                                     for h in definition['hosts']])

    def test_detach_refused_by_a_client_that_answers_fails(self):
        self.ctl.attach(VOL, 'hv1')
        self.cluster.faults[('hv1', 'detach')] = tp.NodeError(
            'hv1', protocol.E_BUSY, 'in use: the device is open')
        exc = self.assertRaises(errors.NodeOperationFailed, self.ctl.detach,
                                VOL, 'hv1')
        self.assertIn('in use', str(exc))
        self.assertEqual(4, len(self.definition('n1')['hosts']))
        self.assertIn(VOL, self.cluster.agents['hv1'].res)

    def test_detach_of_missing_volume_is_fine(self):
        self.ctl.detach('volume-gone', 'hv1')

    def test_client_beyond_max_peers_refused_before_any_change(self):
        # max-peers 4: 5 hosts, 3 replicas and 2 clients (live migration)
        cluster, controller = make(clients=('hv1', 'hv2', 'hv3'),
                                   max_peers=4)
        self.addCleanup(controller.close)
        controller.create_volume(VOL, G)
        controller.attach(VOL, 'hv1')
        controller.attach(VOL, 'hv2')
        before = {n: dict(a.res) for n, a in cluster.agents.items()}
        sent = len(cluster.requests)
        exc = self.assertRaises(errors.InvalidRequest, controller.attach,
                                VOL, 'hv3')
        self.assertIn('hv3', str(exc))
        self.assertIn('blackstor_max_peers = 4', str(exc))
        self.assertIn('at most 5 hosts', str(exc))
        self.assertIn('3 replicas and 2 clients', str(exc))
        # only reads: no node was touched
        self.assertEqual({'inventory', 'status'},
                         {req['op'] for _, req in cluster.requests[sent:]})
        self.assertEqual(before, {n: dict(a.res)
                                  for n, a in cluster.agents.items()})
        self.assertNotIn(VOL, cluster.agents['hv3'].up)
        # the host already attached, and one after a detach, still attach
        controller.attach(VOL, 'hv2')
        controller.detach(VOL, 'hv1')
        controller.attach(VOL, 'hv3')


class HyperconvergedAttachTest(ControllerTestCase):
    """Attach on a host that holds a replica of the volume."""

    def setUp(self):
        super().setUp()
        self.ctl.create_volume(VOL, G)
        self.primary = set()
        for agent in self.cluster.agents.values():
            self._report_role(agent)

    def _report_role(self, agent):
        """The fake reports no role: Primary for nodes in self.primary."""
        plain = agent._state

        def state(name):
            found = plain(name)
            if found is not None:
                found['role'] = ('Primary' if agent.name in self.primary
                                 else 'Secondary')
            return found
        agent._state = state

    def two_primaries(self, node):
        return self.definition(node)['net'].get('allow-two-primaries')

    def test_path_comes_from_the_replica_agent(self):
        self.cluster.requests.clear()
        path = self.ctl.attach(VOL, 'n1')
        self.assertEqual(f'/dev/drbd/by-res/{VOL}/0', path)
        self.assertEqual(['n1'], [n for n, _ in self.requests('attach')])
        # Still a replica, nothing added, no option: one user only.
        hosts = {h['name']: h for h in self.definition('n1')['hosts']}
        self.assertEqual({'n1', 'n2', 'n3'}, set(hosts))
        self.assertTrue(hosts['n1']['diskful'])
        self.assertIsNone(self.two_primaries('n1'))
        self.assertIn(VOL, self.cluster.agents['n1'].lvs)

    def test_replica_gets_the_current_res_before_its_attach(self):
        self.cluster.requests.clear()
        self.ctl.attach(VOL, 'n2')
        ops = [req['op'] for node, req in self.cluster.requests
               if node == 'n2' and req.get('resource') == VOL]
        self.assertEqual(['adjust', 'attach'], ops[-2:])

    def test_client_while_replica_is_primary_allows_two_primaries(self):
        self.ctl.attach(VOL, 'n1')
        self.primary.add('n1')              # its guest opened the device
        self.ctl.attach(VOL, 'hv1')
        for node in ('n1', 'n2', 'n3', 'hv1'):
            self.assertEqual('yes', self.two_primaries(node), node)

    def test_replica_while_client_is_attached_allows_two_primaries(self):
        self.ctl.attach(VOL, 'hv1')
        self.assertIsNone(self.two_primaries('n1'))
        self.ctl.attach(VOL, 'n2')          # migration target
        for node in ('n1', 'n2', 'n3', 'hv1'):
            self.assertEqual('yes', self.two_primaries(node), node)

    def test_existing_clients_get_the_new_res(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        self.cluster.requests.clear()
        self.ctl.detach(VOL, 'hv2')
        self.assertEqual(['hv1'], [n for n, _ in self.requests('adjust')
                                   if n.startswith('hv')])
        self.assertIsNone(self.two_primaries('hv1'))

    def test_unreachable_existing_client_does_not_fail_the_attach(self):
        self.ctl.attach(VOL, 'hv1')
        self.cluster.down.add('hv1')
        self.ctl.attach(VOL, 'n1')
        self.assertEqual('yes', self.two_primaries('n1'))

    def test_secondary_replicas_are_not_counted(self):
        self.ctl.attach(VOL, 'n1')
        self.ctl.attach(VOL, 'n2')          # n1 never opened it
        self.assertIsNone(self.two_primaries('n1'))

    def test_detach_on_replica_clears_the_option_and_keeps_it(self):
        self.ctl.attach(VOL, 'n1')
        self.primary.add('n1')
        self.ctl.attach(VOL, 'hv1')
        self.primary.discard('n1')          # the guest left n1
        self.cluster.requests.clear()
        self.ctl.detach(VOL, 'n1')
        self.assertEqual([], self.cluster.ops('detach'))
        self.assertEqual([], self.cluster.ops('delete'))
        for node in ('n1', 'n2', 'n3', 'hv1'):
            self.assertIsNone(self.two_primaries(node), node)
        n1 = self.cluster.agents['n1']
        self.assertIn(VOL, n1.lvs)
        self.assertIn(VOL, n1.up)
        self.assertIn(VOL, n1.res)
        self.assertEqual(4, len(self.definition('n1')['hosts']))

    def test_detach_on_replica_still_primary_is_not_counted(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'n1')
        self.primary.add('n1')              # state read before it closed
        self.ctl.detach(VOL, 'n1')
        self.assertIsNone(self.two_primaries('n2'))
        self.assertIn(VOL, self.cluster.agents['n1'].up)

    def test_client_detach_keeps_option_while_replica_is_primary(self):
        self.ctl.attach(VOL, 'n1')
        self.primary.add('n1')
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        self.ctl.detach(VOL, 'hv2')
        self.assertEqual('yes', self.two_primaries('n2'))
        self.assertEqual('yes', self.two_primaries('hv1'))
        self.ctl.detach(VOL, 'hv1')
        self.assertIsNone(self.two_primaries('n2'))

    def test_detach_everywhere_never_takes_a_replica_down(self):
        self.ctl.attach(VOL, 'n1')
        self.ctl.attach(VOL, 'hv1')
        self.cluster.requests.clear()
        self.ctl.detach(VOL, None, force=True)
        self.assertEqual(['hv1'], self.cluster.ops('detach'))
        self.assertIn(VOL, self.cluster.agents['n1'].up)

    def test_failed_replica_attach_restores_the_option(self):
        self.ctl.attach(VOL, 'hv1')
        self.cluster.faults[('n1', 'attach')] = tp.NodeError(
            'n1', protocol.E_TIMEOUT, 'not usable within 60s')
        self.assertRaises(errors.NodeOperationFailed, self.ctl.attach, VOL,
                          'n1')
        for node in ('n1', 'n2', 'hv1'):
            self.assertIsNone(self.two_primaries(node), node)
        self.assertIn(VOL, self.cluster.agents['n1'].up)
        self.assertEqual([], self.cluster.ops('detach'))


class SharedClientsTest(base.TestCase):
    """Two backends whose volumes attach on the same hypervisors."""

    def setUp(self):
        super().setUp()
        self.cluster, self.a = make()
        _, self.b = make(nodes=('m1', 'm2', 'm3'), cluster=self.cluster,
                         subnet=2)
        self.addCleanup(self.a.close)
        self.addCleanup(self.b.close)

    def res(self):
        return {name: dict(agent.res)
                for name, agent in self.cluster.agents.items()}

    def test_create_skips_the_values_a_client_uses(self):
        a = self.a.create_volume('volume-a', G)
        self.a.attach('volume-a', 'hv1')
        b = self.b.create_volume('volume-b', G)
        self.assertEqual((1000, 7000), (a.minor, a.port))
        self.assertEqual((1001, 7001), (b.minor, b.port))
        self.b.attach('volume-b', 'hv1')
        self.assertEqual({'volume-a', 'volume-b'},
                         set(self.cluster.agents['hv1'].res))

    def test_attach_refused_when_the_client_uses_the_values(self):
        # b took 1000/7000 while no client used them; then a attached
        # its own 1000/7000 on hv1
        self.b.create_volume('volume-b', G)
        self.a.create_volume('volume-a', G)
        self.a.attach('volume-a', 'hv1')
        before = self.res()
        self.cluster.requests.clear()
        exc = self.assertRaises(errors.AllocationError, self.b.attach,
                                'volume-b', 'hv1')
        message = str(exc)
        for part in ('hv1', 'volume-b', 'DRBD minor 1000',
                     'DRBD port 7000', 'blackstor_minor_range',
                     'blackstor_port_range', 'nothing was changed'):
            self.assertIn(part, message)
        self.assertEqual(before, self.res())
        self.assertEqual({'inventory', 'status'},
                         {req['op'] for _, req in self.cluster.requests})
        # on the other hypervisor it attaches
        self.b.attach('volume-b', 'hv2')

    def test_attach_refused_names_only_the_value_taken(self):
        self.b.create_volume('volume-b', G)
        hv1 = self.cluster.agents['hv1']
        self.a.create_volume('volume-a', G)
        self.a.attach('volume-a', 'hv1')
        text, secret = hv1.res['volume-a']
        hv1.res['volume-a'] = (text.replace(':7000;', ':7050;'), secret)
        exc = self.assertRaises(errors.AllocationError, self.b.attach,
                                'volume-b', 'hv1')
        self.assertIn('DRBD minor 1000', str(exc))
        self.assertNotIn('port', str(exc).replace('blackstor_port', ''))

    def test_a_client_that_does_not_answer_counts_with_its_last_report(self):
        self.a.create_volume('volume-a', G)
        self.a.attach('volume-a', 'hv1')
        self.b.stats()                      # b hears hv1 once
        self.cluster.down.add('hv1')
        b = self.b.create_volume('volume-b', G)
        self.assertEqual((1001, 7001), (b.minor, b.port))

    def test_a_client_never_heard_of_does_not_stop_creates(self):
        self.cluster.down.add('hv2')
        spec = self.b.create_volume('volume-b', G)
        self.assertEqual(3, len(spec.diskful_hosts))
        stats = self.b.stats()
        self.assertEqual({}, stats.nodes_down)
        self.assertEqual({}, stats.nodes_refused)

    def test_stats_report_the_room_left(self):
        stats = self.b.stats()
        self.assertEqual((100, 100), (stats.minors_free, stats.ports_free))
        self.b.create_volume('volume-b', G)
        self.a.create_volume('volume-a', G)
        self.a.create_volume('volume-a2', G)
        self.a.attach('volume-a2', 'hv1')       # 1001/7001 on hv1
        stats = self.b.stats()
        # b's own 1000/7000 and a's 1001/7001 on the shared client
        self.assertEqual((98, 98), (stats.minors_free, stats.ports_free))

    def test_values_outside_the_range_do_not_count(self):
        cluster, ctl_ = make(minors=range(1000, 1010),
                             ports=range(7000, 7010))
        self.addCleanup(ctl_.close)
        _, other = make(nodes=('m1',), replicas=1, cluster=cluster,
                        subnet=2, minors=range(2000, 2010),
                        ports=range(8000, 8010))
        self.addCleanup(other.close)
        other.create_volume('volume-o', G)
        other.attach('volume-o', 'hv1')
        stats = ctl_.stats()
        self.assertEqual((10, 10), (stats.minors_free, stats.ports_free))
