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
"""Day-2 operations on real DRBD 9.2.18: the tiebreaker, node loss + heal.

Four storage VMs (the fourth boots for this class only: a heal needs a
node to move to) and one hypervisor.

- A two-replica volume's diskless tiebreaker keeps quorum with one
  replica down, after a client came and went (DRBD keeps the slot of a
  diskless peer it once saw and counts it as missing in the tie rule
  unless the detach ran ``forget-peer``), and with a client attached
  writing through the cut.
- A storage VM power-cut for good: ``heal.node_lost`` gives every volume
  that had a replica there a new one elsewhere (full sync from the
  survivors, forget-peer of the lost node); the lost VM boots again with
  its old replicas, which never reconnect, and the repair of divergent
  .res removes them. ``drbdadm verify`` and the bytes on every replica at
  the end.
"""

from __future__ import annotations

import os

from blackstor_cinder.cluster import heal
from blackstor_cinder.cluster import reconcile
from tests.vm import base
from tests.vm import checks

MiB = checks.MiB
SIZE = 32 * MiB
CHUNK = SIZE // 8


class VMDay2Test(base.VMClusterTestCase):

    STORAGE = ('vm-a', 'vm-b', 'vm-c', 'vm-d')
    HYPERVISORS = ('hv-1',)
    #: a stopped node must fail a request quickly, not after 240 s
    CONFIG = {'blackstor_node_timeout': 60.0,
              'blackstor_ssh_connect_timeout': 10.0}

    @classmethod
    def tearDownClass(cls):
        # vm-d costs CPU the next classes do not need
        for name in base.STANDBY:
            if cls.vms is not None and cls.vms.running(name):
                cls.vms.power_cut(name)
        super().tearDownClass()

    # -- helpers ------------------------------------------------------------

    def write_chunk(self, expected: checks.Expected, node: str, device: str,
                    index: int) -> None:
        data = os.urandom(CHUNK)
        checks.write(self.vms, node, device, index * CHUNK, data)
        expected.write(index * CHUNK, data)

    def connections(self, node: str, name: str) -> dict[str, str]:
        """peer -> connection state of ``name`` on ``node``."""
        state = checks.status(self.vms, node, name)
        return {c.get('name'): c.get('connection-state')
                for c in (state or {}).get('connections') or []}

    def wait_cut_off(self, node: str, name: str, peer: str) -> dict:
        """``node``'s state of ``name`` once it lost ``peer``."""
        return checks.wait(
            f'{node} noticing {peer} is gone',
            lambda: (self.connections(node, name).get(peer) != 'Connected'
                     and checks.status(self.vms, node, name)), timeout=120)

    def quorum(self, node: str, name: str) -> bool:
        state = checks.status(self.vms, node, name)
        return bool(((state or {}).get('devices') or [{}])[0].get('quorum'))

    def rejoin(self, name: str, node: str) -> dict[str, str]:
        """Repair the .res of a booted replica; its connections then."""
        reconcile.reconcile(self.ctl, [name])
        hosts = [h.name for h in self.spec(name).hosts if h.name != node]
        return checks.wait(
            f'{node} connected to every host of {name}',
            lambda: (lambda c: all(c.get(h) == 'Connected' for h in hosts)
                     and c)(self.connections(node, name)), timeout=180)

    def delete_and_check_clean(self, *names: str) -> None:
        for name in names:
            self.ctl.delete_volume(name)
            self.assertEqual(dict.fromkeys(self.STORAGE, []),
                             self.leftovers(name))

    # -- the tiebreaker -----------------------------------------------------

    def test_1_tiebreaker_keeps_quorum(self):
        name = 'volume-tie'
        self.ctl.create_volume(name, SIZE, 2)
        self.addCleanup(self.ctl.delete_volume, name)
        spec = self.spec(name)
        r1, r2 = self.replicas(name)
        self.assertIsNotNone(spec.tiebreaker_host,
                             f'{name}: no tiebreaker: {spec.hosts}')
        tie = spec.tiebreaker_host.name
        self.assertNotIn(tie, (r1, r2))
        expected = checks.Expected(SIZE)

        # a client comes and goes: every host forgets it
        device = self.ctl.attach(name, 'hv-1')
        self.write_chunk(expected, 'hv-1', device, 0)
        self.ctl.detach(name, 'hv-1')
        for node in (r1, r2, tie):
            self.assertNotIn('hv-1', self.connections(node, name), node)

        # one replica down, no client: the other keeps quorum with the
        # tiebreaker's vote
        self.power_cut(r2)
        state = self.wait_cut_off(r1, name, r2)
        self.assertTrue(self.quorum(r1, name),
                        f'{r1} lost quorum with {r2} down and the '
                        f'tiebreaker {tie} up: {checks.brief(state)}')

        # attached while that replica is down: writes are accepted
        device = self.ctl.attach(name, 'hv-1')
        self.write_chunk(expected, 'hv-1', device, 3)
        self.boot(r2)
        # r2 booted with the .res it had before the attach; the repair of
        # divergent .res (the stats task's) gives it the client
        self.assertIn('hv-1', self.rejoin(name, r2))
        checks.in_sync_states(self.vms, name, [r1, r2], timeout=300)

        # the other replica cut under the attached client: writes go on
        self.power_cut(r1)
        self.wait_cut_off(r2, name, r1)
        self.write_chunk(expected, 'hv-1', device, 6)
        self.assertTrue(self.quorum(r2, name))
        self.boot(r1)
        self.rejoin(name, r1)
        checks.in_sync_states(self.vms, name, [r1, r2], timeout=300)
        self.check_data(name, expected, clients={'hv-1': device})

        self.ctl.detach(name, 'hv-1')
        self.delete_and_check_clean(name)

    # -- node loss and heal -------------------------------------------------

    def test_2_node_lost_heals(self):
        three, two = 'volume-heal3', 'volume-heal2'
        self.ctl.create_volume(three, SIZE, 3)
        self.addCleanup(self.ctl.delete_volume, three)
        self.ctl.create_volume(two, SIZE, 2)
        self.addCleanup(self.ctl.delete_volume, two)
        expected = {three: checks.Expected(SIZE), two: checks.Expected(SIZE)}
        device = self.ctl.attach(three, 'hv-1')
        self.write_chunk(expected[three], 'hv-1', device, 0)
        self.write_chunk(expected[three], 'hv-1', device, 7)
        before = {n: set(self.replicas(n)) for n in (three, two)}
        # 3 of 4 and 2 of 4 nodes: at least one holds a replica of both
        lost = sorted(before[three] & before[two])[0]

        self.power_cut(lost)
        report = heal.node_lost(self.ctl, lost, parallel=2,
                                sync_timeout=600)
        self.assertTrue(report.ok, report)
        self.assertEqual({three, two}, set(report.moved), report)
        for name, replicas in before.items():
            spec = self.spec(name)
            now = {h.name for h in spec.diskful_hosts}
            self.assertEqual(len(replicas), len(now), f'{name}: {now}')
            self.assertNotIn(lost, {h.name for h in spec.hosts}, name)
            self.assertEqual(replicas - {lost}, now & replicas, name)
        tie = self.spec(two).tiebreaker_host
        self.assertIsNotNone(tie, f'{two} lost its tiebreaker')
        self.assertNotIn(tie.name, set(self.replicas(two)) | {lost})
        # the client was given the new replica: what it writes reaches it
        self.write_chunk(expected[three], 'hv-1', device, 3)

        # the lost node returns with its old replicas: they stay cut off
        self.boot(lost)
        for name in (three, two):
            for node in self.replicas(name):
                self.assertNotEqual(
                    'Connected', self.connections(node, name).get(lost),
                    f'{name}: {node} reconnected to the healed-away {lost}')
        outcomes = reconcile.reconcile(self.ctl, [three, two])
        for name in (three, two):
            self.assertIn('removed', outcomes[name], outcomes)
        self.assertEqual({lost: []}, {lost: sorted(
            self.leftovers(three, [lost])[lost]
            + self.leftovers(two, [lost])[lost])})
        self.check_all(expected, clients={three: {'hv-1': device}})

        self.ctl.detach(three, 'hv-1')
        self.delete_and_check_clean(three, two)
