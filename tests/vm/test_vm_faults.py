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
"""Storage VMs stopped in the middle of a flow, on real DRBD 9.2.18.

A VM is stopped the hard way (its qemu killed: a power cut) at the moment
the controller sends it a given request; the caller must get an error
naming it. After the VM boots again (its root and data disks survive;
``drbdadm adjust all`` at boot, as a node's DRBD service does) the same
operation is retried, and then the volume deleted: nothing is left (no
LV, .res, minor or port) and verify finds 0 out-of-sync in between.

Then quorum: with two of three replicas stopped under a writer, writes
fail, and every write that was acknowledged before is on every replica
once they are back.
"""

from __future__ import annotations

import threading

from blackstor_cinder import backend
from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport as tp
from tests.vm import base
from tests.vm import checks

MiB = checks.MiB
SIZE = 32 * MiB
BLOCK = 4096


class PowerCut:
    """A transport that stops its VM when a given request is sent."""

    def __init__(self, test: VMFaultsTest, inner: tp.Transport,
                 node: str) -> None:
        self.test, self.inner, self.node = test, inner, node

    def call(self, request: dict, timeout: float | None = None) -> dict:
        if (self.node, request['op']) == self.test.cut_at:
            self.test.cut_at = None
            self.test.stop(self.node)
        return self.inner.call(request, timeout=timeout)

    def close(self) -> None:
        self.inner.close()


