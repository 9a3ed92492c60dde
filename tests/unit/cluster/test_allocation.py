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
import threading

import ddt

from blackstor_cinder.cluster import allocation
from blackstor_cinder.cluster import errors
from blackstor_cinder import protocol
from tests.unit import base


class Claims:
    """A claim registry shared by several allocators (processes)."""

    def __init__(self, taken=()):
        self.held = set(taken)
        self.tried = []
        self._lock = threading.Lock()

    def __call__(self, kind, value):
        with self._lock:
            self.tried.append((kind, value))
            if (kind, value) in self.held:
                return None
            self.held.add((kind, value))
        return lambda: self.give_back(kind, value)

    def give_back(self, kind, value):
        with self._lock:
            self.held.remove((kind, value))


@ddt.ddt
class HelpersTest(base.TestCase):

    @ddt.data(('1000-1999', range(1000, 2000)), ('7000-7000',
                                                 range(7000, 7001)))
    @ddt.unpack
    def test_parse_range(self, text, expected):
        self.assertEqual(expected, allocation.parse_range(text, 0, 1 << 20,
                                                          'minor'))

    @ddt.data('1000', '2000-1000', 'a-b', '0-70000')
    def test_parse_range_refused(self, text):
        self.assertRaises(errors.InvalidRequest, allocation.parse_range,
                          text, 1, 65535, 'port')

    @ddt.data(((1000, 2000), (1500, 2500), (1500, 2000)),
              ((1000, 2000), (2000, 3000), None),
              ((1000, 2000), (0, 1001), (1000, 1001)),
              ((7000, 8000), (7000, 8000), (7000, 8000)),
              ((1000, 1100), (1010, 1020), (1010, 1020)))
    @ddt.unpack
    def test_overlap(self, first, second, shared):
        got = allocation.overlap(range(*first), range(*second))
        self.assertEqual(range(*shared) if shared else 0,
                         got if shared else len(got))
        self.assertEqual(got, allocation.overlap(range(*second),
                                                 range(*first)))

    def test_room(self):
        self.assertEqual(10, allocation.room(range(10), ()))
        self.assertEqual(8, allocation.room(range(10), [0, 9, 10, -1, 9]))
        self.assertEqual(0, allocation.room(range(3), range(5)))

    def test_next_node_id(self):
        self.assertEqual(0, allocation.next_node_id([]))
        self.assertEqual(2, allocation.next_node_id([0, 1, 3]))
        self.assertRaises(errors.AllocationError, allocation.next_node_id,
                          range(protocol.NODE_ID_MIN,
                                protocol.NODE_ID_MAX + 1))

    def test_secret(self):
        secret = allocation.new_secret()
        self.assertTrue(protocol.SECRET_RE.match(secret))
        self.assertNotEqual(secret, allocation.new_secret())


class AllocatorTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.alloc = allocation.Allocator(range(1000, 1004),
                                          range(7000, 7004))

    def test_lowest_values_not_used(self):
        res = self.alloc.reserve({1000, 1002}, {7000})
        self.assertEqual((1001, 7001), (res.minor, res.port))

    def test_reserved_values_stay_out_until_released(self):
        first = self.alloc.reserve(set(), set())
        second = self.alloc.reserve(set(), set())
        self.assertEqual((1001, 7001), (second.minor, second.port))
        self.assertEqual(({1000, 1001}, {7000, 7001}),
                         self.alloc.outstanding())
        first.release()
        first.release()             # once is enough; no harm
        self.assertTrue(first.released)
        self.assertEqual(({1001}, {7001}), self.alloc.outstanding())
        third = self.alloc.reserve(set(), set())
        self.assertEqual((1000, 7000), (third.minor, third.port))

    def test_exhausted_ranges(self):
        exc = self.assertRaises(errors.AllocationError, self.alloc.reserve,
                                set(range(1000, 1004)), set())
        self.assertIn('minor left in 1000-1003', str(exc))
        self.assertIn('widen blackstor_minor_range', str(exc))
        exc = self.assertRaises(errors.AllocationError, self.alloc.reserve,
                                set(), set(range(7000, 7004)))
        self.assertIn('port left in 7000-7003', str(exc))
        self.assertIn('widen blackstor_port_range', str(exc))
        # a failed reservation keeps nothing
        self.assertEqual((frozenset(), frozenset()),
                         self.alloc.outstanding())

    def test_room_counts_used_and_reserved_values(self):
        self.assertEqual((4, 4), self.alloc.room((), ()))
        reservation = self.alloc.reserve({1001}, ())
        self.assertEqual((1000, 7000),
                         (reservation.minor, reservation.port))
        # used, reserved, and outside the range (ignored)
        self.assertEqual((2, 3), self.alloc.room({1001, 5}, {9000}))
        reservation.release()
        self.assertEqual((3, 4), self.alloc.room({1001}, ()))

    def test_concurrent_reservations_are_distinct(self):
        alloc = allocation.Allocator(range(1000, 1100), range(7000, 7100))
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            got = list(pool.map(lambda _: alloc.reserve(set(), set()),
                                range(50)))
        self.assertEqual(50, len({r.minor for r in got}))
        self.assertEqual(50, len({r.port for r in got}))


class ClaimTest(base.TestCase):

    def test_values_claimed_elsewhere_are_skipped(self):
        claims = Claims(taken={('minor', 1000), ('port', 7000),
                               ('port', 7001)})
        alloc = allocation.Allocator(range(1000, 1010), range(7000, 7010),
                                     claim=claims)
        res = alloc.reserve({1001}, set())
        self.assertEqual((1002, 7002), (res.minor, res.port))
        # used values are not even tried
        self.assertNotIn(('minor', 1001), claims.tried)
        self.assertIn(('minor', 1002), claims.held)
        res.release()
        self.assertNotIn(('minor', 1002), claims.held)
        self.assertNotIn(('port', 7002), claims.held)

    def test_two_allocators_sharing_claims_never_collide(self):
        claims = Claims()
        one = allocation.Allocator(range(1000, 1010), range(7000, 7010),
                                   claim=claims)
        two = allocation.Allocator(range(1000, 1010), range(7000, 7010),
                                   claim=claims)
        a = one.reserve(set(), set())
        b = two.reserve(set(), set())
        self.assertEqual((1000, 7000), (a.minor, a.port))
        self.assertEqual((1001, 7001), (b.minor, b.port))
        a.release()
        c = two.reserve(set(), set())
        self.assertEqual((1000, 7000), (c.minor, c.port))

    def test_claims_taken_are_given_back_when_reserving_fails(self):
        claims = Claims(taken={('port', p) for p in range(7000, 7003)})
        alloc = allocation.Allocator(range(1000, 1003), range(7000, 7003),
                                     claim=claims)
        self.assertRaises(errors.AllocationError, alloc.reserve, set(),
                          set())
        self.assertNotIn(('minor', 1000), claims.held)
        self.assertEqual((frozenset(), frozenset()), alloc.outstanding())

    def test_a_claim_error_gives_back_what_was_claimed(self):
        released = []

        def claim(kind, value):
            if kind == 'port':
                raise ConnectionError('coordination backend down')
            return lambda: released.append(value)

        alloc = allocation.Allocator(range(1000, 1003), range(7000, 7003),
                                     claim=claim)
        self.assertRaises(ConnectionError, alloc.reserve, set(), set())
        self.assertEqual([1000], released)
        self.assertEqual((frozenset(), frozenset()), alloc.outstanding())

    def test_a_release_error_is_logged_not_raised(self):
        def claim(kind, value):
            def release():
                raise ConnectionError('lock lost')
            return release

        alloc = allocation.Allocator(range(1000, 1003), range(7000, 7003),
                                     claim=claim)
        res = alloc.reserve(set(), set())
        with self.assertLogs(allocation.LOG, 'ERROR'):
            res.release()
        self.assertEqual((frozenset(), frozenset()), alloc.outstanding())
