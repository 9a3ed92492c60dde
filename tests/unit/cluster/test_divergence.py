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
"""Which replicas' .res files disagree, and which copy is the majority."""

import copy


from blackstor_cinder.cluster import divergence
from tests.unit import base

NAME = 'volume-1'


def definition(replicas=('n1', 'n2', 'n3'), clients=(), port=7000,
               two=False):
    hosts = []
    for node_id, host in enumerate(list(replicas) + list(clients)):
        diskful = host in replicas
        hosts.append({'name': host, 'node_id': node_id,
                      'address': f'10.0.0.{node_id + 1}', 'port': port,
                      'family': 'ipv4', 'diskful': diskful,
                      'disk': f'/dev/vg/{NAME}' if diskful else None})
    return {'name': NAME, 'minor': 1000, 'secret': 's' * 20,
            'net': {'allow-two-primaries': 'yes'} if two else {},
            'options': {}, 'disk': {}, 'hosts': hosts}


def inventories(**by_node):
    """{node: {'resources': {NAME: entry}}} from node=definition."""
    return {node: {'resources': {NAME: {'definition': d, 'state': None}}}
            for node, d in by_node.items() if d is not None}


class KeyTest(base.TestCase):

    def test_order_of_hosts_and_secret_do_not_matter(self):
        one = definition()
        other = copy.deepcopy(one)
        other['hosts'].reverse()
        other['secret'] = 'other'
        self.assertEqual(divergence.key(one), divergence.key(other))

    def test_client_port_and_two_primaries_matter(self):
        base = divergence.key(definition())
        self.assertNotEqual(base, divergence.key(definition(
            clients=('hv1',))))
        self.assertNotEqual(base, divergence.key(definition(port=7001)))
        self.assertNotEqual(base, divergence.key(definition(two=True)))