class VMFaultsTest(base.VMClusterTestCase):

    HYPERVISORS = ('hv-1',)
    #: a stopped node must fail a request quickly, not after 600 s
    CONFIG = {'blackstor_node_timeout': 60.0,
              'blackstor_ssh_connect_timeout': 10.0}

    def setUp(self):
        super().setUp()
        self.cut_at: tuple[str, str] | None = None
        conf = self.conf()
        real = backend.transport_factory(conf)
        self.cutting = ctl.Controller(
            backend.cluster_config(conf, 20.0),
            lambda node: PowerCut(self, real(node), node.name),
            poll_interval=0.5)
        self.addCleanup(self.cutting.close)

    # -- power ---------------------------------------------------------------

    stop = base.VMClusterTestCase.power_cut
    start = base.VMClusterTestCase.boot

    def fails_naming(self, node: str, op: str, flow, *args) -> None:
        self.cut_at = (node, op)
        exc = self.assertRaises(errors.ClusterError, flow, *args)
        self.assertIsNone(self.cut_at, f'{op} was never sent to {node}')
        self.assertIn(node, str(exc))

    def delete_and_check_clean(self, name: str) -> None:
        self.ctl.delete_volume(name)
        self.assertEqual(dict.fromkeys(self.STORAGE, []),
                         self.leftovers(name))
        inventories, down = self.ctl.inventories()
        self.assertEqual({}, down)
        for report in inventories.values():
            self.assertNotIn(name, report.resources)

    # -- a node stopped mid-flow ---------------------------------------------

    def test_1_create_with_a_node_stopped(self):
        name = 'volume-cut-create'
        # vm-c stops while the replicas wait for each other (its create
        # went through): the create fails and is rolled back where it can.
        self.fails_naming('vm-c', 'status', self.cutting.create_volume,
                          name, SIZE, 3)
        self.assertEqual({'vm-a': [], 'vm-b': []},
                         self.leftovers(name, ('vm-a', 'vm-b')))
        self.start('vm-c')
        # what vm-c kept goes with the delete Cinder sends for the volume
        self.delete_and_check_clean(name)
        self.ctl.create_volume(name, SIZE, 3)
        self.check_data(name)
        self.delete_and_check_clean(name)

    def test_2_snapshot_with_a_node_stopped(self):
        name = 'volume-cut-snap'
        self.ctl.create_volume(name, SIZE, 3)
        self.addCleanup(self.ctl.delete_volume, name)
        self.fails_naming('vm-b', 'snapshot-create',
                          self.cutting.create_snapshot, name, 'snap-cut')
        # nothing left suspended on the others
        for node in ('vm-a', 'vm-c'):
            state = checks.status(self.vms, node, name)
            self.assertFalse(state.get('suspended-user'), node)
        self.start('vm-b')
        checks.in_sync_states(self.vms, name, self.STORAGE)
        self.ctl.create_snapshot(name, 'snap-cut')
        self.ctl.delete_snapshot('snap-cut')
        self.check_data(name)
        self.delete_and_check_clean(name)

    def test_3_extend_with_a_node_stopped(self):
        name = 'volume-cut-grow'
        self.ctl.create_volume(name, SIZE, 3)
        self.addCleanup(self.ctl.delete_volume, name)
        self.fails_naming('vm-c', 'resize', self.cutting.extend_volume,
                          name, 2 * SIZE)
        self.start('vm-c')
        checks.in_sync_states(self.vms, name, self.STORAGE)
        self.ctl.extend_volume(name, 2 * SIZE)
        self.assertEqual(2 * SIZE, self.spec(name).size)
        self.check_data(name)
        self.delete_and_check_clean(name)

    # -- quorum --------------------------------------------------------------

    def test_4_no_acknowledged_write_lost_without_quorum(self):
        name = 'volume-quorum'
        self.ctl.create_volume(name, SIZE, 3)
        self.addCleanup(self.ctl.delete_volume, name)
        device = self.ctl.attach(name, 'hv-1')
        # Block i holds "blk-<i>"; a line in /tmp/acked for every write
        # that returned success (O_DIRECT + O_DSYNC: on stable storage of
        # every connected replica, protocol C).
        blocks = SIZE // BLOCK
        pid = int(self.vms.ssh('hv-1', (
            f"rm -f /tmp/acked; setsid sh -c 'i=0; while [ $i -lt {blocks} ]"
            f"; do printf blk-%08d $i | dd of={device} bs={BLOCK} count=1 "
            f"seek=$i conv=sync,notrunc oflag=direct,dsync status=none "
            f"&& echo ok $i >> /tmp/acked || echo fail $i >> /tmp/acked; "
            f"i=$((i + 1)); done' </dev/null >/dev/null 2>&1 & echo $!")
        ).stdout.split()[-1])

        def acked():
            out = self.vms.ssh('hv-1', 'cat /tmp/acked 2>/dev/null',
                               check=False).stdout
            return [line.split() for line in out.splitlines()]
        checks.wait('a few writes acknowledged',
                    lambda: len(acked()) >= 20, timeout=120)
        stops = [threading.Thread(target=self.stop, args=(n,))
                 for n in ('vm-b', 'vm-c')]
        for thread in stops:
            thread.start()
        for thread in stops:
            thread.join()
        checks.wait('writes failing without quorum',
                    lambda: any(w == 'fail' for w, _ in acked()[-3:]),
                    timeout=180)
        self.vms.ssh('hv-1', f'kill -- -{pid} {pid}', check=False)
        lines = acked()
        ok = [int(i) for w, i in lines if w == 'ok']
        self.assertTrue(ok)
        self.assertIn('fail', [w for w, _ in lines])
        for node in ('vm-b', 'vm-c'):
            self.start(node)
        checks.in_sync_states(self.vms, name, self.STORAGE)
        self.ctl.detach(name, 'hv-1')
        self.check_data(name)
        # every acknowledged block, on every replica
        for node in self.STORAGE:
            out = self.vms.ssh(node, (
                f"for i in {' '.join(map(str, ok))}; do dd if="
                f"{self.lv_path(name)} bs={BLOCK} skip=$i count=1 "
                f"status=none | head -c 12; echo; done")).stdout
            got = out.split()
            self.assertEqual([f'blk-{i:08d}' for i in ok], got,
                             f'{node} lost acknowledged writes')
