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
"""create, create-from-snapshot, adjust and delete on a fake node."""

import os
from unittest import mock


from blackstor_cinder.node import sizing
from blackstor_cinder.node import undo
from blackstor_cinder import protocol
from tests.unit.node import fakes
from tests.unit.node import samples
from tests.unit.node import test_agent

GiB = fakes.GiB
MiB = fakes.MiB
EXTENT = 4 * MiB


class CreateTestCase(test_agent.AgentTestCase):

    def test_create(self):
        result = self.ok('create', **self.create_req())
        need = self.need()
        self.assertEqual(
            [['lvcreate', '--yes', '--type', 'thin', '--virtualsize',
              f'{need}b', '--thinpool', 'thin', '--name', 'r0', '--addtag',
              'blackstor', 'vg0'],
             ['drbdadm', '--', '--max-peers=7', '--force', 'create-md',
              'r0'],
             ['drbdadm', 'up', 'r0']], self.changes())
        self.assertEqual(need, self.fake.lvs[('vg0', 'r0')]['size'])
        self.assertGreaterEqual(sizing.usable_size_of(need, 7), GiB)
        self.assertEqual({'resource': 'r0', 'lv': 'vg0/r0', 'lv_size': need,
                          'usable_size': sizing.usable_size_of(need, 7),
                          'lv_created': True, 'res_created': True,
                          'res_changed': True, 'md_created': True,
                          'brought_up': True, 'drbd': 'up'}, result)
        res = (self.res_dir / 'r0.res').read_text()
        self.assertIn(samples.SECRET, res)
        self.assertNotIn(samples.SECRET, self.log.output)
        self.assertIn('r0', self.fake.running)
        # The .res was checked by drbdadm as nodea before it was written.
        validated = [c for c in self.fake.calls if 'sh-ll-dev' in c]
        self.assertEqual(1, len(validated))
        for argv, env in zip(self.fake.calls, self.fake.envs):
            if argv[0] == 'drbdadm':
                self.assertEqual('nodea', env['__DRBD_NODE__'])

    def test_create_with_device_size(self):
        req = self.create_req()
        req['spec'] = samples.spec(size=GiB)
        self.ok('create', **req)
        self.assertIn('size 1048576k;',
                      (self.res_dir / 'r0.res').read_text())
        self.assertEqual(self.need(), self.fake.lvs[('vg0', 'r0')]['size'])

    def test_max_peers(self):
        self.ok('create', **self.create_req(max_peers=2, size=100 * GiB))
        self.assertIn(['drbdadm', '--', '--max-peers=2', '--force',
                       'create-md', 'r0'], self.changes())
        self.assertEqual(sizing.lv_size_for(100 * GiB, 2, EXTENT),
                         self.fake.lvs[('vg0', 'r0')]['size'])

    def test_twice_is_noop(self):
        self.ok('create', **self.create_req())
        state = self.fake.snapshot()
        self.fake.calls.clear()
        result = self.ok('create', **self.create_req())
        self.assertEqual([], self.changes())
        self.assertEqual(state, self.fake.snapshot())
        self.assertFalse(result['lv_created'])
        self.assertFalse(result['md_created'])
        self.assertFalse(result['res_created'])
        self.assertFalse(result['brought_up'])
        self.assertEqual('unchanged', result['drbd'])

    def test_create_id_tags_the_lv(self):
        create_id = 'a' * 32
        self.ok('create', **self.create_req(create_id=create_id))
        self.assertEqual(['blackstor', f'blackstor-create-{create_id}'],
                         self.fake.lvs[('vg0', 'r0')]['tags'])
        self.assertIn('--addtag', self.changes()[0])
        # the inventory reports it (a heal finds the replica it added)
        volumes = self.ok('inventory')['volumes']
        self.assertEqual([create_id], next(
            v['create_ids'] for v in volumes if v['name'] == 'r0'))

    def test_bad_create_id(self):
        for value in ('A' * 32, 'a' * 31, 'a' * 33, 'g' * 32, 12, None):
            self.error('create', protocol.E_INVALID, 'create_id',
                       **self.create_req(create_id=value))
        self.assertEqual([], self.fake.calls)

    def test_existing_lv_of_a_used_replica_refused(self):
        self.fake.add_lv('vg0', 'r0', 2 * GiB)
        self.fake.metadata['/dev/vg0/r0'] = 7
        self.fake.uuids['/dev/vg0/r0'] = 0x9F3C00A1B2C3D4E4
        err, before = self.error('create', protocol.E_CONFLICT, 'resource',
                                 **self.create_req())
        self.assertIn('vg0/r0', err['message'])
        self.assertIn('9F3C00A1B2C3D4E4', err['message'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], self.changes())

    def test_just_created_metadata_reused(self):
        # The primary bit (bit 0) does not make a UUID "used".
        self.fake.add_lv('vg0', 'r0', 2 * GiB)
        self.fake.metadata['/dev/vg0/r0'] = 7
        self.fake.uuids['/dev/vg0/r0'] = 5
        self.assertFalse(self.ok('create', **self.create_req())[
            'md_created'])

    def test_rerun_while_running_after_first_write(self):
        self.ok('create', **self.create_req())
        self.ok('new-current-uuid', resource='r0')
        self.fake.calls.clear()
        result = self.ok('create', **self.create_req())
        self.assertEqual('unchanged', result['drbd'])
        self.assertEqual([], self.changes())

    def _converges_after_crash(self, *words, after=False):
        clean = test_agent.AgentTestCase('run')
        clean.setUp()
        clean.ok('create', **clean.create_req())
        expected = clean.fake.snapshot()
        clean.doCleanups()

        self.fake.crash(*words, after=after)
        with mock.patch.object(undo.Undo, 'run', return_value=[]):
            self.assertRaises(fakes.Crash, self.agent.handle,
                              dict(op='create', **self.create_req()))
        self.ok('create', **self.create_req())
        self.assertEqual(expected, self.fake.snapshot())
        # Never a second create-md on an LV that has metadata.
        create_mds = [c for c in self.fake.calls if 'create-md' in c]
        self.assertLessEqual(len(create_mds), 2)
        if after and 'create-md' in words:
            self.assertEqual(1, len(create_mds))

    def test_crash_after_lvcreate(self):
        self._converges_after_crash('lvcreate', after=True)

    def test_crash_before_create_md(self):
        self._converges_after_crash('create-md')

    def test_crash_after_create_md(self):
        self._converges_after_crash('create-md', after=True)

    def test_crash_before_up(self):
        self._converges_after_crash('up')

    def test_crash_after_up(self):
        self._converges_after_crash('up', after=True)

    def _rolled_back(self, *words):
        before = self.fake.snapshot()
        self.fake.fail(*words, rc=10, stderr='boom')
        reply = self.call('create', **self.create_req())
        self.assertFalse(reply['ok'])
        self.assertEqual(protocol.E_FAILED, reply['error']['code'])
        self.assertIn('boom', reply['error']['message'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], list(self.res_dir.iterdir()))
        return reply

    def test_failing_up_leaves_nothing(self):
        self._rolled_back('drbdadm', 'up')
        self.assertIn(['drbdadm', 'down', 'r0'], self.changes())
        self.assertIn(['lvremove', '--force', 'vg0/r0'], self.changes())

    def test_failing_create_md_leaves_nothing(self):
        self._rolled_back('create-md')

    def test_failing_lvcreate_leaves_no_res(self):
        self._rolled_back('lvcreate')

    def test_failure_restores_changed_res(self):
        self.ok('create', **self.create_req())
        self.fake.running.clear()
        old = (self.res_dir / 'r0.res').read_text()
        self.fake.fail('drbdadm', 'up')
        req = self.create_req()
        req['spec'] = samples.spec(net={'timeout': 90})
        self.assertFalse(self.call('create', **req)['ok'])
        self.assertEqual(old, (self.res_dir / 'r0.res').read_text())
        self.assertEqual(0o600, (self.res_dir / 'r0.res').stat().st_mode
                         & 0o777)
        self.assertEqual(['r0.res'], os.listdir(self.res_dir))
        self.assertIn(('vg0', 'r0'), self.fake.lvs)

    def test_changed_res_while_up_adjusts(self):
        self.ok('create', **self.create_req())
        self.fake.calls.clear()
        req = self.create_req()
        req['spec'] = samples.spec(net={'timeout': 90})
        self.assertEqual('adjusted', self.ok('create', **req)['drbd'])
        self.assertEqual([['drbdadm', 'adjust', 'r0']], self.changes())

    def test_a_diskless_peer_becomes_a_replica(self):
        # the tiebreaker on nodea: up without a disk
        tiebreaker = [('nodea', 0, '10.0.0.1', None),
                      ('nodeb', 1, '10.0.0.2', 'vg0')]
        replica = [('nodea', 0, '10.0.0.1', 'vg0'),
                   ('nodeb', 1, '10.0.0.2', 'vg0')]
        self.ok('adjust', resource='r0', secret=samples.SECRET,
                spec=samples.spec(hosts=tiebreaker))
        self.assertEqual('Diskless', self.fake.running['r0']['devices'][0][
            'disk-state'])
        self.fake.calls.clear()
        req = self.create_req()
        req['spec'] = samples.spec(hosts=replica)
        result = self.ok('create', **req)
        # metadata made while DRBD runs diskless, then attached by adjust
        self.assertEqual(
            [['lvcreate', '--yes', '--type', 'thin', '--virtualsize',
              f'{self.need()}b', '--thinpool', 'thin', '--name', 'r0',
              '--addtag', 'blackstor', 'vg0'],
             ['drbdadm', '--', '--max-peers=7', '--force', 'create-md',
              'r0'],
             ['drbdadm', 'adjust', 'r0']], self.changes())
        self.assertEqual((True, True, 'adjusted'), (
            result['lv_created'], result['md_created'], result['drbd']))
        self.assertEqual('Inconsistent', self.fake.running['r0'][
            'devices'][0]['disk-state'])
        # again: attached now, nothing more (never a second create-md)
        self.fake.calls.clear()
        self.assertEqual('unchanged', self.ok('create', **req)['drbd'])
        self.assertEqual([], self.changes())

    def test_a_diskless_peer_with_a_used_replicas_lv_refused(self):
        self.ok('adjust', resource='r0', secret=samples.SECRET,
                spec=samples.spec(hosts=[('nodea', 0, '10.0.0.1', None),
                                         ('nodeb', 1, '10.0.0.2', 'vg0')]))
        self.fake.add_lv('vg0', 'r0', 2 * GiB)
        self.fake.metadata['/dev/vg0/r0'] = 7
        self.fake.uuids['/dev/vg0/r0'] = 0x9F3C00A1B2C3D4E4
        req = self.create_req()
        req['spec'] = samples.spec(hosts=[('nodea', 0, '10.0.0.1', 'vg0'),
                                          ('nodeb', 1, '10.0.0.2', 'vg0')])
        err, before = self.error('create', protocol.E_CONFLICT, 'resource',
                                 **req)
        self.assertIn('is not running on it here', err['message'])
        self.assertEqual(before, self.fake.snapshot())

    def test_existing_smaller_lv_without_metadata_grows(self):
        self.fake.add_lv('vg0', 'r0', GiB)
        self.ok('create', **self.create_req())
        self.assertEqual(['lvextend', '--size', f'{self.need()}b',
                          'vg0/r0'], self.changes()[0])

    def test_existing_smaller_lv_with_metadata_refused(self):
        self.fake.add_lv('vg0', 'r0', GiB)
        self.fake.metadata['/dev/vg0/r0'] = 7
        _, before = self.error('create', protocol.E_CONFLICT, 'size',
                               **self.create_req())
        self.assertEqual(before, self.fake.snapshot())

    def test_existing_larger_lv_with_metadata_reused(self):
        self.fake.add_lv('vg0', 'r0', 2 * GiB)
        self.fake.metadata['/dev/vg0/r0'] = 7
        self.ok('create', **self.create_req())
        self.assertEqual([['drbdadm', 'up', 'r0']], self.changes())

    def test_foreign_lv_refused(self):
        self.fake.add_lv('vg0', 'r0', 2 * GiB, tags=())
        _, before = self.error('create', protocol.E_CONFLICT, 'resource',
                               **self.create_req())
        self.assertEqual(before, self.fake.snapshot())

    def test_minor_clash_refused(self):
        self.ok('create', **self.create_req())
        err, before = self.error('create', protocol.E_CONFLICT, 'minor',
                                 **self.create_req('r1', 1000, 7001))
        self.assertEqual(before, self.fake.snapshot())
        self.assertNotIn(('vg0', 'r1'), self.fake.lvs)

    def test_port_clash_refused(self):
        self.ok('create', **self.create_req())
        _, before = self.error('create', protocol.E_CONFLICT, 'port',
                               **self.create_req('r1', 1001, 7000))
        self.assertEqual(before, self.fake.snapshot())

    def test_missing_vg(self):
        self.fake.vgs.clear()
        err, before = self.error('create', protocol.E_MISSING, 'pool',
                                 **self.create_req())
        self.assertIn('vg0', err['message'])

    def test_missing_thin_pool(self):
        del self.fake.lvs[('vg0', 'thin')]
        err, _ = self.error('create', protocol.E_MISSING, 'pool',
                            **self.create_req())
        self.assertIn('vg0/thin', err['message'])

    def test_diskless_spec_refused(self):
        req = self.create_req()
        req['spec'] = samples.spec(
            hosts=[('nodeb', 0, '10.0.0.1', 'vg0'),
                   ('nodea', 1, '10.0.0.2', None)])
        self.error('create', protocol.E_INVALID, 'spec.hosts[1]', **req)

    def test_other_volume_group_refused(self):
        req = self.create_req()
        req['spec'] = samples.spec(hosts=[('nodea', 0, '10.0.0.1', 'vg1')])
        self.error('create', protocol.E_INVALID, 'spec.hosts[0]', **req)
        self.assertEqual([], self.fake.calls)

    def test_no_host_for_this_node_refused(self):
        req = self.create_req()
        req['spec'] = samples.spec(hosts=[('nodeb', 0, '10.0.0.1', 'vg0')])
        self.error('create', protocol.E_INVALID, 'spec.hosts', **req)
        self.assertEqual([], self.fake.calls)

    def test_more_hosts_than_max_peers_refused(self):
        req = self.create_req(max_peers=1)
        req['spec'] = samples.spec(hosts=[
            ('nodea', 0, '10.0.0.1', 'vg0'), ('nodeb', 1, '10.0.0.2', 'vg0'),
            ('nodec', 2, '10.0.0.3', None)])
        self.error('create', protocol.E_INVALID, 'spec.hosts', **req)
        self.assertEqual([], self.fake.calls)


