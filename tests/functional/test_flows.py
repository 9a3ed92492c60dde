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
"""Every controller flow against the cluster in a box.

Three storage nodes and two hypervisors, each a real ``blackstor-node``
reached over real SSH (one class over the local transport); the real
``drbdadm`` parses every .res; the DRBD kernel and LVM are the stand-in of
``tests/standin``, so data written through a client device can be read back
from every replica's LV file. One box per class (booting one costs a few
seconds); each test uses its own volume names and removes them, and the box
must be empty after every test and at the end.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import errno
import json
import logging
import os
import subprocess
import sys
import unittest

import fixtures
from oslotest import base

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport
from blackstor_cinder.node import drbd
from blackstor_cinder.node import drbdconf
from tests.functional import cluster_box

LOG = logging.getLogger(__name__)
LOG_FORMAT = '%(asctime)s %(levelname)s [%(name)s] %(message)s'
MiB = 1 << 20
STORAGE = ('stor-a', 'stor-b', 'stor-c')


class BoxTestCase(base.BaseTestCase):
    """A test class sharing one ClusterInABox and one controller."""

    box_args: dict = {}
    controller_args: dict = {}
    counting = 'flows'             # what the summary line counts
    box: cluster_box.ClusterInABox

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        why = cluster_box.missing_prerequisites()
        if why:
            raise unittest.SkipTest(why)
        cls.cases = []
        cls.box = cluster_box.ClusterInABox(**cls.box_args)
        cls.box.setUp()
        try:
            cls.ctl = cls.box.controller(
                **dict({'connect_timeout': 30.0}, **cls.controller_args))
        except BaseException:
            cls.box.cleanUp()
            raise

    @classmethod
    def tearDownClass(cls):
        left = problem = None
        try:
            left = cls.box.leftovers()
        except Exception as exc:     # e.g. a node that did not come back
            problem = exc
        finally:
            cls.box.cleanUp()
        line = (f'{cls.__module__}.{cls.__name__}: {len(cls.cases)} '
                f'{cls.counting} ran over transport '
                f'{cls.box.transport}')
        print('\n'.join([line + ':'] + [f'  {c}' for c in cls.cases]))
        sys.stderr.write(line + '\n')
        super().tearDownClass()
        if problem is not None:
            raise problem
        if left:
            raise AssertionError(f'{cls.__name__} left behind: {left}')

    def setUp(self):
        super().setUp()
        # the controller's and the transports' logs, shown on failure
        self.useFixture(fixtures.FakeLogger(level=logging.DEBUG,
                                            format=LOG_FORMAT))
        self.box = type(self).box
        self.ctl = type(self).ctl
        self.standin = self.box.standin
        self.volumes: list[str] = []
        self.snapshots: list[str] = []
        self.addCleanup(self._remove_what_is_left)

    # -- bookkeeping -------------------------------------------------------

    def ran(self, what: str) -> None:
        """Count a flow (or fault case) as exercised and checked."""
        type(self).cases.append(f'{self.id().rsplit(".", 1)[-1]}: {what}')

    def name(self, tag: str) -> str:
        name = f'volume-{tag}'
        self.volumes.append(name)
        return name

    def snap(self, tag: str) -> str:
        name = f'snap-{tag}'
        self.snapshots.append(name)
        return name

    def _remove_what_is_left(self):
        """After a failure: detach, delete, so later tests start clean."""
        for name in reversed(self.volumes):
            for step in (lambda: self.ctl.detach(name, force=True),
                         lambda: self.ctl.delete_volume(name)):
                try:
                    step()
                except Exception:
                    LOG.exception('cleanup of %s', name)
        for snap in self.snapshots:
            try:
                self.ctl.delete_snapshot(snap)
            except Exception:
                LOG.exception('cleanup of %s', snap)

    # -- looking at the box ------------------------------------------------

    @staticmethod
    def parallel(fn, items) -> dict:
        items = list(items)
        with concurrent.futures.ThreadPoolExecutor(len(items)) as pool:
            return dict(zip(items, pool.map(fn, items)))

    def lvs(self, node: str) -> dict[str, int]:
        """LV name -> size of a node's VG, from (the stand-in's) ``lvs``."""
        proc = subprocess.run(
            ['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix',
             '-o', 'lv_name,lv_size', cluster_box.VG],
            env=self.box.node_env(node), capture_output=True, text=True,
            check=True, timeout=60)
        rows = json.loads(proc.stdout)['report'][0]['lv']
        return {row['lv_name']: int(row['lv_size']) for row in rows}

    def lv_sizes(self, name: str, nodes=STORAGE) -> dict[str, int]:
        """Node -> size of the LV ``name`` on the nodes that have it."""
        return {node: lvs[name]
                for node, lvs in self.parallel(self.lvs, nodes).items()
                if name in lvs}

    def snapshot_holders(self, snap: str, nodes=STORAGE) -> set[str]:
        return set(self.lv_sizes(snap, nodes))

    def state(self, node: str, res: str) -> dict:
        """``drbdsetup status --json`` of one resource on a node."""
        items = self.standin.status(node, res)
        self.assertEqual(1, len(items), f'{res} on {node}: {items}')
        return items[0]

    def res_text(self, node: str, res: str) -> str:
        path = self.box.nodes[node].resource_dir / f'{res}.res'
        return path.read_text()

    def definition(self, node: str, res: str) -> dict:
        """The node's .res of ``res``, parsed (hosts, minor, ports)."""
        return drbdconf.resources(self.res_text(node, res))[res]

    def device_sizes(self, name: str, nodes) -> dict[str, int]:
        """Node -> bytes of the DRBD device (``drbdsetup status``)."""
        return {node: self.state(node, name)['devices'][0]['size'] * 1024
                for node in nodes}

    def assert_device_size(self, name: str, size: int, nodes=STORAGE,
                           clients=()) -> None:
        """The device is exactly the volume, everywhere, as the .res says.

        Not the LV minus the metadata (more: the LV is rounded up to the
        extent), which a raw image upload of the volume would carry.
        """
        everyone = tuple(nodes) + tuple(clients)
        self.assertEqual(dict.fromkeys(everyone, size),
                         self.device_sizes(name, everyone))
        for node in nodes:
            self.assertEqual(size, drbd.size_bytes(
                self.definition(node, name)['disk'].get('size')), node)
        for node in clients:
            self.assertEqual(size, os.stat(
                self.standin.device_path(node, name)).st_size, node)

    def assert_replicas(self, spec, nodes, size: int,
                        among=STORAGE) -> None:
        """LVs exactly on ``nodes``; same minor and port; all UpToDate.

        The device is exactly ``size``. ``among``: the storage nodes whose
        LVs are listed.
        """
        name = spec.name
        sizes = self.lv_sizes(name, among)
        self.assertEqual(sorted(nodes), sorted(sizes), f'LVs of {name}')
        self.assertEqual(sorted(nodes),
                         sorted(h.name for h in spec.diskful_hosts))
        for node in nodes:
            self.assertGreaterEqual(sizes[node], size)
            definition = self.definition(node, name)
            self.assertEqual(spec.minor, definition['minor'])
            self.assertEqual(sorted(nodes), sorted(
                h['name'] for h in definition['hosts'] if h['diskful']))
            self.assertEqual({spec.port},
                             {h['port'] for h in definition['hosts']})
            state = self.state(node, name)
            device = state['devices'][0]
            self.assertEqual(spec.minor, device['minor'])
            self.assertEqual('UpToDate', device['disk-state'],
                             f'{name} on {node}: {device}')
            self.assertTrue(device['quorum'])
            self.assertFalse(state['suspended'])
            peers = {c['name']: c for c in state['connections']}
            # the other replicas and the tiebreaker (two replicas)
            tie = {h.name for h in spec.hosts if h.tiebreaker}
            self.assertEqual(sorted(set(nodes) - {node} | tie), sorted(
                n for n in peers if n in STORAGE))
            for peer, conn in peers.items():
                self.assertEqual('Connected', conn['connection-state'],
                                 f'{node} -> {peer}')
                self.assertEqual({spec.port},
                                 {p['this_host']['port']
                                  for p in conn['paths']})
                if peer in nodes:
                    self.assertEqual(
                        'UpToDate',
                        conn['peer_devices'][0]['peer-disk-state'])
        self.assertEqual(size, spec.size)
        self.assert_device_size(name, size, nodes)

    def assert_lv_data(self, name: str, nodes, chunks: dict) -> None:
        """Every replica's LV file holds ``chunks`` ({offset: bytes})."""
        for node in nodes:
            for offset, data in chunks.items():
                got = self.box.lv_bytes(node, name, offset, len(data))
                self.assertTrue(got == data,
                                f'{name} on {node} at {offset}: '
                                f'{got[:16]!r}... != {data[:16]!r}...')

    def drbdsetup_calls(self, since: int, command: str) -> list[str]:
        """Nodes that ran ``drbdsetup <command>`` after call ``since``."""
        return sorted(c[0] for c in self.standin.calls()[since:]
                      if c[1] == 'drbdsetup' and c[2].split()[:1] == [
                          command] and c[3] == 0)

    def assert_clean(self, nodes=None) -> None:
        self.assertEqual({}, self.box.leftovers(nodes))
        if nodes is None:
            self.volumes, self.snapshots = [], []   # nothing to clean up

    # -- the data path -----------------------------------------------------

    def open_device(self, path: str) -> int:
        """Open ``path``; closed at cleanup unless :meth:`close_device` did.

        Never ``os.close`` it directly: the cleanup would close the number
        again, by then another file's (a paramiko socket's, say).
        """
        fd = os.open(path, os.O_RDWR)
        if not hasattr(self, '_open_fds'):
            self._open_fds = set()
            self.addCleanup(self._close_open_fds)
        self._open_fds.add(fd)
        return fd

    def close_device(self, fd: int) -> None:
        self._open_fds.remove(fd)
        os.close(fd)

    def _close_open_fds(self) -> None:
        for fd in self._open_fds:
            _close_quietly(fd)
        self._open_fds.clear()

    def write_chunks(self, fd: int, chunks: dict) -> None:
        for offset, data in chunks.items():
            self.assertEqual(len(data), os.pwrite(fd, data, offset))
        os.fsync(fd)

    def assert_device_data(self, fd: int, chunks: dict) -> None:
        for offset, data in chunks.items():
            got = os.pread(fd, len(data), offset)
            self.assertTrue(got == data, f'device at {offset} differs')


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def random_chunks(*spans: tuple[int, int]) -> dict[int, bytes]:
    """{offset: random bytes} for (offset, length) pairs."""
    return {offset: os.urandom(length) for offset, length in spans}


