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
"""Faults in the cluster in a box: nodes down, a node failing half-way.

A node "down" is a crash: its sshd and every session die, its DRBD state
vanishes (its LV files stay); ``box.start_node`` boots it (sshd back, then
``drbdadm adjust all`` as drbd.service does). The decision for a snapshot
while a replica is unreachable: refused (a snapshot must exist wherever
the volume does), and I/O is never left suspended.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from unittest import mock

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import reconcile
from blackstor_cinder.cluster import transport
from tests.functional import cluster_box
from tests.functional import test_flows
from tests.standin import lvm as standin_lvm

MiB = test_flows.MiB
GiB = cluster_box.GiB
STORAGE = test_flows.STORAGE
FILLER = 'filler'


class TestFaults(test_flows.BoxTestCase):

    box_args = {'transport': 'ssh', 'pool_size': 2 * GiB}
    counting = 'fault cases'

    def setUp(self):
        super().setUp()
        self.down: set[str] = set()

    # -- faults ------------------------------------------------------------

    def stop_node(self, name: str) -> None:
        self.box.stop_node(name)
        self.down.add(name)
        self.addCleanup(self.start_node, name)

    def start_node(self, name: str) -> None:
        if name in self.down:
            self.down.discard(name)
            self.box.start_node(name)

    def up(self) -> list[str]:
        return [n for n in self.box.nodes if n not in self.down]

    def fill_pool(self, node: str) -> None:
        """A thin LV (not ours) whose blocks fill the node's pool."""
        env = self.box.node_env(node)
        size = self.box.pool_size
        subprocess.run(
            ['lvcreate', '--yes', '--type', 'thin', '--virtualsize',
             f'{size}b', '--thinpool', cluster_box.THINPOOL, '--name',
             FILLER, cluster_box.VG], env=env, check=True,
            capture_output=True)
        self.addCleanup(self.empty_pool, node)
        fd = os.open(self.standin.lv_path(node, cluster_box.VG, FILLER),
                     os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)

    def empty_pool(self, node: str) -> None:
        subprocess.run(['lvremove', '--yes', f'{cluster_box.VG}/{FILLER}'],
                       env=self.box.node_env(node), capture_output=True)

    def items_of(self, name: str, nodes) -> dict[str, list[str]]:
        """What of ``name`` (LV, .res, DRBD) is on the given nodes."""
        return {node: [i for i in items if name in i]
                for node, items in self.box.leftovers(nodes).items()
                if any(name in i for i in items)}

    def assert_not_suspended(self, res: str, nodes) -> None:
        for node in nodes:
            state = self.state(node, res)
            self.assertFalse(state['suspended'], f'{res} on {node}')
            self.assertFalse(state['suspended-user'], f'{res} on {node}')

    def set_global_filter(self, node: str, value) -> None:
        """lvm.conf's global_filter on ``node``, until the test ends."""
        key = 'devices/global_filter'
        self.standin.set_lvm_config(node, key, value)
        self.addCleanup(self.standin.set_lvm_config, node, key,
                        standin_lvm.DEFAULT_CONFIG[key])

    # -- the cases ---------------------------------------------------------

    def test_node_down_cuts_warm_connections(self):
        # A node down is unreachable, also over a connection the
        # controller had kept open: its agents do not go on answering
        # (which would test "agent up, DRBD and LVM failing" instead).
        warm = self.box.transport_for(self.ctl.config.node('stor-c'))
        self.addCleanup(warm.close)
        self.assertEqual('stor-c', warm.call({'op': 'inventory'})['hostname'])
        self.assertEqual({}, self.ctl.stats().nodes_down)  # kept open too
        self.assertNotEqual([], self.box.node_processes('stor-c'))
        self.stop_node('stor-c')
        self.assertEqual([], self.box.node_processes('stor-c'))
        self.assertEqual(set(), self.box.nodes['stor-c'].sshd.processes.pids())
        exc = self.assertRaises(transport.NodeUnreachable, warm.call,
                                {'op': 'inventory'})
        self.assertEqual('stor-c', exc.node)
        self.assertIn('cannot connect to', exc.message)
        down = self.ctl.stats().nodes_down
        self.assertEqual(['stor-c'], list(down))
        self.assertIn('cannot connect to', down['stor-c'])
        self.ran('node down: warm connections and sessions cut, the node '
                 'unreachable')

        self.start_node('stor-c')
        self.assertEqual('stor-c', warm.call({'op': 'inventory'})['hostname'])
        self.assertEqual({}, self.ctl.stats().nodes_down)
        self.ran('node back: reachable again over a new connection')

    def test_node_down_at_create(self):
        self.stop_node('stor-c')
        three = self.name('faults-down3')
        with self.assertRaises(errors.PlacementError) as ctx:
            self.ctl.create_volume(three, 128 * MiB, replicas=3)
        self.assertIn('only 2 storage nodes', str(ctx.exception))
        # which node, and why
        self.assertIn('; stor-c is not available: ', str(ctx.exception))
        self.assertNotIn('[Errno', str(ctx.exception))
        self.assert_clean(self.up())
        self.assertEqual([], list(self.box.nodes['stor-c']
                                  .resource_dir.iterdir()))
        self.ran('3 replicas with a node down: refused naming the node and '
                 'why, nothing leaked')

        two = self.name('faults-down2')
        spec = self.ctl.create_volume(two, 128 * MiB, replicas=2)
        self.assertEqual(['stor-a', 'stor-b'],
                         sorted(h.name for h in spec.diskful_hosts))
        self.assert_replicas(spec, ['stor-a', 'stor-b'], 128 * MiB,
                             among=('stor-a', 'stor-b'))
        stats = self.ctl.stats()
        self.assertEqual(['stor-c'], list(stats.nodes_down))
        self.assertEqual(('stor-a', 'stor-b'), stats.nodes_up)
        self.ctl.delete_volume(two)
        self.assert_clean(self.up())
        self.ran('2 replicas with a node down: placed on the others')

        self.start_node('stor-c')
        self.assertEqual({}, self.ctl.check_setup())
        self.assert_clean()

    def test_node_fails_half_way(self):
        size = 128 * MiB
        vol = self.name('faults-half')
        spec = self.ctl.create_volume(vol, size, replicas=3)
        path = self.ctl.attach(vol, 'hv-1')
        fd = self.open_device(path)
        data = test_flows.random_chunks((0, MiB), (64 * MiB, MiB))
        self.write_chunks(fd, data)

        self.fill_pool('stor-c')
        pools = {p['name']: p for p in self.box.inventory('stor-c')['pools']}
        self.assertEqual(0, pools[cluster_box.POOL]['free_bytes'])
        other = self.name('faults-half2')
        with self.assertRaises(errors.NodeOperationFailed) as ctx:
            self.ctl.create_volume(other, size, replicas=3)
        self.assertEqual('create', ctx.exception.step)
        self.assertEqual(['stor-c'], sorted(ctx.exception.failures))
        self.assertIn('thin pool', str(ctx.exception))
        # stor-a and stor-b had succeeded: the calls log shows it
        ups = [c for c in self.standin.calls()
               if c[1] == 'drbdsetup' and c[2].startswith(
                   f'new-resource {other}')]
        self.assertEqual(['stor-a', 'stor-b'], sorted(c[0] for c in ups))
        self.assertEqual({}, self.items_of(other, self.box.nodes))
        self.ran('a node failing half-way through create: rolled back on '
                 'every node')

        snap = self.snap('faults-half')
        mark = len(self.standin.calls())
        with self.assertRaises(errors.NodeOperationFailed) as ctx:
            self.ctl.create_snapshot(vol, snap)
        self.assertEqual('snapshot-create', ctx.exception.step)
        self.assertEqual(['stor-c'], sorted(ctx.exception.failures))
        self.assertEqual(set(), self.snapshot_holders(snap))
        # I/O was suspended everywhere, and resumed everywhere
        everyone = sorted(STORAGE + ('hv-1',))
        self.assertEqual(everyone, self.drbdsetup_calls(mark, 'suspend-io'))
        self.assertEqual(everyone, self.drbdsetup_calls(mark, 'resume-io'))
        self.assert_not_suspended(vol, STORAGE + ('hv-1',))
        more = test_flows.random_chunks((32 * MiB, MiB))
        self.write_chunks(fd, more)
        self.assert_lv_data(vol, STORAGE, {**data, **more})
        self.ran('snapshot failing on one replica: removed from the '
                 'others, I/O resumed everywhere')

        self.empty_pool('stor-c')
        self.ctl.create_snapshot(vol, snap)
        self.assertEqual(set(STORAGE), self.snapshot_holders(snap))
        self.ctl.delete_snapshot(snap)
        self.close_device(fd)
        self.ctl.detach(vol, 'hv-1')
        self.assert_replicas(spec, STORAGE, size)
        self.ctl.delete_volume(vol)
        self.assert_clean()
        self.ran('snapshot retried once the pool has room')

    def test_node_down_after_create_then_back(self):
        size = 128 * MiB
        vol = self.name('faults-after')
        spec = self.ctl.create_volume(vol, size, replicas=3)
        path = self.ctl.attach(vol, 'hv-1')
        fd = self.open_device(path)
        first = test_flows.random_chunks((0, MiB))
        self.write_chunks(fd, first)

        self.stop_node('stor-c')
        while_down = test_flows.random_chunks((8 * MiB, 2 * MiB),
                                              (size - MiB, MiB))
        self.write_chunks(fd, while_down)
        self.assert_device_data(fd, {**first, **while_down})
        self.assert_lv_data(vol, ['stor-a', 'stor-b'], while_down)
        for offset, chunk in while_down.items():
            self.assertNotEqual(chunk, self.box.lv_bytes(
                'stor-c', vol, offset, len(chunk)))
        for node in ('stor-a', 'stor-b', 'hv-1'):
            state = self.state(node, vol)
            self.assertTrue(state['devices'][0]['quorum'], node)
            peers = {c['name']: c for c in state['connections']}
            self.assertNotEqual('Connected',
                                peers['stor-c']['connection-state'])
        self.assertGreater(
            {c['name']: c for c in self.state('stor-a', vol)[
                'connections']}['stor-c']['peer_devices'][0]['out-of-sync'],
            0)
        self.ran('node down after create: writes go on with quorum 2/3')

        stats = self.ctl.stats()
        self.assertEqual(['stor-c'], list(stats.nodes_down))
        self.assertEqual((vol,), stats.degraded_volumes)
        self.ran('stats: node down, volume degraded')

        snap = self.snap('faults-after')
        mark = len(self.standin.calls())
        with self.assertRaises(errors.NodeOperationFailed) as ctx:
            self.ctl.create_snapshot(vol, snap)
        self.assertEqual(['stor-c'], sorted(ctx.exception.failures))
        self.assertEqual(self.drbdsetup_calls(mark, 'suspend-io'),
                         self.drbdsetup_calls(mark, 'resume-io'))
        self.assertEqual(set(), self.snapshot_holders(
            snap, ('stor-a', 'stor-b')))
        self.assert_not_suspended(vol, ('stor-a', 'stor-b', 'hv-1'))
        later = test_flows.random_chunks((16 * MiB, MiB))
        self.write_chunks(fd, later)
        while_down.update(later)
        self.ran('snapshot with a replica down: refused, I/O not '
                 'suspended')

        self.start_node('stor-c')
        self.assert_lv_data(vol, STORAGE, {**first, **while_down})
        for node in STORAGE:
            state = self.state(node, vol)
            self.assertEqual('UpToDate', state['devices'][0]['disk-state'])
            for conn in state['connections']:
                self.assertEqual('Connected', conn['connection-state'],
                                 f'{node} -> {conn["name"]}')
                self.assertEqual(0, conn['peer_devices'][0]['out-of-sync'])
        self.assert_replicas(spec, STORAGE, size)
        self.assertEqual((), self.ctl.stats().degraded_volumes)
        self.ran('node back: resynced what was written while it was down')

        self.close_device(fd)
        self.ctl.detach(vol, 'hv-1')
        self.ctl.delete_volume(vol)
        self.assert_clean()

    def clients_by_agent(self, vol: str, nodes) -> dict[str, list[str]]:
        """Node -> the clients its .res lists, as its agent reads it."""
        found = {}
        for node in nodes:
            reply = self.box.run_agent(node, {'op': 'status',
                                              'resource': vol})
            found[node] = sorted(h['name'] for h in
                                 reply['definition']['hosts']
                                 if not h['diskful'])
        return found

    def wait_connected(self, node: str, vol: str, peer: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            conns = {c['name']: c['connection-state']
                     for c in self.state(node, vol)['connections']}
            if conns.get(peer) == 'Connected':
                return
            self.assertLess(time.monotonic(), deadline,
                            f'{node} -> {peer}: {conns}')
            time.sleep(0.5)

    def test_stale_res_repaired_when_the_node_returns(self):
        size = 64 * MiB
        vol = self.name('faults-stale')
        self.ctl.create_volume(vol, size, replicas=3)
        self.stop_node('stor-c')
        path = self.ctl.attach(vol, 'hv-1')
        fd = self.open_device(path)
        first = test_flows.random_chunks((0, MiB), (size - MiB, MiB))
        self.write_chunks(fd, first)
        self.start_node('stor-c')
        self.assertEqual({'stor-a': ['hv-1'], 'stor-b': ['hv-1'],
                          'stor-c': []},
                         self.clients_by_agent(vol, STORAGE))
        stats = self.ctl.stats()
        self.assertEqual((vol,), stats.divergent_volumes)
        self.ran('node back after an attach: its .res is stale, stats '
                 'see it')

        # What the driver's stats do with what they found.
        outcome = reconcile.reconcile(self.ctl, stats.divergent_volumes)
        self.assertIn('stor-c: adjusted', outcome[vol])
        self.assertEqual({n: ['hv-1'] for n in STORAGE},
                         self.clients_by_agent(vol, STORAGE))
        self.assertEqual((), self.ctl.stats().divergent_volumes)
        self.wait_connected('stor-c', vol, 'hv-1')
        self.wait_connected('hv-1', vol, 'stor-c')
        later = test_flows.random_chunks((4 * MiB, MiB))
        self.write_chunks(fd, later)
        self.assert_device_data(fd, {**first, **later})
        self.assert_lv_data(vol, STORAGE, {**first, **later})
        self.ran('stale .res repaired: the node serves the client again')

        self.close_device(fd)
        self.ctl.detach(vol, 'hv-1')
        self.ctl.delete_volume(vol)
        self.assert_clean()

    def stop_at_adjust(self, controller, name: str) -> None:
        """Stop ``name`` as ``controller`` sends it an adjust.

        Its lookup a moment before found it up: a node that crashes in
        the middle of a flow. Once: the repair after its return adjusts.
        """
        call = controller.call
        stopped = []

        def call_or_stop(node, request, *args, **kwargs):
            if (node.name == name and request.get('op') == 'adjust'
                    and not stopped):
                stopped.append(name)
                self.stop_node(name)
            return call(node, request, *args, **kwargs)
        controller.call = call_or_stop

    def repair(self, controller, vol: str) -> str:
        stats = controller.stats()
        self.assertEqual((vol,), stats.divergent_volumes)
        outcome = reconcile.reconcile(controller, stats.divergent_volumes)
        self.assertEqual((), controller.stats().divergent_volumes)
        return outcome[vol]

    def test_replica_lost_during_attach_and_detach(self):
        size = 64 * MiB
        vol = self.name('faults-lostmid')
        survivors = ('stor-a', 'stor-b')
        self.ctl.create_volume(vol, size, replicas=3)
        ctl = self.box.controller()
        self.stop_at_adjust(ctl, 'stor-c')
        fd = self.open_device(ctl.attach(vol, 'hv-1'))
        self.assertIn('stor-c', self.down)
        first = test_flows.random_chunks((0, MiB), (size - MiB, MiB))
        self.write_chunks(fd, first)
        self.assert_lv_data(vol, survivors, first)
        self.assertEqual(dict.fromkeys(survivors, ['hv-1']),
                         self.clients_by_agent(vol, survivors))
        self.ran('a replica lost between the lookup and the adjust: the '
                 'attach goes on with the others')

        self.start_node('stor-c')
        self.assertIn('stor-c: adjusted', self.repair(ctl, vol))
        self.wait_connected('stor-c', vol, 'hv-1')
        later = test_flows.random_chunks((4 * MiB, MiB))
        self.write_chunks(fd, later)
        self.assert_lv_data(vol, STORAGE, {**first, **later})
        self.close_device(fd)

        ctl = self.box.controller()
        self.stop_at_adjust(ctl, 'stor-c')
        ctl.detach(vol, 'hv-1')
        self.assertEqual(dict.fromkeys(survivors, []),
                         self.clients_by_agent(vol, survivors))
        self.assertFalse((self.box.nodes['hv-1'].resource_dir
                          / f'{vol}.res').exists())
        self.ran('a replica lost between the lookup and the adjust: the '
                 'detach goes on with the others')

        self.start_node('stor-c')
        self.assertIn('stor-c: adjusted', self.repair(ctl, vol))
        self.assertEqual(dict.fromkeys(STORAGE, []),
                         self.clients_by_agent(vol, STORAGE))
        self.assert_lv_data(vol, STORAGE, {**first, **later})
        self.ctl.delete_volume(vol)
        self.assert_clean()

    def two_primaries(self, node: str, vol: str) -> bool:
        return 'allow-two-primaries yes;' in self.res_text(node, vol)

    def test_dead_hypervisor_fenced_off_and_its_leftover_removed(self):
        vol = self.name('faults-deadhv')
        self.ctl.create_volume(vol, 64 * MiB, replicas=3)
        self.ctl.attach(vol, 'hv-1')
        fd = self.open_device(self.ctl.attach(vol, 'hv-2'))
        self.assertTrue(self.two_primaries('stor-a', vol))
        self.stop_node('hv-1')
        # A controller without a warm session to hv-1 (cinder-volume
        # after the crash): hv-1 cannot be reached at all.
        ctl = self.box.controller(connect_timeout=30.0)
        ctl.detach(vol, 'hv-1')                 # Nova: never forced
        for node in STORAGE + ('hv-2',):
            self.assertNotIn('hv-1', self.res_text(node, vol), node)
            self.assertFalse(self.two_primaries(node, vol), node)
        for node in STORAGE:
            self.assertNotIn('hv-1', [c['name'] for c in self.state(
                node, vol)['connections']], node)
        data = test_flows.random_chunks((MiB, MiB))
        self.write_chunks(fd, data)
        self.assert_lv_data(vol, STORAGE, data)
        self.ran('detach from a dead hypervisor without force: fenced off '
                 'on every replica, two primaries off, the other writes')

        self.start_node('hv-1')                 # boots: adjust all
        self.assertTrue(self.two_primaries('hv-1', vol))
        stats = ctl.stats()
        self.assertEqual((vol,), stats.divergent_volumes)
        outcome = reconcile.reconcile(ctl, stats.divergent_volumes)[vol]
        self.assertIn('hv-1: client detached', outcome)
        self.assertFalse((self.box.nodes['hv-1'].resource_dir
                          / f'{vol}.res').exists())
        self.assertEqual([], self.standin.status('hv-1'))
        self.assertEqual((), ctl.stats().divergent_volumes)
        self.ran('the fenced hypervisor back: its leftover .res removed by '
                 'the repair')

        # hv-2 misses the adjust of a detach: it keeps two primaries.
        self.ctl.attach(vol, 'hv-1')
        self.assertTrue(self.two_primaries('hv-2', vol))
        self.box.nodes['hv-2'].sshd.stop()
        self.addCleanup(self.box.nodes['hv-2'].sshd.start)
        ctl = self.box.controller(connect_timeout=30.0)
        ctl.detach(vol, 'hv-1')
        self.assertFalse(self.two_primaries('stor-a', vol))
        self.assertTrue(self.two_primaries('hv-2', vol))
        self.box.nodes['hv-2'].sshd.start()
        stats = ctl.stats()
        self.assertEqual((vol,), stats.divergent_volumes)
        outcome = reconcile.reconcile(ctl, stats.divergent_volumes)[vol]
        self.assertIn('hv-2: client adjusted', outcome)
        self.assertFalse(self.two_primaries('hv-2', vol))
        self.assertEqual(self.definition('stor-a', vol),
                         self.definition('hv-2', vol))
        self.assertEqual((), ctl.stats().divergent_volumes)
        more = test_flows.random_chunks((2 * MiB, MiB))
        self.write_chunks(fd, more)
        self.assert_lv_data(vol, STORAGE, {**data, **more})
        self.ran('a client left with allow-two-primaries: repaired')

        self.close_device(fd)
        self.ctl.detach(vol, 'hv-2')
        self.ctl.delete_volume(vol)
        self.assert_clean()

    def grow_mark(self, node: str, vol: str):
        path = self.box.nodes[node].dir / 'state' / f'{vol}.grow'
        return json.loads(path.read_text()) if path.exists() else None

    def test_extend_zeroes_the_old_metadata_and_a_pending_one_converges(
            self):
        # The stand-in's DRBD device opens (FUSE), BLKZEROOUT is not
        # supported there (ENOTTY): the agent writes the zeros, and the
        # stand-in replicates them like any write.
        vol = self.name('faults-zeroing')
        old, new = 64 * MiB, 128 * MiB
        self.ctl.create_volume(vol, old, replicas=3)
        before = {n: (self.box.nodes[n].resource_dir /
                      f'{vol}.res').read_text() for n in STORAGE}
        mark = len(self.standin.calls())
        self.ctl.extend_volume(vol, new, old_size=old)
        resizes = [(who, argv) for who, prog, argv, _rc
                   in self.standin.calls()[mark:]
                   if prog == 'drbdsetup' and argv.startswith('resize')]
        self.assertEqual(1, len(resizes), resizes)
        self.assertIn('assume-clean', resizes[0][1])
        old_end = None
        for node in STORAGE:
            status = self.box.run_agent(node, {'op': 'status',
                                               'resource': vol})
            self.assertIsNone(status['zero_pending'], node)
            self.assertEqual(new, status['device_size'], node)
            grow = self.grow_mark(node, vol)
            if node == resizes[0][0]:
                self.assertIsNone(grow)         # zeroed: forgotten
            else:
                # the LV size before the grow; stale now (DRBD was
                # resized), dropped at the next resize or the delete
                self.assertIsNone(grow['zero'])
                self.assertEqual(old, grow['device_size'])
                old_end = grow['lv_size']
        self.assertGreater(old_end, old)
        for node in STORAGE:
            self.assertEqual(bytes(old_end - old),
                             self.box.lv_bytes(node, vol, old,
                                               old_end - old), node)
        self.ran('extend: the old metadata area zeroed on every replica, '
                 'nothing pending')

        # What a zeroing that failed after DRBD took the new size leaves:
        # the zeroing node's record, the other replicas' old .res, and
        # their own bytes where their old metadata was.
        zeroer = resizes[0][0]
        others = [n for n in STORAGE if n != zeroer]
        for node in others:
            (self.box.nodes[node].resource_dir / f'{vol}.res').write_text(
                before[node])
        lv = self.standin.lv_path(others[0], cluster_box.VG, vol)
        with open(lv, 'r+b') as f:
            f.seek(old)
            f.write(b'\xab' * (old_end - old))
        (self.box.nodes[zeroer].dir / 'state' / f'{vol}.grow').write_text(
            json.dumps({'lv_size': old_end, 'device_size': old,
                        'zero': [old, old_end]}))
        stats = self.ctl.stats()
        self.assertEqual((vol,), stats.divergent_volumes)
        outcome = reconcile.reconcile(self.ctl, stats.divergent_volumes)
        self.assertIn(f'{zeroer}: zeroed the pending', outcome[vol])
        for node in others:
            self.assertIn(f'{node}: adjusted', outcome[vol])
        for node in STORAGE:
            self.assertEqual(bytes(old_end - old),
                             self.box.lv_bytes(node, vol, old,
                                               old_end - old), node)
            self.assertIn(f'size {new // 1024}k;', self.res_text(node, vol))
        self.assertIsNone(self.grow_mark(zeroer, vol))
        self.assertEqual((), self.ctl.stats().divergent_volumes)
        self.ran('a pending zeroing finished by the repair before the '
                 'larger .res was pushed')

        self.ctl.delete_volume(vol)
        self.assert_clean()
        self.ran('delete removes the grow marks too')

    def test_delete_while_node_down(self):
        vol = self.name('faults-delete')
        self.ctl.create_volume(vol, 128 * MiB, replicas=3)
        self.stop_node('stor-c')
        with self.assertRaises(errors.NodeOperationFailed) as ctx:
            self.ctl.delete_volume(vol)
        self.assertEqual(['stor-c'], sorted(ctx.exception.failures))
        self.assertIn('stor-c', str(ctx.exception))
        self.assert_clean(self.up())
        self.ran('delete with a replica down: reported, naming the node')

        self.start_node('stor-c')
        self.assertEqual(['drbd:' + vol, 'lv:' + vol, f'res:{vol}.res'],
                         self.box.leftovers()['stor-c'])
        self.ctl.delete_volume(vol)
        self.assert_clean()
        self.ran('delete converges when the node returns')

    def test_node_whose_lvm_scans_drbd_refused(self):
        # What the VM tier had: rejecting /dev/drbd* let udev's
        # /dev/block/147:N through, and lvs hung on a suspended device.
        self.set_global_filter('stor-b', ['r|^/dev/drbd|', 'a|.*|'])
        problems = self.ctl.check_setup()
        self.assertEqual(['stor-b'], sorted(problems))
        for what in ('this node cannot serve: LVM would scan DRBD devices',
                     '/dev/block/147:1000', 'lvm.conf', 'global_filter'):
            self.assertIn(what, problems['stor-b'])
        stats = self.ctl.stats()
        self.assertEqual({'stor-b': problems['stor-b']}, stats.nodes_refused)
        self.assertEqual({}, stats.nodes_down)
        with self.assertRaises(errors.PlacementError):
            self.ctl.create_volume(self.name('faults-lvm3'), 128 * MiB,
                                   replicas=3)
        spec = self.ctl.create_volume(self.name('faults-lvm2'), 128 * MiB,
                                      replicas=2)
        self.assertEqual(['stor-a', 'stor-c'],
                         sorted(h.name for h in spec.diskful_hosts))
        self.ctl.delete_volume(spec.name)
        self.assert_clean(['stor-a', 'stor-c'])
        self.ran('LVM filter letting DRBD devices through: node refused, '
                 'named with the fix')

        # A client runs no LVM of ours: its filter is not checked.
        self.set_global_filter('hv-1', None)
        self.assertEqual([], self.box.inventory('hv-1')['pools'])
        self.set_global_filter('stor-b', 'junk')
        self.assertIn('devices/global_filter in lvm.conf cannot be used: '
                      'not a list of quoted patterns: junk',
                      self.ctl.check_setup()['stor-b'])
        self.set_global_filter('stor-b', ['a|^/dev/sdb$|', 'r|.*|'])
        self.assertEqual({}, self.ctl.check_setup())
        self.ran('a client is not checked; junk is named; the NODE-SETUP '
                 'whitelist passes')

    def test_create_retried_after_a_replica_crashed_in_the_initial_sync(
            self):
        size = 64 * MiB
        # Two replicas on stor-a and stor-b first: the next placement
        # ranks stor-c first (node-id 0).
        other = self.name('faults-placed-first')
        self.ctl.create_volume(other, size, replicas=2)
        vol = self.name('faults-retry')
        real_call = self.ctl.call

        def crash_in_the_sync(node, request, timeout=None):
            if (request['op'] == 'status' and request.get('resource') == vol
                    and 'stor-c' not in self.down):
                self.stop_node('stor-c')
            return real_call(node, request, timeout)

        with mock.patch.object(self.ctl, 'call', crash_in_the_sync):
            with self.assertRaises(errors.ClusterError):
                self.ctl.create_volume(vol, size, replicas=3)
        first = {h['name']: h['node_id']
                 for h in self.definition('stor-c', vol)['hosts']}
        self.assertEqual({}, self.items_of(vol, ('stor-a', 'stor-b')))
        # It boots with the first placement's .res (drbdadm adjust all).
        self.start_node('stor-c')
        self.assertIn('drbd:' + vol, self.items_of(vol, ['stor-c'])[
            'stor-c'])
        self.ran('a replica crashing in the initial sync: its leftover '
                 'comes back with the first placement')

        spec = self.ctl.create_volume(vol, size, replicas=3)
        again = {h.name: h.node_id for h in spec.diskful_hosts}
        self.assertNotEqual(first, again)       # another order this time
        self.assert_replicas(spec, STORAGE, size)
        for node in STORAGE:
            self.assertEqual(again, {
                h['name']: h['node_id']
                for h in self.definition(node, vol)['hosts']}, node)
        self.ran('create retried (the name reused): the leftover is '
                 'removed first, the volume is placed anew everywhere')

        self.ctl.delete_volume(vol)
        self.ctl.delete_volume(other)
        self.assert_clean()

    def test_clone_snapshot_left_on_a_node_down_at_the_end_goes_later(self):
        size = 64 * MiB
        src = self.name('faults-clonesrc')
        self.ctl.create_volume(src, size, replicas=3)
        clone = self.name('faults-clone')
        temp = f'clone-{clone}'
        self.snapshots.append(temp)         # cleaned up if the test fails
        real_delete = self.ctl.delete_snapshot

        def crash_first(snapshot, volume=None):
            self.stop_node('stor-c')
            return real_delete(snapshot, volume)

        with mock.patch.object(self.ctl, 'delete_snapshot', crash_first):
            spec = self.ctl.clone_volume(clone, src, size, size)
        self.assertEqual(sorted(STORAGE),
                         sorted(h.name for h in spec.diskful_hosts))
        self.assertEqual(set(), self.snapshot_holders(
            temp, [n for n in STORAGE if n not in self.down]))
        self.ran('clone with a node down at its end: done, its temporary '
                 'snapshot left on that node only')

        self.start_node('stor-c')
        self.assertEqual({'stor-c'}, self.snapshot_holders(temp))
        stats = self.ctl.stats()
        self.assertEqual({temp: ('stor-c',)}, stats.temporary_snapshots)
        self.assertEqual({temp: 'removed'},
                         self.ctl.remove_temporary_snapshots(
                             stats.temporary_snapshots))
        self.assertEqual(set(), self.snapshot_holders(temp))
        self.assertEqual({}, self.ctl.stats().temporary_snapshots)
        self.ran('node back: the stats list the snapshot, the removal '
                 'takes it')

        self.ctl.delete_volume(clone)
        self.ctl.delete_volume(src)
        self.assert_clean()