class CollectTest(base.TestCase):

    def test_agreeing_replicas_are_not_divergent(self):
        res = divergence.collect(inventories(
            n1=definition(), n2=definition(), n3=definition()))[NAME]
        self.assertEqual({}, res.divergent)
        self.assertEqual(['n1', 'n2', 'n3'], res.sources)

    def test_stale_replica_is_divergent(self):
        new = definition(clients=('hv1',))
        res = divergence.collect(inventories(
            n1=new, n2=copy.deepcopy(new), n3=definition()))[NAME]
        self.assertEqual(['n3'], list(res.divergent))
        self.assertEqual(divergence.key(new), divergence.key(res.majority))
        self.assertEqual(['n1', 'n2'], res.sources)
        self.assertTrue(divergence.confirmed(res))

    def test_tie_has_no_majority(self):
        res = divergence.collect(inventories(
            n1=definition(('n1', 'n2'), ('hv1',)),
            n2=definition(('n1', 'n2'))))[NAME]
        self.assertIsNone(res.majority)
        self.assertEqual(['n1', 'n2'], sorted(res.divergent))
        self.assertEqual([], res.sources)
        self.assertFalse(divergence.confirmed(res))

    def connected(self, entries, node, *peers):
        entries[node]['resources'][NAME]['state'] = {'connections': [
            {'name': p, 'connection-state': 'Connected'} for p in peers]}

    def test_tie_decided_by_the_client_drbd_has_connected(self):
        # n2 was down while hv1 attached: its .res lacks hv1, so DRBD
        # never connected them; n1 serves hv1
        entries = inventories(n1=definition(('n1', 'n2'), ('hv1',)),
                              n2=definition(('n1', 'n2')))
        self.connected(entries, 'n1', 'n2', 'hv1')
        self.connected(entries, 'n2', 'n1')
        res = divergence.collect(entries)[NAME]
        self.assertEqual(entries['n1']['resources'][NAME]['definition'],
                         res.majority)
        self.assertEqual(['n2'], list(res.divergent))
        self.assertTrue(divergence.confirmed(res))
        self.assertFalse(divergence.confirmed(res, ('n1',)))

    def test_tie_undecided_without_a_connected_client(self):
        # hv1 down (or detached while n1 was down): no evidence either way
        entries = inventories(n1=definition(('n1', 'n2'), ('hv1',)),
                              n2=definition(('n1', 'n2')))
        self.connected(entries, 'n1', 'n2')
        self.connected(entries, 'n2', 'n1')
        res = divergence.collect(entries)[NAME]
        self.assertIsNone(res.majority)
        self.assertFalse(divergence.confirmed(res))

    def test_tie_in_more_than_clients_stays_undecided(self):
        entries = inventories(n1=definition(('n1', 'n2'), ('hv1',)),
                              n2=definition(('n1', 'n2'), port=7001))
        self.connected(entries, 'n1', 'hv1')
        res = divergence.collect(entries)[NAME]
        self.assertIsNone(res.majority)

    def test_copy_not_listing_its_node_as_replica_is_ignored(self):
        # hv1's .res (a client) is not a replica's copy.
        res = divergence.collect(inventories(
            n1=definition(), hv1=definition(port=7005)))[NAME]
        self.assertEqual(['n1'], list(res.copies))
        self.assertEqual({}, res.divergent)

    def test_majority_of_reachable_copies_only_is_not_confirmed(self):
        # 5 replicas, 3 read: 2 agree. A majority of what was read, not
        # of the replicas: the 2 unread ones may hold n3's copy.
        five = ('n1', 'n2', 'n3', 'n4', 'n5')
        new = definition(five, ('hv1',))
        res = divergence.collect(inventories(
            n1=new, n2=copy.deepcopy(new), n3=definition(five)))[NAME]
        self.assertIsNotNone(res.majority)
        self.assertEqual(['n3'], list(res.divergent))
        self.assertFalse(divergence.confirmed(res, ('n4', 'n5')))
        self.assertTrue(divergence.confirmed(res, ()))

    def test_replica_without_res_does_not_count(self):
        res = divergence.collect(inventories(n1=definition(('n1', 'n2'))))[
            NAME]
        self.assertTrue(divergence.confirmed(res, ('n3',)))
        self.assertFalse(divergence.confirmed(res, ('n2',)))

    def test_divergent_names(self):
        stale = inventories(n1=definition(clients=('hv1',)),
                            n2=definition(clients=('hv1',)),
                            n3=definition())
        fine = {'n1': {'volume-2': {'definition': dict(
            definition(), name='volume-2'), 'state': None}}}
        resources = {node: dict(reply['resources'])
                     for node, reply in stale.items()}
        resources['n1'].update(fine['n1'])
        self.assertEqual((NAME,), divergence.divergent_names(resources))
        self.assertEqual((), divergence.divergent_names({}))

    def test_a_client_with_an_old_two_primaries_is_stale(self):
        now = definition(clients=('hv1', 'hv2'))
        old = definition(clients=('hv1', 'hv2'), two=True)
        res = divergence.collect(inventories(
            n1=now, n2=copy.deepcopy(now), n3=copy.deepcopy(now),
            hv1=old, hv2=copy.deepcopy(now)))[NAME]
        self.assertEqual({}, res.divergent)
        self.assertEqual(['hv1', 'hv2'], sorted(res.clients))
        self.assertEqual(['hv1'], res.stale_clients)
        self.assertEqual([], res.left_clients)
        self.assertEqual((NAME,), divergence.divergent_names(
            {n: r['resources'] for n, r in inventories(
                n1=now, n2=now, n3=now, hv1=old).items()}))

    def test_a_client_the_replicas_no_longer_list_is_left_behind(self):
        now = definition()
        res = divergence.collect(inventories(
            n1=now, n2=copy.deepcopy(now),
            hv1=definition(clients=('hv1',), two=True)))[NAME]
        self.assertEqual([], res.stale_clients)
        self.assertEqual(['hv1'], res.left_clients)

    def test_clients_in_sync_or_of_other_replicas_are_left_alone(self):
        now = definition(clients=('hv1',))
        other = definition(('m1', 'm2', 'm3'), ('hv2',))
        resources = inventories(n1=now, n2=now, n3=now, hv1=now, hv2=other)
        res = divergence.collect(resources)[NAME]
        self.assertEqual([], res.stale_clients)
        self.assertEqual([], res.left_clients)
        # a resource held by a client only (another backend's) is not ours
        self.assertEqual((), divergence.divergent_names(
            {'hv2': resources['hv2']['resources']}))

    def test_a_client_size_behind_is_not_stale(self):
        now = definition(clients=('hv1',))
        now['disk'] = {'size': '2097152k'}
        behind = copy.deepcopy(now)
        behind['disk'] = {'size': '1048576k'}
        res = divergence.collect(inventories(
            n1=now, n2=now, n3=now, hv1=behind))[NAME]
        self.assertEqual([], res.stale_clients)

    def test_a_pending_zeroing_needs_a_repair(self):
        agree = {node: {NAME: {'definition': definition(), 'state': None}}
                 for node in ('n1', 'n2', 'n3')}
        self.assertEqual((), divergence.divergent_names(agree))
        agree['n2'][NAME]['zero_pending'] = [1 << 30, (1 << 30) + 4096]
        self.assertEqual((NAME,), divergence.divergent_names(agree))
        res = divergence.collect({n: {'resources': r}
                                  for n, r in agree.items()})[NAME]
        self.assertEqual({}, res.divergent)
        self.assertEqual({'n2': [1 << 30, (1 << 30) + 4096]},
                         res.zero_pending)
        replies = {n: {'exists': True, 'definition': definition(),
                       'state': None, 'zero_pending': None}
                   for n in ('n1', 'n2')}
        replies['n1']['zero_pending'] = [1, 2]
        self.assertEqual({'n1': [1, 2]}, divergence.from_status(
            NAME, replies).zero_pending)

    def test_from_status(self):
        new = definition(clients=('hv1',))
        replies = {'n1': {'exists': True, 'definition': new, 'state': None},
                   'n2': {'exists': True, 'definition': new, 'state': None},
                   'n3': {'exists': False, 'definition': None,
                          'state': None}}
        res = divergence.from_status(NAME, replies)
        self.assertEqual(['n1', 'n2'], sorted(res.copies))
        self.assertEqual({}, res.divergent)
        empty = divergence.from_status(NAME, {'n1': replies['n3']})
        self.assertEqual((NAME, {}, None), (empty.name, empty.copies,
                                            empty.majority))