class TestFlows(BoxTestCase):
    """The driver's flows over SSH on 3 storage nodes + 2 hypervisors."""

    box_args = {'transport': 'ssh'}

    def test_create_one_and_two_replicas(self):
        one, two = self.name('flows-r1'), self.name('flows-r2')
        spec1 = self.ctl.create_volume(one, 64 * MiB, replicas=1)
        spec2 = self.ctl.create_volume(two, 64 * MiB, replicas=2)
        self.assertEqual(1, len(spec1.diskful_hosts))
        self.assertEqual(2, len(spec2.diskful_hosts))
        self.assertNotEqual(spec1.minor, spec2.minor)
        self.assertNotEqual(spec1.port, spec2.port)
        # placement prefers the emptiest nodes: r2 avoids r1's node
        self.assertNotIn(spec1.diskful_hosts[0].name,
                         [h.name for h in spec2.diskful_hosts])
        self.assert_replicas(spec1, [spec1.diskful_hosts[0].name], 64 * MiB)
        self.ran('create, 1 replica')
        self.assert_replicas(spec2, [h.name for h in spec2.diskful_hosts],
                             64 * MiB)
        self.ran('create, 2 replicas')
        stats = self.ctl.stats()
        self.assertEqual(2, stats.total_volumes)
        self.assertEqual((), stats.degraded_volumes)
        self.assertEqual(STORAGE, stats.nodes_up)
        self.ctl.delete_volume(one)
        self.ctl.delete_volume(two)
        self.ctl.delete_volume(two)         # gone is success
        self.assert_clean()
        self.ran('delete (twice: gone is success)')

    def test_data_snapshot_clone_extend_revert(self):
        size = 256 * MiB
        vol = self.name('flows-data')
        spec = self.ctl.create_volume(vol, size, replicas=3)
        self.assert_replicas(spec, STORAGE, size)
        self.ran('create, 3 replicas')

        path = self.ctl.attach(vol, 'hv-1')
        self.assertEqual(self.standin.device_path('hv-1', vol), path)
        self.assertTrue(self.state('hv-1', vol)['devices'][0]['client'])
        self.assert_device_size(vol, size, clients=('hv-1',))
        fd = self.open_device(path)
        before = random_chunks((0, MiB), (7 * MiB + 512, MiB),
                               (100 * MiB, 2 * MiB),
                               (size - MiB, MiB))
        self.write_chunks(fd, before)
        self.assertEqual('Primary', self.state('hv-1', vol)['role'])
        self.assert_device_data(fd, before)
        self.assert_lv_data(vol, STORAGE, before)
        self.ran('attach on hv-1, write through the client device, read '
                 'back on every replica')

        snap = self.snap('flows-data')
        mark = len(self.standin.calls())
        self.ctl.create_snapshot(vol, snap)
        self.assertEqual(set(STORAGE), self.snapshot_holders(snap))
        everyone = sorted(STORAGE + ('hv-1',))
        self.assertEqual(everyone, self.drbdsetup_calls(mark, 'suspend-io'))
        self.assertEqual(everyone, self.drbdsetup_calls(mark, 'resume-io'))
        for node in STORAGE + ('hv-1',):
            self.assertFalse(self.state(node, vol)['suspended'], node)
        after = random_chunks((0, MiB), (200 * MiB, MiB))
        self.write_chunks(fd, after)
        self.assert_lv_data(vol, STORAGE, after)
        self.ran('snapshot while attached (I/O resumed everywhere)')

        bigger = self.name('flows-fromsnap')
        spec_b = self.ctl.create_volume_from_snapshot(
            bigger, snap, vol, size, 2 * size)
        self.assertEqual(
            sorted((h.name, h.node_id) for h in spec.diskful_hosts),
            sorted((h.name, h.node_id) for h in spec_b.diskful_hosts))
        self.assert_replicas(spec_b, STORAGE, 2 * size)
        self.assert_lv_data(bigger, STORAGE, before)
        for node in STORAGE:
            self.assertEqual(bytes(MiB),
                             self.box.lv_bytes(node, bigger, 200 * MiB, MiB),
                             f'data written after the snapshot on {node}')
        self.ran('volume from snapshot, larger than the source')

        clone = self.name('flows-clone')
        spec_c = self.ctl.clone_volume(clone, vol, size, size + 64 * MiB)
        self.assert_replicas(spec_c, STORAGE, size + 64 * MiB)
        now = {**before, **after}
        self.assert_lv_data(clone, STORAGE, now)
        self.assertEqual(set(), self.snapshot_holders(f'clone-{clone}'))
        self.ran('clone, larger than the source (temporary snapshot '
                 'removed)')

        mark = len(self.standin.calls())
        self.ctl.extend_volume(vol, 2 * size)
        # One resize with the new size, on one replica; the others took
        # it from DRBD, so their adjust to the new .res did nothing.
        resizes = [c for c in self.standin.calls()[mark:]
                   if c[1] == 'drbdsetup' and c[2].startswith('resize ')]
        self.assertEqual(1, len(resizes), resizes)
        self.assertEqual(0, resizes[0][3])
        # The stand-in's device cannot be held open by the agent, so the
        # grow falls back to DRBD resyncing the grown range (no
        # --assume-clean); the zeroing path is proven on the VM tier.
        self.assertIn(f'--size={2 * size // 1024}k', resizes[0][2])
        self.assertNotIn('--assume-clean', resizes[0][2])
        sizes = self.lv_sizes(vol)
        self.assertEqual(sorted(STORAGE), sorted(sizes))
        for node, lv_size in sizes.items():
            self.assertGreaterEqual(lv_size, 2 * size, node)
        self.assert_device_size(vol, 2 * size, clients=('hv-1',))
        self.assertEqual(2 * size, os.stat(path).st_size)
        self.assertEqual(2 * size, self.ctl.find(vol).spec.size)
        grown = random_chunks((size + 3 * MiB, MiB))
        self.write_chunks(fd, grown)
        self.assert_device_data(fd, grown)
        self.assert_lv_data(vol, STORAGE, grown)
        self.assert_lv_data(vol, STORAGE, now)
        self.ran('extend online while attached')

        with self.assertRaises(errors.InvalidRequest):
            self.ctl.revert_to_snapshot(vol, snap, size, 2 * size)
        self.close_device(fd)
        self.ctl.detach(vol, 'hv-1')
        self.assertEqual([], self.standin.status('hv-1'))
        self.assertNotIn('hv-1', self.res_text('stor-a', vol))
        self.ctl.revert_to_snapshot(vol, snap, size, 2 * size)
        self.assert_lv_data(vol, STORAGE, before)
        for node in STORAGE:
            self.assertEqual(bytes(MiB),
                             self.box.lv_bytes(node, vol, 200 * MiB, MiB))
            self.assertEqual(bytes(MiB), self.box.lv_bytes(
                node, vol, size + 3 * MiB, MiB))
        # up at the snapshot's size, grown online to the volume's again
        self.assert_replicas(self.ctl.find(vol).spec, STORAGE, 2 * size)
        self.ran('revert to snapshot (refused while attached)')

        for name in (clone, bigger, vol):
            self.ctl.delete_volume(name)
        self.ctl.delete_snapshot(snap)
        self.assert_clean()
        self.ran('delete volumes and snapshot')

    def test_agent_takes_only_the_schema_and_keeps_invariants(self):
        # issue 13: the real agent over SSH, its real drbdadm
        vol = self.name('flows-schema')
        spec = self.ctl.create_volume(vol, 64 * MiB, replicas=2)
        node = self.ctl.config.node(spec.diskful_hosts[0].name)
        before = {n: self.res_text(n, vol) for n in
                  (h.name for h in spec.diskful_hosts)}
        good = self.ctl.res_request('adjust', spec)
        refused = [
            (dict(good, res_text='resource "x" { handlers { } }'),
             'invalid-input', 'res_text'),
            (dict(good, spec=dict(good['spec'], handlers={
                'before-resync-target': '/bin/sh -c id'})),
             'invalid-input', 'spec.handlers'),
            (dict(good, spec=dict(good['spec'], net={'no-such': 1})),
             'invalid-input', 'spec.net.no-such'),
            (dict(good, spec=dict(good['spec'], volumes=[{'disk': '/x'}])),
             'invalid-input', 'spec.volumes'),
            (self.ctl.res_request('adjust', spec.with_hosts(tuple(
                dataclasses.replace(h, node_id=h.node_id + 5)
                for h in spec.hosts))), 'conflict', 'node_id'),
            (self.ctl.res_request('adjust', dataclasses.replace(
                spec, minor=spec.minor + 1)), 'conflict', 'minor'),
            (self.ctl.res_request('adjust', dataclasses.replace(
                spec, port=spec.port + 1)), 'conflict', 'port'),
            (self.ctl.res_request('adjust', dataclasses.replace(
                spec, size=32 * MiB)), 'conflict', 'size'),
            (self.ctl.res_request('adjust', spec.with_hosts(tuple(
                dataclasses.replace(h, diskful=False, disk=None)
                if h.name == node.name else h for h in spec.hosts))),
             'conflict', 'spec.hosts[0]'),
        ]
        for request, code, field in refused:
            with self.assertRaises(transport.NodeError) as ctx:
                self.ctl.call(node, request)
            self.assertEqual((code, field),
                             (ctx.exception.code, ctx.exception.field),
                             ctx.exception.message)
        self.assertEqual(before, {n: self.res_text(n, vol) for n in before})
        self.assertEqual('unchanged', self.ctl.call(node, good)['drbd'])
        self.ctl.delete_volume(vol)
        self.assert_clean()
        self.ran('fields outside the schema and invariant breaks refused')

    def test_live_migration(self):
        vol = self.name('flows-migrate')
        spec = self.ctl.create_volume(vol, 64 * MiB, replicas=2)
        replicas = [h.name for h in spec.diskful_hosts]
        src = self.ctl.attach(vol, 'hv-1')
        for node in replicas:
            self.assertNotIn('allow-two-primaries', self.res_text(node, vol))
        dst = self.ctl.attach(vol, 'hv-2')
        for node in replicas:
            self.assertIn('allow-two-primaries yes;',
                          self.res_text(node, vol))
        tie = [spec.tiebreaker_host.name]     # the third storage node
        self.assertEqual(
            sorted(replicas + tie + ['hv-1', 'hv-2']),
            sorted(h['name'] for h in self.definition(replicas[0],
                                                      vol)['hosts']))
        # both hypervisors open the device for writing at once
        fd1, fd2 = self.open_device(src), self.open_device(dst)
        data = random_chunks((5 * MiB, 256 * 1024))
        self.write_chunks(fd1, data)
        self.assert_device_data(fd2, data)
        self.assertEqual('Primary', self.state('hv-1', vol)['role'])
        self.assertEqual('Primary', self.state('hv-2', vol)['role'])
        for node in replicas:
            peers = {c['name']: c for c in self.state(node, vol)[
                'connections']}
            self.assertEqual('Connected', peers['hv-2']['connection-state'])
            self.assertEqual('Primary', peers['hv-1']['peer-role'])
        self.ran('attach on a second hypervisor (two primaries allowed)')

        self.close_device(fd1)
        self.ctl.detach(vol, 'hv-1')
        self.assertEqual([], self.standin.status('hv-1'))
        for node in replicas:
            text = self.res_text(node, vol)
            self.assertNotIn('allow-two-primaries', text)
            self.assertNotIn('hv-1', text)
            self.assertIn('hv-2', text)
        self.write_chunks(fd2, random_chunks((6 * MiB, 4096)))
        # a second primary is refused again now
        with self.assertRaises(OSError) as ctx:
            os.open(self.standin.device_path(replicas[0], vol), os.O_RDWR)
        self.assertEqual(errno.EROFS, ctx.exception.errno)
        self.ran('detach the source (one primary only again)')

        self.close_device(fd2)
        self.ctl.detach(vol, 'hv-2')
        self.ctl.detach(vol, 'hv-2')        # not attached: nothing to do
        self.assertEqual([], self.standin.status('hv-2'))
        # the tiebreaker stays: it is no client
        self.assertEqual(
            sorted(replicas + tie),
            sorted(h['name'] for h in self.definition(replicas[0],
                                                      vol)['hosts']))
        self.ctl.delete_volume(vol)
        self.assert_clean()
        self.ran('detach the destination, delete')


