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
"""Real Cinder services with this driver on a cluster in a box.

One stack and one box for the module (bring-up is the expensive part):
cinder-api, -scheduler and -volume 29, Keystone, MariaDB and RabbitMQ on
127.0.0.1, driven with ``openstack`` and the Cinder API as a user and Nova
would. Storage nodes have pools of 8, 8 and 16 GiB and the backend's
default replica count is 2, so the honest capacity (16 GiB placeable) is
neither the sum (32) nor the smallest node (8), and a 24 GiB volume passes
the scheduler's aggregate check but not placement on two distinct nodes.
"""

import concurrent.futures
import importlib.util
import json
import re
import statistics
import subprocess
import sys
import time

import testtools

from tests.e2e import scenario
from tests.e2e import stack as stack_mod
from tests.functional import cluster_box
from tests.unit import test_nova_compat

GiB = 1 << 30
#: four storage nodes: the journey's node-lost step needs a node to heal to
POOLS = {'stor-a': 8 * GiB, 'stor-b': 8 * GiB, 'stor-c': 16 * GiB,
         'stor-d': 8 * GiB}


def say(text):
    """Figures go to stderr, which stestr shows."""
    print(text, file=sys.stderr, flush=True)


class DriverE2ETest(testtools.TestCase):

    box = stack = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        why = cluster_box.missing_prerequisites()
        if why:
            raise RuntimeError(why)
        cls.box = cluster_box.ClusterInABox(storage=tuple(POOLS),
                                            hypervisors=('hv-1',),
                                            pool_size=POOLS)
        cls.box.setUp()
        try:
            backend = scenario.backend_section(cls.box)
            backend.update(blackstor_replicas='2',
                           max_over_subscription_ratio='2.0')
            cls.stack = stack_mod.Stack(
                cls.box.dir / 'stack', backends={scenario.BACKEND: backend},
                extra_conf={'DEFAULT': {
                    'backend_stats_polling_interval': '3',
                    'quota_volumes': '100', 'quota_snapshots': '100',
                    'quota_gigabytes': '10000'}})
            cls.stack.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.stack is not None:
            cls.stack.stop()
            left = cls.stack.leftover_processes()
            if left:
                raise AssertionError(f'stack processes left: {left}')
        if cls.box is not None:
            cls.box.cleanUp()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.journey = scenario.Journey(self.stack, self.box,
                                        report=lambda step: say(
                                            f'  {step.name}: {step.status} '
                                            f'{step.seconds:.1f}s'))

    def volume_log(self):
        with open(self.stack.logs['cinder-volume']) as f:
            return f.read()

    def test_1_user_journey(self):
        j = self.journey
        j.run()
        statuses = {s.name: s.status for s in j.steps}
        self.assertEqual('available',
                         statuses['volume create (1 GiB, 3 replicas)'])
        self.assertEqual('in-use',
                         statuses['attach to hv-1 (attachments API)'])
        self.assertEqual('ok', statuses[
            'node lost: blackstor-manage node lost heals'])
        self.assertEqual('deleted', statuses['delete all'])
        self.assertNotIn('FAILED', statuses.values())
        info = j.connection_info
        self.assertEqual('local', info['driver_volume_type'])
        self.assertEqual(
            self.box.standin.device_path('hv-1', re.search(
                r'volume-[0-9a-f-]+', j.device_path).group(0)),
            j.device_path)
        test_nova_compat.assert_no_secret(self, info)
        self.assertEqual({}, self.box.leftovers())
        type(self).connection_info = info

    def test_2_nova_builds_a_block_disk_from_our_connection_info(self):
        if importlib.util.find_spec('nova') is None:
            self.skipTest('nova is not installed in this env (tox -e e2e '
                          'installs it)')
        info = getattr(type(self), 'connection_info', None)
        if info is None:
            self.skipTest('needs the connection_info of the journey test')
        ref = {'id': 'a1', 'connection_info': dict(info),
               'status': 'attached', 'attach_mode': 'rw'}
        result = test_nova_compat.run_nova(
            {'real': {'attachment_ref': ref}})['real']
        self.assertEqual(
            'nova.virt.libvirt.volume.volume.LibvirtVolumeDriver',
            result['driver'])
        self.assertIn("type=\"block\"", result['xml'])
        self.assertIn(f'dev="{info["device_path"]}"', result['xml'])
        self.assertNotIn('secret', result['xml'])

    def test_3_twenty_concurrent_creates(self):
        self.stack.create_volume_type('two-replicas', scenario.BACKEND,
                                      {'blackstor:replicas': '2'})
        start = time.monotonic()

        def create(i):
            t0 = time.monotonic()
            _code, body = self.stack.api('POST', '/volumes', {'volume': {
                'size': 1, 'name': f'burst-{i}',
                'volume_type': 'two-replicas'}})
            vol_id = body['volume']['id']
            self.addCleanup(self.stack.api, 'DELETE', f'/volumes/{vol_id}',
                            raise_exc=False)
            self.stack.wait_for('volume', vol_id, 'available', timeout=900)
            return vol_id, time.monotonic() - t0

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            results = list(pool.map(create, range(20)))
        ids = [vol_id for vol_id, _ in results]
        latencies = sorted(t for _, t in results)
        say(f'20 concurrent creates: all available in '
            f'{time.monotonic() - start:.1f}s; API-to-available median '
            f'{statistics.median(latencies):.1f}s, max {latencies[-1]:.1f}s')
        minors, ports = {}, {}
        for node in self.box.storage_names:
            for name, res in self.box.inventory(node)['resources'].items():
                definition = res['definition']
                minors.setdefault(name, set()).add(definition['minor'])
                ports.setdefault(name, set()).update(
                    h['port'] for h in definition['hosts'])
        mine = {f'volume-{i}' for i in ids}
        self.assertEqual(mine, mine & set(minors))
        # Same identity on every replica, distinct across volumes.
        self.assertTrue(all(len(minors[n]) == 1 and len(ports[n]) == 1
                            for n in mine))
        self.assertEqual(20, len({min(minors[n]) for n in mine}))
        self.assertEqual(20, len({min(ports[n]) for n in mine}))
        for vol_id in ids:
            self.stack.openstack('volume', 'delete', vol_id, json=False)
        for vol_id in ids:
            self.stack.wait_for('volume', vol_id, 'deleted', timeout=600)
        self.assertEqual({}, self.box.leftovers())

    def test_4_honest_capacity_in_pool_list(self):
        deadline = time.monotonic() + 60
        while True:
            pools = self.stack.openstack('volume', 'backend', 'pool', 'list',
                                         '--long')
            mine = [p for p in pools
                    if p.get('Name', '').endswith(f'@{scenario.BACKEND}'
                                                  f'#{scenario.BACKEND}')
                    or scenario.BACKEND in p.get('Name', '')]
            if mine and mine[0].get('Total Volumes', 0) == 0:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(3)
        say(f'pool list --long: {json.dumps(mine)}')
        self.assertEqual(1, len(mine))
        caps = self.stack.pools()[0]['capabilities']
        # 2 replicas over 8, 8, 16 and 8 GiB: 20 GiB placeable.
        self.assertEqual(20.0, caps['total_capacity_gb'])
        self.assertLessEqual(caps['free_capacity_gb'], 20.0)
        self.assertGreater(caps['free_capacity_gb'], 19.0)
        self.assertEqual('DRBD', caps['storage_protocol'])
        self.assertTrue(caps['thin_provisioning_support'])
        self.assertEqual(8.0 * 2, caps['blackstor_largest_volume_gb'])

    def test_5_oversized_volume_ends_in_error_and_leaves_nothing(self):
        # The scheduler sees 20 GiB free x 2.0 = 40 GiB; two distinct nodes
        # can hold at most 16 GiB each (8 GiB x 2.0): the driver refuses.
        vol = self.stack.openstack('volume', 'create', '--size', '24',
                                   'too-big')
        self.addCleanup(self.stack.openstack, 'volume', 'delete', vol['id'],
                        json=False, check=False)
        self.assertRaises(stack_mod.StackError, self.stack.wait_for,
                          'volume', vol['id'], 'available', timeout=300)
        shown = self.stack.openstack('volume', 'show', vol['id'])
        self.assertEqual('error', shown['status'])
        log = self.volume_log()
        self.assertIn('not enough space for 2 replicas', log)
        self.assertIn('the largest volume that can be placed now is', log)
        self.assertEqual({}, self.box.leftovers())

    def test_6_more_replicas_than_nodes(self):
        self.stack.create_volume_type('five-replicas', scenario.BACKEND,
                                      {'blackstor:replicas': '5'})
        vol = self.stack.openstack('volume', 'create', '--size', '1',
                                   '--type', 'five-replicas', 'five')
        self.addCleanup(self.stack.openstack, 'volume', 'delete', vol['id'],
                        json=False, check=False)
        self.assertRaises(stack_mod.StackError, self.stack.wait_for,
                          'volume', vol['id'], 'available', timeout=300)
        self.assertIn('5 replicas asked but the backend has only 4 '
                      'storage nodes', self.volume_log())
        self.assertEqual({}, self.box.leftovers())

    def test_7_extend_of_an_in_use_volume_is_refused_by_cinder(self):
        # online_extend_support is False: Nova's LibvirtVolumeDriver
        # ('local') could not grow the disk in the guest.
        caps = self.stack.pools()[0]['capabilities']
        self.assertIs(False, caps['online_extend_support'])
        self.assertIs(False, caps['multiattach'])
        j = self.journey
        vol = self.stack.openstack('volume', 'create', '--size', '1',
                                   'in-use-extend')
        j.ids['vol'] = vol['id']
        self.addCleanup(self.stack.openstack, 'volume', 'delete', vol['id'],
                        json=False, check=False)
        self.stack.wait_for('volume', vol['id'], 'available')
        j.attach('vol')
        lvs = self.replica_sizes(j.resource(vol['id']))
        self.assertEqual(2, len(lvs))

        # The API accepts it (microversion 3.42 and later); the scheduler
        # refuses it and tells the user.
        self.stack.openstack('volume', 'set', '--size', '2', vol['id'],
                             json=False)
        message = self.wait_for_message(vol['id'])
        say(f'in-use extend: {message["user_message"]} '
            f'({message["event_id"]})')
        self.assertEqual('VOLUME_VOLUME_007_003', message['event_id'])
        self.assertEqual('extend volume:Could not find any available '
                         'weighted backend.', message['user_message'])
        shown = self.stack.wait_for('volume', vol['id'], 'in-use')
        self.assertEqual(1, shown['size'])
        with open(self.stack.logs['cinder-scheduler']) as f:
            self.assertIn("Backend doesn't support attached volume extend",
                          f.read())
        self.assertEqual(lvs, self.replica_sizes(j.resource(vol['id'])))

        # Detached, the same extend goes through.
        j.detach('vol')
        self.assertEqual(('available', '2 GiB'), j.extend('vol', 2))
        self.assertLess(max(lvs.values()), min(self.replica_sizes(
            j.resource(vol['id'])).values()))
        self.stack.openstack('volume', 'delete', vol['id'], json=False)
        self.stack.wait_for('volume', vol['id'], 'deleted')
        self.assertEqual({}, self.box.leftovers())

    def test_8_manage_and_unmanage_through_cinder(self):
        pool = next(p['name'] for p in self.stack.pools()
                    if p['name'].endswith(f'@{scenario.BACKEND}'
                                          f'#{scenario.BACKEND}'))
        host = pool.split('#')[0]
        # unmanage leaves the resource; manage adopts it under a new id
        vol = self.stack.openstack('volume', 'create', '--size', '1',
                                   'to-unmanage')
        self.stack.wait_for('volume', vol['id'], 'available')
        old = f'volume-{vol["id"]}'
        lvs = self.replica_sizes(old)
        self.assertEqual(2, len(lvs))
        self.stack.openstack('volume', 'delete', '--remote', vol['id'],
                             json=False)
        self.stack.wait_for('volume', vol['id'], 'deleted')
        self.assertEqual(lvs, self.replica_sizes(old))
        # (--non-bootable on each manage: openstackclient 10.5 sends
        # bootable=None without it, which the API refuses)
        listed = self.stack.openstack('block', 'storage', 'volume',
                                      'manageable', 'list', host)
        say(f'manageable: {json.dumps(listed)}')
        self.assertIn(old, json.dumps(listed))
        managed = self.stack.openstack(
            'volume', 'create', '--remote-source', f'source-name={old}',
            '--host', pool, '--non-bootable', 'managed')
        self.addCleanup(self.stack.openstack, 'volume', 'delete',
                        managed['id'], json=False, check=False)
        shown = self.stack.wait_for('volume', managed['id'], 'available')
        self.assertEqual(1, shown['size'])
        self.assertEqual({}, self.replica_sizes(old))
        self.assertEqual(lvs, self.replica_sizes(
            f'volume-{managed["id"]}'))

        # a bare thin LV with no room for the metadata: refused, and why
        env = self.box.node_env('stor-a')
        subprocess.run(['lvcreate', '--yes', '--type', 'thin',
                        '--virtualsize', f'{GiB}b', '--thinpool',
                        cluster_box.THINPOOL, '--name', 'imported',
                        cluster_box.VG], env=env, check=True,
                       capture_output=True, timeout=60)
        bad = self.stack.openstack(
            'volume', 'create', '--remote-source', 'source-name=imported',
            '--host', pool, '--non-bootable', 'tight')
        self.addCleanup(self.stack.openstack, 'volume', 'delete', bad['id'],
                        json=False, check=False)
        self.assertRaises(stack_mod.StackError, self.stack.wait_for,
                          'volume', bad['id'], 'available', timeout=300)
        self.assertIn('extend it by', self.volume_log())
        # extended, it is wrapped and synced to a second replica
        subprocess.run(['lvextend', '--size', '+8m',
                        f'{cluster_box.VG}/imported'], env=env, check=True,
                       capture_output=True, timeout=60)
        wrapped = self.stack.openstack(
            'volume', 'create', '--remote-source', 'source-name=imported',
            '--host', pool, '--non-bootable', 'wrapped')
        self.addCleanup(self.stack.openstack, 'volume', 'delete',
                        wrapped['id'], json=False, check=False)
        shown = self.stack.wait_for('volume', wrapped['id'], 'available')
        self.assertEqual(1, shown['size'])
        self.assertEqual(2, len(self.replica_sizes(
            f'volume-{wrapped["id"]}')))
        for ident in (managed['id'], wrapped['id'], bad['id']):
            self.stack.openstack('volume', 'delete', ident, json=False,
                                 check=False)
            self.stack.wait_for('volume', ident, 'deleted')
        self.assertEqual({}, self.box.leftovers())

    def test_9_retype_live_through_cinder(self):
        j = self.journey
        for name, replicas in (('retype-2r', '2'), ('retype-3r', '3')):
            self.stack.create_volume_type(name, scenario.BACKEND,
                                          {'blackstor:replicas': replicas})
        vol = self.stack.openstack('volume', 'create', '--size', '1',
                                   '--type', 'retype-2r', 'to-retype')
        j.ids['rt'] = vol['id']
        self.addCleanup(self.stack.openstack, 'volume', 'delete', vol['id'],
                        json=False, check=False)
        self.stack.wait_for('volume', vol['id'], 'available')
        self.assertEqual(2, len(j.replica_nodes('rt')))
        j.attach('rt')
        j.write_and_check('rt')
        written = [j.pattern]
        # --migration-policy never: Cinder fails the retype unless the
        # driver did it in place
        for new_type, count in (('retype-3r', 3), ('retype-2r', 2)):
            started = time.monotonic()
            self.stack.openstack('volume', 'set', '--type', new_type,
                                 '--migration-policy', 'never', vol['id'],
                                 json=False)
            self.wait_retyped(vol['id'], new_type, 'in-use')
            say(f'retype in use to {new_type}: '
                f'{time.monotonic() - started:.1f}s')
            holders = j.replica_nodes('rt')
            self.assertEqual(count, len(holders))
            for offset, pattern in written:
                for node in holders:
                    self.assertEqual(pattern, self.box.lv_bytes(
                        node, j.resource(vol['id']), offset,
                        len(pattern)), f'{node} at {offset}')
            j.write_and_check('rt', offset=(4 + 4 * count) << 20)
            written.append(j.pattern)
        j.detach('rt')

        # a replica more with a snapshot is no retype in place, and
        # Cinder does not migrate a volume with snapshots: refused
        j.snapshot('snap-rt', 'rt')
        holders = j.replica_nodes('rt')
        self.stack.openstack('volume', 'set', '--type', 'retype-3r',
                             '--migration-policy', 'on-demand', vol['id'],
                             json=False)
        self.wait_retyped(vol['id'], 'retype-2r', 'available')
        self.assertIn(f'Volume {vol["id"]} is not retyped in place',
                      self.volume_log())
        self.assertEqual(holders, j.replica_nodes('rt'))
        self.stack.openstack('volume', 'snapshot', 'delete',
                             j.ids['snap-rt'], json=False)
        self.stack.wait_for('snapshot', j.ids['snap-rt'], 'deleted')
        self.stack.openstack('volume', 'delete', vol['id'], json=False)
        self.stack.wait_for('volume', vol['id'], 'deleted')
        self.assertEqual({}, self.box.leftovers())

    def wait_retyped(self, volume_id, volume_type, status, timeout=300):
        """Wait until the volume has the type and status (retype over)."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.stack.openstack('volume', 'show', volume_id)
            if (shown['status'], shown['type']) == (status, volume_type):
                return shown
            if time.monotonic() > deadline or 'error' in shown['status']:
                raise AssertionError(f'{volume_id}: {shown["status"]}, '
                                     f'type {shown["type"]}')
            time.sleep(1)

    def replica_sizes(self, name):
        """Storage node -> size of the volume's LV there."""
        return {node: v['size_bytes'] for node in self.box.storage_names
                for v in self.box.inventory(node).get('volumes', [])
                if v['name'] == name}

    def wait_for_message(self, resource_id, timeout=120):
        """The first user message Cinder records for the resource."""
        deadline = time.monotonic() + timeout
        while True:
            _code, data = self.stack.api(
                'GET', f'/messages?resource_uuid={resource_id}')
            messages = (data or {}).get('messages') or []
            if messages:
                return messages[0]
            if time.monotonic() > deadline:
                raise AssertionError(f'no user message for {resource_id} '
                                     f'within {timeout}s')
            time.sleep(1)
