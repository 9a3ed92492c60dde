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

"""Unit tests of ``cluster/delete.py``, through the Controller facade."""

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit.cluster.test_controller import ControllerTestCase
from tests.unit.cluster.test_controller import G
from tests.unit.cluster.test_controller import VOL


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


class DeleteRoundTripsTest(ControllerTestCase):
    """One request per node (counted as the transports count them)."""

    def per_node(self, mark):
        counted = {}
        for node, _ in self.cluster.requests[mark:]:
            counted[node] = counted.get(node, 0) + 1
        return counted

    def test_one_request_per_node(self):
        self.ctl.create_volume(VOL, G)
        mark = len(self.cluster.requests)
        self.ctl.delete_volume(VOL)
        self.assertEqual({'n1': 1, 'n2': 1, 'n3': 1}, self.per_node(mark))
        self.assertEqual({'delete'}, {r['op'] for _, r in
                                      self.cluster.requests[mark:]})
        self.assertEqual({}, self.cluster.clean())

    def test_an_attached_client_gets_one_request_too(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        mark = len(self.cluster.requests)
        self.ctl.delete_volume(VOL)
        self.assertEqual({'n1': 1, 'n2': 1, 'n3': 1, 'hv1': 1},
                         self.per_node(mark))
        [(_, to_client)] = [(n, r) for n, r in self.cluster.requests[mark:]
                            if n == 'hv1']
        self.assertEqual({'op': 'delete', 'resource': VOL}, to_client)
        self.assertEqual({}, self.cluster.clean())

    def test_a_gone_volume_costs_one_request_per_storage_node(self):
        mark = len(self.cluster.requests)
        self.ctl.delete_volume(VOL)
        self.assertEqual({'n1': 1, 'n2': 1, 'n3': 1}, self.per_node(mark))

    def test_a_gone_volume_with_a_node_down_fails(self):
        # it may live only there: Cinder retries
        self.cluster.down.add('n3')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                self.ctl.delete_volume, VOL)
        self.assertEqual(['n3'], list(exc.failures))

    def test_a_replica_down_fails_and_its_client_is_kept(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.down.add('n2')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                self.ctl.delete_volume, VOL)
        self.assertEqual(['n2'], list(exc.failures))
        # the client stays until the delete can finish: its next try
        # (with n2 back) still knows it from n2's .res
        self.assertIn(VOL, self.cluster.agents['hv1'].res)
        self.cluster.down.clear()
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())

    def test_a_refused_delete_on_a_node_fails(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.faults[('n1', 'delete')] = tp.NodeError(
            'n1', protocol.E_FAILED, 'lvremove failed')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                self.ctl.delete_volume, VOL)
        self.assertEqual(['n1'], list(exc.failures))

    def test_an_lv_without_res_goes_too(self):
        self.cluster.agents['n1'].lvs[VOL] = G
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())


class DeleteOlderAgentsTest(ControllerTestCase):
    """Agents that do not know ``report`` get the delete as before."""

    def test_all_older(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        for agent in self.cluster.agents.values():
            agent.unknown_fields.add('report')
        mark = len(self.cluster.requests)
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())
        ops = [(n, r['op']) for n, r in self.cluster.requests[mark:]]
        self.assertEqual(1, ops.count(('hv1', 'delete')))
        self.assertEqual(['n1', 'n2', 'n3'], sorted(
            n for n, op in ops if op == 'status'))

    def test_one_older(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.agents['n2'].unknown_fields.add('report')
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())

    def test_older_ones_with_the_newer_ones_naming_the_client(self):
        # the only .res naming the client is on a node that already
        # deleted: the client still gets its delete
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        for name in ('n2', 'n3'):
            self.cluster.agents[name].unknown_fields.add('report')
            self.cluster.agents[name].res.pop(VOL)
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())