class TestFlowsLocalZones(BoxTestCase):
    """The local transport, with zones: stor-a in z1, stor-b/c in z2."""

    box_args = {'transport': 'local',
                'zones': {'stor-a': 'z1', 'stor-b': 'z2', 'stor-c': 'z2'}}
    controller_args = {'zone_policy': 'spread'}

    def test_spread_and_data_path(self):
        vol = self.name('local-spread')
        with self.assertRaises(errors.PlacementError) as ctx:
            self.ctl.create_volume(self.name('local-three'), 64 * MiB,
                                   replicas=3)
        self.assertIn('only 2 zones', str(ctx.exception))
        self.assert_clean()
        self.ran('3 replicas spread over 2 zones refused, nothing left')

        spec = self.ctl.create_volume(vol, 64 * MiB, replicas=2)
        nodes = sorted(h.name for h in spec.diskful_hosts)
        self.assertIn('stor-a', nodes)
        zones = {self.box.nodes[n].zone for n in nodes}
        self.assertEqual({'z1', 'z2'}, zones)
        self.assert_replicas(spec, nodes, 64 * MiB)
        self.ran('2 replicas spread over distinct zones')

        path = self.ctl.attach(vol, 'hv-2')
        fd = self.open_device(path)
        data = random_chunks((0, MiB), (33 * MiB + 4096, MiB))
        self.write_chunks(fd, data)
        self.assert_device_data(fd, data)
        self.assert_lv_data(vol, nodes, data)
        self.close_device(fd)
        self.ctl.detach(vol, 'hv-2')
        self.ctl.delete_volume(vol)
        self.assert_clean()
        self.ran('attach, write, read back on the replicas, detach, delete')
