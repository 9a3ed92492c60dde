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
"""Manage: adopting resources and bare thin LVs (cluster/adopt.py)."""

import copy

from blackstor_cinder.cluster import adopt
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit.cluster import fakes
from tests.unit.cluster import test_controller
from tests.unit import base

G = 1 << 30
OLD = 'volume-other'
NEW = 'volume-0002'


class AdoptTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cluster, self.ctl = test_controller.make()
        self.addCleanup(self.ctl.close)

    def snapshot_state(self):
        """Everything the fake nodes hold, to compare before and after."""
        return {name: copy.deepcopy((a.lvs, a.res, a.bare, a.data, a.up))
                for name, a in self.cluster.agents.items()}

    def make_resource(self, name=OLD, size=2 * G, data='guest-data'):
        spec = self.ctl.create_volume(name, size)
        for agent in self.cluster.agents.values():
            if name in agent.lvs:
                agent.data[name] = data
        return spec

    def changing_requests(self):
        return [(n, r['op']) for n, r in self.cluster.requests
                if r['op'] not in ('inventory', 'status')]

    # -- listing --

    def test_manageable_lists_resources_and_bare_lvs(self):
        self.make_resource()
        self.cluster.agents['n2'].bare['data1'] = 5 * G + (8 << 20)
        self.cluster.agents['n3'].bare['tight'] = 3 * G
        found = {m.name: m for m in adopt.manageable(self.ctl)}
        self.assertEqual({OLD, 'data1', 'tight'}, set(found))
        self.assertEqual(('resource', 2 * G, ('n1', 'n2', 'n3'), None),
                         (found[OLD].kind, found[OLD].size,
                          found[OLD].nodes, found[OLD].reason_not_safe))
        self.assertEqual(('lv', 5 * G, ('n2',), None),
                         (found['data1'].kind, found['data1'].size,
                          found['data1'].nodes,
                          found['data1'].reason_not_safe))
        # 3 GiB exactly: no room past 3 GiB for the 4 MiB of metadata
        self.assertEqual('no room for DRBD\'s internal metadata past 3 GiB:'
                         ' extend it by 4 MiB',
                         found['tight'].reason_not_safe)

    def test_manageable_says_why_not(self):
        self.make_resource()
        self.ctl.attach(OLD, 'hv1')
        self.cluster.agents['n1'].bare['small'] = 512 << 20
        self.cluster.agents['n1'].bare['busy'] = 2 * G + (8 << 20)
        self.cluster.agents['n1'].bare_open.add('busy')
        self.cluster.agents['n1'].bare['twice'] = 2 * G + (8 << 20)
        self.cluster.agents['n2'].bare['twice'] = 2 * G + (8 << 20)
        found = {m.name: m.reason_not_safe
                 for m in adopt.manageable(self.ctl)}
        self.assertEqual('attached to hv1: detach it first', found[OLD])
        self.assertEqual('smaller than 1 GiB', found['small'])
        self.assertEqual('open (in use)', found['busy'])
        self.assertIn('ambiguous', found['twice'])

    def test_manageable_replica_unreachable(self):
        self.make_resource()
        self.cluster.down.add('n3')
        found = {m.name: m for m in adopt.manageable(self.ctl)}
        self.assertEqual('replica on n3 unreachable',
                         found[OLD].reason_not_safe)

    def test_resource_of_another_pool_refused(self):
        self.make_resource()
        for agent in self.cluster.agents.values():
            if OLD in agent.res:
                text, secret = agent.res[OLD]
                agent.res[OLD] = (text.replace('/dev/vg/', '/dev/vg2/'),
                                  secret)
        found = {m.name: m for m in adopt.manageable(self.ctl)}
        self.assertEqual("its replica on n1, n2, n3 is not in this "
                         "backend's pool", found[OLD].reason_not_safe)
        exc = self.assertRaises(errors.InvalidRequest, adopt.adopt,
                                self.ctl, OLD, NEW, 3, 'any')
        self.assertIn('not in pool vg/pool', str(exc))
        self.assertIn(OLD, self.cluster.agents['n1'].lvs)

    # -- a resource under another name --

    def test_adopt_resource_renames_every_replica(self):
        old = self.make_resource()
        spec = adopt.adopt(self.ctl, OLD, NEW, 3, 'any')
        self.assertEqual(NEW, spec.name)
        self.assertEqual((old.minor, old.port), (spec.minor, spec.port))
        for name in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[name]
            self.assertNotIn(OLD, agent.lvs)
            self.assertNotIn(OLD, agent.res)
            self.assertEqual('guest-data', agent.data[NEW])
            self.assertIn(NEW, agent.up)
            definition = fakes.parse_res(agent.res[NEW][0])
            self.assertEqual(NEW, definition['name'])
            self.assertEqual({'/dev/vg/' + NEW},
                             {h['disk'] for h in definition['hosts']})
            # same secret: the replicas still authenticate each other
            self.assertEqual(old.secret, agent.res[NEW][1])
        self.assertIsNotNone(self.ctl.find(NEW).spec)

    def test_adopt_records_the_types_zone_policy(self):
        self.make_resource()
        spec = adopt.adopt(self.ctl, OLD, NEW, 3, 'spread')
        self.assertEqual('spread', spec.zone_policy)
        self.assertEqual('spread', self.ctl.find(NEW).spec.zone_policy)
        holder = self.cluster.agents['n2']
        holder.bare['data1'] = 4 * G + (8 << 20)
        adopt.adopt(self.ctl, 'data1', 'volume-w', 1, 'spread')
        self.assertEqual('spread', fakes.parse_res(
            holder.res['volume-w'][0])['zones'])

    def test_adopt_two_replicas_moves_the_tiebreaker_to_the_new_name(self):
        old = self.ctl.create_volume(OLD, 2 * G, replicas=2)
        keeper = old.tiebreaker_host.name
        found = {m.name: m for m in adopt.manageable(self.ctl)}
        self.assertIsNone(found[OLD].reason_not_safe)  # not a client
        spec = adopt.adopt(self.ctl, OLD, NEW, 2, 'any')
        self.assertEqual(keeper, spec.tiebreaker_host.name)
        agent = self.cluster.agents[keeper]
        self.assertNotIn(OLD, agent.res)        # nothing left as the old
        self.assertNotIn(OLD, agent.up)
        self.assertIn(NEW, agent.up)
        self.assertEqual([], [n for n, a in self.cluster.agents.items()
                              if OLD in a.res or OLD in a.lvs])
        stats = self.ctl.stats()
        self.assertEqual((), stats.divergent_volumes)
        self.assertEqual((), tuple(stats.without_tiebreaker))

    def test_adopt_resource_refused_while_primary(self):
        self.make_resource()
        self.cluster.agents['n2'].primary.add(OLD)
        before = self.snapshot_state()
        self.cluster.requests.clear()
        exc = self.assertRaises(errors.InvalidRequest, adopt.adopt,
                                self.ctl, OLD, NEW, 3, 'any')
        self.assertIn('in use (Primary) on n2', str(exc))
        self.assertEqual(before, self.snapshot_state())
        self.assertEqual([], self.changing_requests())

    def test_adopt_resource_refused_while_attached(self):
        self.make_resource()
        self.ctl.attach(OLD, 'hv1')
        before = self.snapshot_state()
        exc = self.assertRaises(errors.InvalidRequest, adopt.adopt,
                                self.ctl, OLD, NEW, 3, 'any')
        self.assertIn('attached to hv1', str(exc))
        self.assertEqual(before, self.snapshot_state())

    def test_adopt_resource_refused_replica_unreachable(self):
        self.make_resource()
        self.cluster.down.add('n3')
        before = self.snapshot_state()
        self.cluster.requests.clear()
        exc = self.assertRaises(errors.InvalidRequest, adopt.adopt,
                                self.ctl, OLD, NEW, 3, 'any')
        self.assertIn('replica on n3 unreachable', str(exc))
        self.assertEqual(before, self.snapshot_state())
        self.assertEqual([], self.changing_requests())

    def test_bad_references_change_nothing(self):
        self.make_resource()
        before = self.snapshot_state()
        self.cluster.requests.clear()
        for ref in ('../etc', 'a b', '', 'snapshot-x', 'x' * 70, None, 7):
            self.assertRaises(errors.InvalidRequest, adopt.adopt,
                              self.ctl, ref, NEW, 3, 'any')
        self.assertEqual([], self.cluster.requests)
        self.assertRaises(errors.ResourceNotFound, adopt.adopt,
                          self.ctl, 'volume-nothing', NEW, 3, 'any')
        self.assertEqual(before, self.snapshot_state())
        self.assertEqual([], self.changing_requests())

    def test_adopt_resource_failure_rolls_back(self):
        self.make_resource()
        self.cluster.faults[('n3', 'rename')] = tp.NodeError(
            'n3', protocol.E_FAILED, 'lvrename failed')
        self.assertRaises(errors.NodeOperationFailed, adopt.adopt,
                          self.ctl, OLD, NEW, 3, 'any')
        for name in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[name]
            self.assertEqual([OLD], sorted(agent.lvs), name)
            self.assertEqual([OLD], sorted(agent.res), name)
            self.assertEqual('guest-data', agent.data[OLD])

    def test_adopt_resource_half_done_converges_on_retry(self):
        self.make_resource()
        # n3's rename fails and so does the rename back on n1
        self.cluster.faults[('n3', 'rename')] = [
            tp.NodeError('n3', protocol.E_FAILED, 'lvrename failed')]
        real = self.cluster.agents['n1'].op_rename
        calls = []

        def once_then_fail(req):
            calls.append(req['resource'])
            if len(calls) > 1 and req['resource'] == NEW:
                raise tp.NodeError('n1', protocol.E_FAILED, 'stuck')
            return real(req)
        self.cluster.agents['n1'].op_rename = once_then_fail
        self.assertRaises(errors.NodeOperationFailed, adopt.adopt,
                          self.ctl, OLD, NEW, 3, 'any')
        self.assertIn(NEW, self.cluster.agents['n1'].lvs)
        self.assertIn(OLD, self.cluster.agents['n3'].lvs)
        spec = adopt.adopt(self.ctl, OLD, NEW, 3, 'any')
        self.assertEqual(NEW, spec.name)
        for name in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[name]
            self.assertEqual([NEW], sorted(agent.lvs), name)
            self.assertEqual([NEW], sorted(agent.res), name)
        # and once more: already done, nothing changes
        self.cluster.requests.clear()
        self.assertEqual(NEW, adopt.adopt(self.ctl, OLD, NEW, 3,
                                          'any').name)
        self.assertEqual([], self.changing_requests())

    def test_adopt_refuses_a_name_taken(self):
        self.make_resource()
        self.ctl.create_volume(NEW, G, replicas=1)
        before = self.snapshot_state()
        exc = self.assertRaises(errors.InvalidRequest, adopt.adopt,
                                self.ctl, OLD, NEW, 3, 'any')
        self.assertIn(f'{NEW} exists on n1', str(exc))
        self.assertEqual(before, self.snapshot_state())

    # -- a bare thin LV --

    def test_wrap_bare_lv_full_sync_from_holder(self):
        holder = self.cluster.agents['n2']
        holder.bare['data1'] = 4 * G + (8 << 20)
        holder.data['data1'] = 'operator-data'
        spec = adopt.adopt(self.ctl, 'data1', NEW, 3, 'any')
        self.assertEqual(4 * G, spec.size)
        self.assertEqual('n2', spec.hosts[0].name)
        self.assertNotIn('data1', holder.bare)
        for name in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[name]
            self.assertEqual('operator-data', agent.data[NEW], name)
            self.assertIn(NEW, agent.uptodate)
        # a full sync from the holder, never the skip of new volumes
        self.assertEqual(['n2'], [n for n, op in self.cluster.log
                                  if op == 'sync-source'])
        self.assertEqual([], self.cluster.ops('new-current-uuid'))
        self.assertNotEqual(spec.minor,
                            self.ctl.create_volume('volume-next', G).minor)

    def test_wrap_refused_without_room_says_how_much(self):
        self.cluster.agents['n2'].bare['data1'] = 4 * G + (1 << 20)
        before = self.snapshot_state()
        exc = self.assertRaises(errors.InvalidRequest, adopt.adopt,
                                self.ctl, 'data1', NEW, 3, 'any')
        self.assertIn('extend it by 3 MiB', str(exc))
        self.assertEqual(before, self.snapshot_state())
        self.assertEqual([], self.changing_requests())

    def test_wrap_failure_leaves_the_bare_lv(self):
        holder = self.cluster.agents['n2']
        holder.bare['data1'] = 4 * G + (8 << 20)
        holder.data['data1'] = 'operator-data'
        self.cluster.faults[('n3', 'create')] = tp.NodeError(
            'n3', protocol.E_FAILED, 'lvcreate failed')
        self.assertRaises(errors.NodeOperationFailed, adopt.adopt,
                          self.ctl, 'data1', NEW, 3, 'any')
        self.assertEqual({'n2': ['data1']}, self.cluster.clean())
        self.assertEqual(4 * G + (8 << 20), holder.bare['data1'])
        self.assertEqual('operator-data', holder.data['data1'])
        # the minor and port are free again
        self.cluster.faults.clear()
        spec = self.ctl.create_volume('volume-next', G)
        self.assertEqual(1000, spec.minor)

    def test_wrap_gives_its_values_back_when_the_lock_fails(self):
        # The allocation lock fails when the wrap gives its minor and
        # port back (a coordination backend lost): they are given back
        # anyway, not held by this process until it restarts.
        locks = core.LocalLocks()
        taken = []

        def lock(name):
            if name == core.ALLOCATION_LOCK:
                taken.append(name)
                if len(taken) == 2:
                    raise RuntimeError('coordination lost')
            return locks(name)
        self.cluster, self.ctl = test_controller.make(lock=lock)
        self.addCleanup(self.ctl.close)
        self.cluster.agents['n1'].bare['data1'] = 2 * G + (8 << 20)
        self.assertRaisesRegex(RuntimeError, 'coordination lost',
                               adopt.adopt, self.ctl, 'data1', NEW, 1,
                               'any')
        self.assertEqual((frozenset(), frozenset()),
                         self.ctl.allocator.outstanding())
        self.assertEqual(frozenset(), self.ctl.in_flight.names())

    def test_wrap_with_one_replica(self):
        self.cluster.agents['n1'].bare['data1'] = 2 * G + (8 << 20)
        spec = adopt.adopt(self.ctl, 'data1', NEW, 1, 'any')
        self.assertEqual(('n1',), tuple(h.name for h in spec.hosts))
        self.assertEqual({'n1': [NEW, NEW]}, self.cluster.clean())
