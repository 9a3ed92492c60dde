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
"""The driver's retype, on a fake agent cluster."""

from cinder import exception
from cinder.tests.unit import fake_snapshot
from cinder.tests.unit import fake_volume

from tests.unit import test_driver

HOST = f'cv@{test_driver.BACKEND}#{test_driver.BACKEND}'


class RetypeTest(test_driver.DriverTestCase):

    def setUp(self):
        super().setUp()
        self.vol = self.volume(**{'blackstor:replicas': '3'})
        self.vol.host = HOST
        self.drv.create_volume(self.vol)

    def retype(self, qos=None, host=HOST, **specs):
        """Retype to a type of ``specs``, with Cinder's diff of the two."""
        old = dict(self.vol.volume_type.extra_specs)
        new = fake_volume.fake_volume_type_obj(self.ctxt, extra_specs=specs)
        diff = {'extra_specs': {k: (old.get(k), specs.get(k))
                                for k in set(old) | set(specs)},
                'qos_specs': qos or {}, 'encryption': {}}
        return self.drv.retype(self.ctxt, self.vol, new, diff,
                               {'host': host, 'capabilities': {}})

    def replicas(self):
        return sorted(h.name for h in self.drv.controller.find(
            self.vol.name).spec.diskful_hosts)

    def changes(self):
        return [(n, r['op']) for n, r in self.cluster.requests
                if r['op'] not in ('inventory', 'status')]

    def test_replicas_three_to_two_to_three(self):
        self.assertEqual((True, {}), self.retype(
            **{'blackstor:replicas': '2'}))
        spec = self.drv.controller.find(self.vol.name).spec
        self.assertEqual(2, len(spec.diskful_hosts))
        self.assertIsNotNone(spec.tiebreaker_host)
        self.vol.volume_type.extra_specs = {'blackstor:replicas': '2'}
        self.assertEqual((True, {}), self.retype(
            **{'blackstor:replicas': '3'}))
        self.assertEqual(['n1', 'n2', 'n3'], self.replicas())
        self.assertIsNone(self.drv.controller.find(
            self.vol.name).spec.tiebreaker_host)

    def test_backend_name_and_zones_are_ours(self):
        self.assertEqual((True, {}), self.retype(
            volume_backend_name=test_driver.BACKEND,
            **{'blackstor:replicas': '3', 'blackstor:zones': 'spread'}))
        self.assertEqual(['n1', 'n2', 'n3'], self.replicas())

    def test_what_is_not_ours_is_migrated_unchanged(self):
        before = self.changes()
        for case in (dict(specs={'blackstor:replicas': '2',
                                 'thin_provisioning_support': '<is> True'}),
                     dict(specs={'blackstor:replicas': '2'},
                          qos={'total_iops_sec': ('100', '200')}),
                     dict(specs={'blackstor:replicas': '2'},
                          host='cv@other#other')):
            self.assertEqual((False, None), self.retype(
                qos=case.get('qos'), host=case.get('host', HOST),
                **case['specs']), case)
        self.assertEqual(before, self.changes())
        self.assertEqual(['n1', 'n2', 'n3'], self.replicas())
        self.assertIn('thin_provisioning_support', self.logger.output)
        self.assertIn('qos_specs total_iops_sec', self.logger.output)
        self.assertIn('another backend', self.logger.output)

    def test_same_cluster_other_host_is_ours(self):
        self.vol.cluster_name = f'cl@{test_driver.BACKEND}'
        new = fake_volume.fake_volume_type_obj(
            self.ctxt, extra_specs={'blackstor:replicas': '2'})
        self.assertEqual((True, {}), self.drv.retype(
            self.ctxt, self.vol, new, {},
            {'host': f'cv2@{test_driver.BACKEND}',
             'cluster_name': f'cl@{test_driver.BACKEND}'}))
        self.assertEqual(2, len(self.replicas()))

    def test_a_replica_more_with_snapshots_is_migrated(self):
        vol = self.volume(**{'blackstor:replicas': '2'})
        vol.host = HOST
        self.drv.create_volume(vol)
        snap = fake_snapshot.fake_snapshot_obj(self.ctxt, volume_size=1)
        snap.volume = vol
        self.drv.create_snapshot(snap)
        self.vol = vol
        before = self.changes()
        self.assertEqual((False, None), self.retype(
            **{'blackstor:replicas': '3'}))
        self.assertIn(f'snap-{snap.id}', self.logger.output)
        self.assertEqual(before, self.changes())

    def test_impossible_is_an_error_unchanged(self):
        before = self.changes()
        self.assertRaises(exception.InvalidInput, self.retype,
                          **{'blackstor:replicas': '4'})
        self.assertRaises(exception.InvalidVolumeType, self.retype,
                          **{'blackstor:replicas': 'many'})
        self.cluster.down.add('n3')
        self.assertRaises(exception.VolumeBackendAPIException, self.retype,
                          **{'blackstor:replicas': '2'})
        self.assertEqual(before, self.changes())