class RollbackDeleteTestCase(test_agent.AgentTestCase):
    """delete with create_id: only what that create made goes."""

    ID = '0123456789abcdef0123456789abcdef'

    def test_removes_what_the_create_made(self):
        self.ok('create', **self.create_req(create_id=self.ID))
        self.fake.calls.clear()
        result = self.ok('delete', resource='r0', pool='vg0/thin',
                         create_id=self.ID)
        self.assertEqual({'resource': 'r0', 'down': True,
                          'lv_removed': True, 'res_removed': True,
                          'revert_lvs_removed': [],
                          'kept': False, 'reason': None}, result)
        self.assertNotIn(('vg0', 'r0'), self.fake.lvs)
        self.assertEqual([], list(self.res_dir.iterdir()))

    def test_finds_the_pool_itself(self):
        self.ok('create', **self.create_req(create_id=self.ID))
        self.agent.store.remove('r0')
        self.fake.running.clear()
        self.assertTrue(self.ok('delete', resource='r0',
                                create_id=self.ID)['lv_removed'])
        self.assertNotIn(('vg0', 'r0'), self.fake.lvs)

    def test_keeps_what_another_create_made(self):
        # This node's create was refused (the LV was there); the reply
        # was lost and the controller rolls back: nothing may change.
        self.ok('create', **self.create_req(create_id='f' * 32))
        self.fake.calls.clear()
        before = self.fake.snapshot()
        result = self.ok('delete', resource='r0', pool='vg0/thin',
                         create_id=self.ID)
        self.assertTrue(result['kept'])
        self.assertIn('vg0/r0', result['reason'])
        self.assertFalse(result['lv_removed'] or result['res_removed']
                         or result['down'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], self.changes())

    def test_keeps_an_untagged_lv(self):
        self.ok('create', **self.create_req())
        before = self.fake.snapshot()
        for pool in ({'pool': 'vg0/thin'}, {}):
            self.assertTrue(self.ok('delete', resource='r0',
                                    create_id=self.ID, **pool)['kept'])
        self.assertEqual(before, self.fake.snapshot())

    def test_keeps_a_foreign_lv_without_error(self):
        self.fake.add_lv('vg0', 'r0', GiB, tags=())
        self.assertTrue(self.ok('delete', resource='r0', pool='vg0/thin',
                                create_id=self.ID)['kept'])
        self.assertIn(('vg0', 'r0'), self.fake.lvs)

    def test_res_without_lv_goes(self):
        # The create failed after writing the .res, before lvcreate.
        self.agent.store.write('r0', samples.res_text(), samples.SECRET,
                               expect_disk='/dev/vg0/r0')
        result = self.ok('delete', resource='r0', pool='vg0/thin',
                         create_id=self.ID)
        self.assertTrue(result['res_removed'])
        self.assertFalse(result['kept'])

    def test_running_without_lv_is_kept(self):
        self.agent.store.write('r0', samples.res_text(), samples.SECRET,
                               expect_disk='/dev/vg0/r0')
        self.fake.running['r0'] = {'name': 'r0'}
        before = self.fake.snapshot()
        self.assertTrue(self.ok('delete', resource='r0', pool='vg0/thin',
                                create_id=self.ID)['kept'])
        self.assertEqual(before, self.fake.snapshot())


