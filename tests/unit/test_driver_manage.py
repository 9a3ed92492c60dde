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
"""The driver's manage / unmanage, on a fake agent cluster."""

import copy
import uuid

from cinder import exception
from cinder import objects
from cinder.tests.unit import fake_snapshot

from tests.unit import test_driver

G = 1 << 30
OLD = 'volume-left-by-another-cinder'


class ManageTest(test_driver.DriverTestCase):

    def state(self):
        return {name: copy.deepcopy((a.lvs, a.res, a.bare, a.data))
                for name, a in self.cluster.agents.items()}

    def changing_requests(self):
        return [(n, r['op']) for n, r in self.cluster.requests
                if r['op'] not in ('inventory', 'status')]

    def test_interface_is_our_own(self):
        from cinder.interface import volume_manageable_driver as vmd
        from cinder.interface import volume_snapshotmanagement_driver as smd
        names = set()
        for iface in (vmd.VolumeListManageableDriver,
                      vmd.VolumeManagementDriver,
                      smd.VolumeSnapshotManagementDriver):
            names |= test_driver.interface_functions(iface)
        self.assertEqual(8, len(names))
        for name in names:
            self.assertIn(name, vars(type(self.drv)), name)

    def snapshot(self, vol):
        snap = fake_snapshot.fake_snapshot_obj(
            self.ctxt, volume_size=vol.size, id=str(uuid.uuid4()))
        snap.volume = vol
        return snap

    def volume_with_foreign_snapshot(self):
        """A managed volume with a snapshot LV Cinder does not know."""
        vol = self.volume(size=2)
        self.drv.create_volume(vol)
        self.drv.controller.create_snapshot(vol.name, 'snap-elsewhere')
        return vol

    def test_manage_a_snapshot(self):
        vol = self.volume_with_foreign_snapshot()
        snap = self.snapshot(vol)
        ref = {'source-name': 'snap-elsewhere'}
        self.assertEqual(2, self.drv.manage_existing_snapshot_get_size(
            snap, ref))
        self.assertEqual({}, self.drv.manage_existing_snapshot(snap, ref))
        for name in ('n1', 'n2', 'n3'):
            self.assertEqual([f'snap-{snap.id}'],
                             sorted(self.cluster.agents[name].snapshots))
        # it is a snapshot like any other
        new = self.volume(size=2)
        self.drv.create_volume_from_snapshot(new, snap)
        self.assertIn(new.name, self.cluster.agents['n1'].lvs)
        self.drv.unmanage_snapshot(snap)
        self.assertIn(f'snap-{snap.id}', self.cluster.agents['n1'].snapshots)

    def test_snapshot_of_another_volume_refused(self):
        vol = self.volume_with_foreign_snapshot()
        other = self.volume(size=1)
        self.drv.create_volume(other)
        before = self.state()
        self.cluster.requests.clear()
        for method in (self.drv.manage_existing_snapshot_get_size,
                       self.drv.manage_existing_snapshot):
            exc = self.assertRaises(
                exception.ManageExistingInvalidReference, method,
                self.snapshot(other), {'source-name': 'snap-elsewhere'})
            self.assertIn(f'a snapshot of {vol.name}, not of {other.name}',
                          str(exc))
            self.assertRaises(
                exception.ManageExistingInvalidReference, method,
                self.snapshot(vol), {'source-name': '../x'})
        self.assertEqual(before, self.state())
        self.assertEqual([], self.changing_requests())

    def test_snapshot_missing_on_a_replica_refused(self):
        vol = self.volume_with_foreign_snapshot()
        del self.cluster.agents['n3'].snapshots['snap-elsewhere']
        exc = self.assertRaises(
            exception.ManageExistingInvalidReference,
            self.drv.manage_existing_snapshot, self.snapshot(vol),
            {'source-name': 'snap-elsewhere'})
        self.assertIn('not on the replica(s) n3', str(exc))
        self.assertIn('snap-elsewhere', self.cluster.agents['n1'].snapshots)

    def test_snapshot_rename_failure_rolls_back(self):
        vol = self.volume_with_foreign_snapshot()
        from blackstor_cinder.cluster import transport as tp
        self.cluster.faults[('n2', 'snapshot-rename')] = tp.NodeError(
            'n2', 'command-failed', 'lvrename failed')
        self.assertRaises(exception.VolumeBackendAPIException,
                          self.drv.manage_existing_snapshot,
                          self.snapshot(vol),
                          {'source-name': 'snap-elsewhere'})
        for name in ('n1', 'n2', 'n3'):
            self.assertEqual(['snap-elsewhere'],
                             sorted(self.cluster.agents[name].snapshots))

    def test_get_manageable_snapshots(self):
        vol = self.volume_with_foreign_snapshot()
        known = self.snapshot(vol)
        self.drv.create_snapshot(known)
        rows = self.drv.get_manageable_snapshots([known], None, 100, 0,
                                                 ['size'], ['asc'])
        by_name = {r['reference']['source-name']: r for r in rows}
        self.assertEqual({'snap-elsewhere', f'snap-{known.id}'},
                         set(by_name))
        row = by_name['snap-elsewhere']
        self.assertEqual((True, None, None, 2, {'source-name': vol.name}),
                         (row['safe_to_manage'], row['reason_not_safe'],
                          row['cinder_id'], row['size'],
                          row['source_reference']))
        self.assertEqual(len(rows), len(
            objects.ManageableSnapshotList.from_primitives(self.ctxt, rows)))
        row = by_name[f'snap-{known.id}']
        self.assertEqual((False, 'already managed', known.id),
                         (row['safe_to_manage'], row['reason_not_safe'],
                          row['cinder_id']))

    def test_manage_a_resource_under_another_name(self):
        self.drv.controller.create_volume(OLD, 2 * G)
        vol = self.volume(size=0)
        ref = {'source-name': OLD}
        self.assertEqual(2, self.drv.manage_existing_get_size(vol, ref))
        self.assertEqual({}, self.drv.manage_existing(vol, ref))
        for name in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[name]
            self.assertEqual([vol.name], sorted(agent.lvs))
            self.assertEqual([vol.name], sorted(agent.res))
        # and it is a volume like any other: attach finds it
        path = self.drv.initialize_connection(
            vol, {'host': 'hv1'})['data']['device_path']
        self.assertEqual(f'/dev/drbd/by-res/{vol.name}/0', path)

    def test_manage_grows_a_resource_to_whole_gib(self):
        self.drv.controller.create_volume(OLD, 3 * G // 2)
        vol = self.volume(size=0)
        ref = {'source-name': OLD}
        self.assertEqual(2, self.drv.manage_existing_get_size(vol, ref))
        self.drv.manage_existing(vol, ref)
        self.assertEqual(2 * G, self.drv.controller.find(vol.name).spec.size)

    def test_manage_a_bare_lv(self):
        holder = self.cluster.agents['n2']
        holder.bare['imported'] = 3 * G + (8 << 20)
        holder.data['imported'] = 'operator-data'
        vol = self.volume(size=0)
        ref = {'source-name': 'imported'}
        self.assertEqual(3, self.drv.manage_existing_get_size(vol, ref))
        self.drv.manage_existing(vol, ref)
        for name in ('n1', 'n2', 'n3'):
            self.assertEqual('operator-data',
                             self.cluster.agents[name].data[vol.name])
        self.assertEqual({}, holder.bare)

    def test_no_room_is_an_invalid_reference_with_the_reason(self):
        self.cluster.agents['n1'].bare['tight'] = 3 * G
        vol = self.volume(size=0)
        before = self.state()
        exc = self.assertRaises(
            exception.ManageExistingInvalidReference,
            self.drv.manage_existing_get_size, vol, {'source-name': 'tight'})
        self.assertIn('extend it by 4 MiB', str(exc))
        exc = self.assertRaises(
            exception.ManageExistingInvalidReference,
            self.drv.manage_existing, vol, {'source-name': 'tight'})
        self.assertIn('extend it by 4 MiB', str(exc))
        self.assertEqual(before, self.state())
        self.assertEqual([], self.changing_requests())

    def test_bad_references_change_nothing(self):
        self.drv.controller.create_volume(OLD, G)
        vol = self.volume(size=0)
        before = self.state()
        self.cluster.requests.clear()
        for ref in ({}, {'source-id': OLD}, {'source-name': '../../etc'},
                    {'source-name': 'x;rm -rf /'}, {'source-name': ''},
                    {'source-name': 'volume-nowhere'}, None):
            for method in (self.drv.manage_existing_get_size,
                           self.drv.manage_existing):
                self.assertRaises(exception.ManageExistingInvalidReference,
                                  method, vol, ref)
        self.assertEqual(before, self.state())
        self.assertEqual([], self.changing_requests())

    def test_attached_resource_refused_with_the_reason(self):
        self.drv.controller.create_volume(OLD, G)
        self.drv.controller.attach(OLD, 'hv1')
        vol = self.volume(size=0)
        exc = self.assertRaises(exception.ManageExistingInvalidReference,
                                self.drv.manage_existing, vol,
                                {'source-name': OLD})
        self.assertIn('attached to hv1: detach it first', str(exc))
        self.assertIn(OLD, self.cluster.agents['n1'].lvs)

    def test_unmanage_changes_nothing_on_the_nodes(self):
        vol = self.volume(size=1)
        self.drv.create_volume(vol)
        before = self.state()
        self.cluster.requests.clear()
        self.drv.unmanage(vol)
        self.assertEqual([], self.cluster.requests)
        self.assertEqual(before, self.state())
        # and it can be managed again, under another volume's name
        other = self.volume(size=0)
        self.drv.manage_existing(other, {'source-name': vol.name})
        self.assertIn(other.name, self.cluster.agents['n1'].lvs)

    def test_get_manageable_volumes(self):
        managed = self.volume(size=1)
        self.drv.create_volume(managed)
        self.drv.controller.create_volume(OLD, 2 * G)
        self.cluster.agents['n3'].bare['imported'] = 3 * G + (8 << 20)
        self.cluster.agents['n3'].bare['tight'] = G
        rows = self.drv.get_manageable_volumes([managed], None, 1000, 0,
                                               ['size'], ['asc'])
        by_name = {r['reference']['source-name']: r for r in rows}
        self.assertEqual({managed.name, OLD, 'imported', 'tight'},
                         set(by_name))
        self.assertEqual(
            (False, 'already managed', managed.id, 1),
            tuple(by_name[managed.name][k] for k in (
                'safe_to_manage', 'reason_not_safe', 'cinder_id', 'size')))
        self.assertEqual((True, None, None, 2), tuple(
            by_name[OLD][k] for k in (
                'safe_to_manage', 'reason_not_safe', 'cinder_id', 'size')))
        self.assertEqual((True, 3), (by_name['imported']['safe_to_manage'],
                                     by_name['imported']['size']))
        self.assertEqual({'kind': 'lv', 'nodes': 'n3'},
                         by_name['imported']['extra_info'])
        # what cinder-volume's manager makes of them (want_objects)
        listed = objects.ManageableVolumeList.from_primitives(self.ctxt,
                                                              rows)
        self.assertEqual(len(rows), len(listed))
        self.assertFalse(by_name['tight']['safe_to_manage'])
        self.assertIn('extend it by 4 MiB',
                      by_name['tight']['reason_not_safe'])
        self.assertEqual([1, 1, 2, 3], [r['size'] for r in rows])
        page = self.drv.get_manageable_volumes([managed], None, 2, 1,
                                               ['size'], ['desc'])
        self.assertEqual([2, 1], [r['size'] for r in page])
