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
"""Two backends with the same ranges attaching on one hypervisor.

Backend A holds its replicas on stor-a and stor-b, backend B on stor-c;
both attach on hv-1 and use the default-like ranges 1000-1999 and
7000-7999, as two backends left at the same defaults do. The real
``drbdadm`` on hv-1 refuses a second resource with a minor or port already
used there, so a collision shows as it would on a real hypervisor.
"""

from __future__ import annotations

import dataclasses
import logging

import fixtures
from oslotest import base

from blackstor_cinder.cluster import errors
from tests.functional import cluster_box

MiB = 1 << 20
SIZE = 64 * MiB


class TestTwoBackendsOneHypervisor(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        why = cluster_box.missing_prerequisites()
        if why:
            self.skipTest(why)
        self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self.box = self.useFixture(cluster_box.ClusterInABox(
            hypervisors=('hv-1',), transport='local'))
        self.a = self.backend(('stor-a', 'stor-b'))
        self.b = self.backend(('stor-c',))
        self.made: list[tuple[object, str]] = []
        self.addCleanup(self.assert_clean)
        self.addCleanup(self.remove_all)

    def backend(self, storage):
        controller = self.box.controller(connect_timeout=30.0, replicas=1)
        controller.config = dataclasses.replace(
            controller.config, storage_nodes=tuple(
                n for n in controller.config.storage_nodes
                if n.name in storage))
        return controller

    def create(self, controller, name):
        self.made.append((controller, name))
        return controller.create_volume(name, SIZE)

    def remove_all(self):
        for controller, name in reversed(self.made):
            controller.detach(name, force=True)
            controller.delete_volume(name)

    def assert_clean(self):
        self.assertEqual({}, self.box.leftovers())

    def hv1_res(self):
        return sorted(p.name for p in
                      self.box.nodes['hv-1'].resource_dir.iterdir())

    def test_shared_hypervisor(self):
        # A's volume on hv-1 holds 1000/7000 there: B skips them
        a1 = self.create(self.a, 'volume-a1')
        self.a.attach('volume-a1', 'hv-1')
        b1 = self.create(self.b, 'volume-b1')
        self.assertEqual((1000, 7000), (a1.minor, a1.port))
        self.assertEqual((1001, 7001), (b1.minor, b1.port))
        self.b.attach('volume-b1', 'hv-1')
        self.assertEqual(['volume-a1.res', 'volume-b1.res'], self.hv1_res())

        # B takes 1002/7002 while hv-1 does not use them; A cannot see
        # stor-c, takes the same and attaches first: B's attach is
        # refused before anything changes
        b2 = self.create(self.b, 'volume-b2')
        a2 = self.create(self.a, 'volume-a2')
        self.assertEqual((1002, 7002), (b2.minor, b2.port))
        self.assertEqual((1002, 7002), (a2.minor, a2.port))
        self.a.attach('volume-a2', 'hv-1')
        before = self.box.run_agent('stor-c', {'op': 'status',
                                               'resource': 'volume-b2'})
        with self.assertRaises(errors.AllocationError) as ctx:
            self.b.attach('volume-b2', 'hv-1')
        message = str(ctx.exception)
        for part in ('hv-1', 'DRBD minor 1002', 'DRBD port 7002',
                     'blackstor_minor_range', 'blackstor_port_range'):
            self.assertIn(part, message)
        self.assertEqual(['volume-a1.res', 'volume-a2.res',
                          'volume-b1.res'], self.hv1_res())
        self.assertEqual(before['definition'], self.box.run_agent(
            'stor-c', {'op': 'status',
                       'resource': 'volume-b2'})['definition'])

        # room left in B's ranges: 1000-1002 are used on its nodes
        stats = self.b.stats()
        self.assertEqual((997, 997), (stats.minors_free, stats.ports_free))