class LifecycleTestCase(test_agent.ReplicaTestCase):

    def test_delete(self):
        result = self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertEqual(
            [['drbdadm', 'down', 'r0'],
             ['drbdadm', '--', '--force', 'wipe-md', 'r0'],
             ['lvremove', '--force', 'vg0/r0']], self.changes())
        self.assertEqual({'resource': 'r0', 'down': True,
                          'lv_removed': True, 'res_removed': True,
                          'revert_lvs_removed': [],
                          'kept': False, 'reason': None}, result)
        self.assertEqual([], list(self.res_dir.iterdir()))
        self.fake.calls.clear()
        result = self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertEqual([], self.changes())
        self.assertFalse(any(result[k] for k in
                             ('down', 'lv_removed', 'res_removed')))

    def test_delete_reports_what_the_res_said(self):
        expected = self.agent.store.read_definition('r0')
        self.fake.calls.clear()
        result = self.ok('delete', resource='r0', pool='vg0/thin',
                         report=True)
        self.assertTrue(result['lv_removed'])
        self.assertNotIn('secret', result['definition'])
        expected.pop('secret', None)
        self.assertEqual(expected, result['definition'])
        self.assertEqual(['nodea', 'nodeb'], sorted(
            h['name'] for h in result['definition']['hosts']))
        # nothing there: reported as such, still success
        self.assertIsNone(self.ok('delete', resource='r0', pool='vg0/thin',
                                  report=True)['definition'])
        self.assertNotIn('definition', self.ok('delete', resource='r0'))

    def test_delete_finds_pool_in_res(self):
        self.ok('delete', resource='r0')
        self.assertNotIn(('vg0', 'r0'), self.fake.lvs)

    def test_delete_after_crash(self):
        self.fake.crash('lvremove', after=True)
        self.assertRaises(fakes.Crash, self.agent.handle,
                          dict(op='delete', resource='r0', pool='vg0/thin'))
        self.assertTrue((self.res_dir / 'r0.res').exists())
        self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertEqual([], list(self.res_dir.iterdir()))

    def test_delete_wipe_md_failure_still_deletes(self):
        self.fake.fail('wipe-md')
        self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertNotIn(('vg0', 'r0'), self.fake.lvs)

    def test_delete_diskless(self):
        self.ok('delete', resource='r0', pool='vg0/thin')
        store_text = samples.res_text('r2', 1002, 7002, hosts=[
            ('nodeb', 0, '10.0.0.2', '/dev/vg0/r2'),
            ('nodea', 1, '10.0.0.1', None)])
        self.agent.store.write('r2', store_text, samples.SECRET,
                               expect_disk=None)
        self.fake.running['r2'] = {'name': 'r2'}
        self.fake.calls.clear()
        self.ok('delete', resource='r2')
        self.assertEqual([['drbdadm', 'down', 'r2']], self.changes())
        self.assertEqual([], list(self.res_dir.iterdir()))

    def test_delete_unknown(self):
        self.ok('delete', resource='nothing', pool='vg0/thin')
        self.assertEqual([], self.changes())

    def test_delete_refuses_foreign_lv(self):
        self.fake.add_lv('vg0', 'r5', GiB, tags=())
        self.error('delete', protocol.E_CONFLICT, 'resource',
                   resource='r5', pool='vg0/thin')
        self.assertIn(('vg0', 'r5'), self.fake.lvs)

    def test_delete_removes_the_mark(self):
        self.pending()
        self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertFalse(self.mark_path().exists())

    def test_adjust(self):
        req = self.create_req()
        del req['pool'], req['size']
        self.assertEqual('unchanged', self.ok('adjust', **req)['drbd'])
        self.assertEqual([], self.changes())
        req['spec'] = samples.spec(allow_two_primaries=True)
        self.assertEqual('adjusted', self.ok('adjust', **req)['drbd'])
        self.assertEqual([['drbdadm', 'adjust', 'r0']], self.changes())
        self.assertIn('allow-two-primaries',
                      (self.res_dir / 'r0.res').read_text())

    def test_adjust_down_resource_brings_it_up(self):
        self.fake.running.clear()
        req = self.create_req()
        del req['pool'], req['size']
        self.ok('adjust', **req)
        self.assertEqual([['drbdadm', 'adjust', 'r0']], self.changes())

    def test_failed_adjust_of_a_down_resource_takes_it_down(self):
        # drbdadm adjust of a resource that is down is an up: when its
        # attach fails, the resource was left half up.
        self.fake.running.clear()
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = dict(req['spec'], allow_two_primaries=True)
        before = (self.res_dir / 'r0.res').read_text()
        self.fake.fail('drbdadm', 'adjust', stderr='(111) Low.dev. smaller '
                       'than requested DRBD-dev. size.')
        self.error('adjust', protocol.E_FAILED, None, **req)
        self.assertEqual([['drbdadm', 'adjust', 'r0'],
                          ['drbdadm', 'down', 'r0']], self.changes())
        self.assertEqual(before, (self.res_dir / 'r0.res').read_text())

    def test_adjust_beyond_what_the_lv_holds_is_refused_first(self):
        # drbdadm adjust changes the connections before it finds the size
        # too big: the refusal must come before anything runs.
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = samples.spec(size=64 * GiB, allow_two_primaries=True)
        before = (self.res_dir / 'r0.res').read_text()
        err, state = self.error('adjust', protocol.E_INVALID, 'spec.size',
                                **req)
        self.assertIn('vg0/r0', err['message'])
        self.assertIn('resize', err['message'])
        self.assertEqual([], self.changes())
        self.assertEqual(state, self.fake.snapshot())
        self.assertEqual(before, (self.res_dir / 'r0.res').read_text())

    def test_adjust_refuses_disk_outside_pools(self):
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = samples.spec(hosts=[('nodea', 0, '10.0.0.1', 'vg1')])
        self.error('adjust', protocol.E_INVALID, 'spec.hosts[0].vg', **req)
        # Another LV than the resource's own cannot even be named.
        req['spec']['hosts'][0]['disk'] = '/dev/vg0/other'
        self.error('adjust', protocol.E_INVALID, 'spec.hosts[0].disk',
                   **req)

    def test_adjust_refuses_disk_change(self):
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = samples.spec(hosts=[
            ('nodea', 0, '10.0.0.1', None),
            ('nodeb', 1, '10.0.0.2', 'vg0')])
        _, before = self.error('adjust', protocol.E_CONFLICT,
                               'spec.hosts[0]', **req)
        self.assertEqual(before, self.fake.snapshot())