def sized(size, **kw):
    d = definition(**kw)
    d['disk'] = {'size': size}
    return d


class SizeTest(base.TestCase):
    """A replica left at an old size is divergent; repair to the largest."""

    def test_size_is_part_of_the_key(self):
        self.assertNotEqual(divergence.key(sized('1048576k')),
                            divergence.key(sized('2097152k')))
        self.assertEqual(divergence.key(sized('1048576k')),
                         divergence.key(sized('1024m')))

    def test_a_replica_behind_is_repaired_to_the_largest(self):
        res = divergence.collect(inventories(
            n1=sized('2097152k'), n2=sized('2097152k'),
            n3=sized('1048576k')))[NAME]
        self.assertEqual(['n3'], list(res.divergent))
        self.assertEqual('2097152k', res.majority['disk']['size'])
        self.assertTrue(divergence.confirmed(res))

    def test_the_largest_wins_even_held_by_a_minority(self):
        # An extend that grew every LV, resized on n1, then stopped: the
        # others' old size must not be pushed back onto n1.
        res = divergence.collect(inventories(
            n1=sized('3145728k'), n2=sized('1048576k'),
            n3=sized('1048576k')))[NAME]
        self.assertEqual('3145728k', res.majority['disk']['size'])
        self.assertEqual(['n2', 'n3'], sorted(res.divergent))
        self.assertEqual(['n1', 'n2', 'n3'], res.sources)
        self.assertTrue(divergence.confirmed(res))

    def test_the_size_comes_with_the_majority_shape_only(self):
        new = sized('1048576k', clients=('hv1',))
        res = divergence.collect(inventories(
            n1=new, n2=copy.deepcopy(new),
            n3=sized('2097152k')))[NAME]
        self.assertEqual(divergence.shape(new),
                         divergence.shape(res.majority))
        self.assertEqual('2097152k', res.majority['disk']['size'])
        self.assertEqual(['n1', 'n2', 'n3'], sorted(res.divergent))
