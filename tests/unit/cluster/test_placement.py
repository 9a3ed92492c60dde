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

import itertools

import ddt

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import placement
from tests.unit import base

G = 1 << 30


def cand(name, free, total=None, zone=None, provisioned=0, resources=0):
    return placement.Candidate(name, zone, (total or free) * G, free * G,
                               provisioned * G, resources)


def brute_force(caps, replicas):
    """Largest T (in whole units) placeable by exhaustive packing."""
    best = 0
    for total in range(sum(caps) // replicas + 1):
        # Greedy unit-by-unit placement on the r emptiest-most nodes is
        # optimal for unit-size volumes.
        left = list(caps)
        ok = True
        for _ in range(total):
            order = sorted(range(len(left)), key=lambda i: -left[i])
            if left[order[replicas - 1]] <= 0:
                ok = False
                break
            for i in order[:replicas]:
                left[i] -= 1
        if ok:
            best = total
    return best


@ddt.ddt
class PlaceableTotalTest(base.TestCase):

    @ddt.data(
        # (per-node capacity, replicas, expected)
        ([10, 20, 30], 1, 60),
        ([10, 20, 30], 2, 30),
        ([10, 20, 30], 3, 10),
        ([100, 10, 10], 2, 20),
        ([100, 10, 10], 3, 10),
        ([10, 10, 10, 10], 3, 13),
        ([5, 5], 3, 0),
        ([0, 50, 50], 2, 50),
        ([], 1, 0),
    )
    @ddt.unpack
    def test_table(self, caps, replicas, expected):
        got = placement.placeable_total([c * G for c in caps], replicas)
        self.assertEqual(expected, got // G)

    def test_matches_exhaustive_packing(self):
        for caps in itertools.product([0, 3, 7, 12], repeat=3):
            for replicas in (1, 2, 3):
                self.assertEqual(
                    brute_force(list(caps), replicas),
                    placement.placeable_total(list(caps), replicas),
                    f'{caps} x{replicas}')

    def test_neither_sum_nor_smallest(self):
        nodes = [cand('a', 100), cand('b', 40), cand('c', 20)]
        got = placement.capacity(nodes, 2, placement.ANY) // G
        self.assertEqual(60, got)
        self.assertNotEqual(160, got)     # the sum
        self.assertNotEqual(20, got)      # the smallest node

    def test_spread_groups_by_zone(self):
        nodes = [cand('a', 50, zone='z1'), cand('b', 50, zone='z1'),
                 cand('c', 30, zone='z2')]
        # Two replicas in distinct zones: z2 bounds it.
        self.assertEqual(30, placement.capacity(nodes, 2,
                                                placement.SPREAD) // G)
        self.assertEqual(65, placement.capacity(nodes, 2,
                                                placement.ANY) // G)
        self.assertEqual(0, placement.capacity(nodes, 3,
                                               placement.SPREAD))


class PlaceTest(base.TestCase):

    def test_most_free_first(self):
        nodes = [cand('a', 10), cand('b', 30), cand('c', 20)]
        self.assertEqual(['b', 'c'], placement.place(nodes, G, 2,
                                                     placement.ANY, 1.0))

    def test_ties_go_to_fewer_resources(self):
        nodes = [cand('a', 10, resources=5), cand('b', 10, resources=1)]
        self.assertEqual(['b'], placement.place(nodes, G, 1,
                                                placement.ANY, 1.0))

    def test_spread_uses_distinct_zones(self):
        nodes = [cand('a', 90, zone='z1'), cand('b', 80, zone='z1'),
                 cand('c', 10, zone='z2'), cand('d', 5, zone='z3')]
        chosen = placement.place(nodes, G, 3, placement.SPREAD, 1.0)
        self.assertEqual(['a', 'c', 'd'], chosen)

    def test_not_enough_zones(self):
        nodes = [cand('a', 90, zone='z1'), cand('b', 80, zone='z1')]
        exc = self.assertRaises(errors.PlacementError, placement.place,
                                nodes, G, 2, placement.SPREAD, 1.0)
        self.assertIn('only 1 zones', str(exc))

    def test_too_large_names_largest(self):
        nodes = [cand('a', 10), cand('b', 10)]
        exc = self.assertRaises(errors.PlacementError, placement.place,
                                nodes, 11 * G, 2, placement.ANY, 1.0)
        self.assertIn(str(10 * G), str(exc))

    def test_refusals_name_the_nodes_that_are_not_available(self):
        why = {'c': 'cannot connect to 10.0.0.3:22: Connection refused',
               'd': 'the DRBD kernel module 9.1.0 is too old'}
        for nodes, size, replicas in (([cand('a', 10), cand('b', 10)], G, 3),
                                      ([cand('a', 1), cand('b', 1)], 5 * G,
                                       2)):
            exc = self.assertRaises(errors.PlacementError, placement.place,
                                    nodes, size, replicas, placement.ANY,
                                    1.0, why)
            self.assertIn('; c is not available: cannot connect to '
                          '10.0.0.3:22: Connection refused; d is not '
                          'available: the DRBD kernel module 9.1.0 is too '
                          'old', str(exc))

    def test_over_subscription_counts_provisioned(self):
        nodes = [cand('a', 10, provisioned=15), cand('b', 10)]
        # a: 10 * 2.0 - 15 = 5 GiB left to promise.
        self.assertEqual(['b'], placement.place(nodes, 6 * G, 1,
                                                placement.ANY, 2.0))
        self.assertEqual(5 * G, placement.largest_volume(
            nodes, 2, placement.ANY, 2.0))

    def test_unknown_policy(self):
        self.assertRaises(errors.InvalidRequest, placement.place,
                          [cand('a', 1)], 1, 1, 'nearby', 1.0)


class InFlightTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.flight = placement.InFlight()

    def test_counts_what_a_finished_create_would(self):
        self.flight.add('volume-a', ['a', 'b'], 4 * G)
        self.flight.add('volume-b', ['a'], 2 * G)
        got = self.flight.apply(cand('a', 10, provisioned=1, resources=3),
                                volumes=(), resources=())
        # thin: the free space stays, the promise and the count grow
        self.assertEqual((10 * G, 7 * G, 5), (got.free_bytes,
                                              got.provisioned_bytes,
                                              got.resources))
        got = self.flight.apply(cand('b', 10), (), ())
        self.assertEqual((4 * G, 1), (got.provisioned_bytes, got.resources))
        other = cand('c', 10)
        self.assertIs(other, self.flight.apply(other, (), ()))

    def test_what_the_node_reports_is_not_counted_twice(self):
        self.flight.add('volume-a', ['a'], 4 * G)
        node = cand('a', 10, provisioned=4, resources=1)
        # LV and .res already there
        self.assertEqual(node, self.flight.apply(node, {'volume-a'},
                                                 {'volume-a'}))
        # .res written, LV not yet
        got = self.flight.apply(node, (), {'volume-a'})
        self.assertEqual((8 * G, 1), (got.provisioned_bytes, got.resources))

    def test_discard(self):
        self.flight.add('volume-a', ['a'], 4 * G)
        self.assertEqual({'volume-a'}, self.flight.names())
        self.flight.discard('volume-a')
        self.flight.discard('volume-a')
        self.assertEqual(frozenset(), self.flight.names())
        node = cand('a', 10)
        self.assertEqual(node, self.flight.apply(node, (), ()))

    def test_one_create_per_name(self):
        self.flight.add('volume-a', ['a'], G)
        self.assertRaises(ValueError, self.flight.add, 'volume-a', ['b'], G)

    def test_placement_spreads_and_refuses_with_volumes_in_flight(self):
        nodes = [cand('a', 10), cand('b', 10), cand('c', 10)]
        self.assertEqual(['a', 'b'], placement.place(nodes, 6 * G, 2,
                                                     placement.ANY, 1.0))
        self.flight.add('volume-a', ['a', 'b'], 6 * G)
        counted = [self.flight.apply(n, (), ()) for n in nodes]
        exc = self.assertRaises(errors.PlacementError, placement.place,
                                counted, 6 * G, 2, placement.ANY, 1.0)
        self.assertIn(str(4 * G), str(exc))
        self.assertEqual(['c', 'a'], placement.place(counted, 4 * G, 2,
                                                     placement.ANY, 1.0))
