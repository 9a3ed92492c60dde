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
"""Attach on a storage node that is also a hypervisor (hyperconverged).

The box's storage nodes run the full agent (connector included), so any of
them can be an attach target. The stand-in refuses a second Primary over a
connection whose net options lack ``allow-two-primaries`` (on open, as
auto-promote does; see tests/standin/README.md), so the live-migration
steps below fail unless the controller set the option where DRBD needs it.
"""

from __future__ import annotations

import errno
import os
import time

from tests.functional import test_flows

MiB = 1 << 20
STORAGE = test_flows.STORAGE
OPTION = 'allow-two-primaries yes;'


class TestHyperconverged(test_flows.BoxTestCase):
    """3 storage nodes, one of them hosting the guest, and a hypervisor."""

    box_args = {'transport': 'local', 'hypervisors': ('hv-1',)}

    def wait_role(self, node: str, res: str, role: str,
                  timeout: float = 10.0) -> None:
        """Wait for a role the stand-in reaches asynchronously.

        FUSE delivers the last close (RELEASE) after close() returns, so
        the stand-in's auto-demote lags a little; DRBD's own demote on
        release is done when close() returns.
        """
        deadline = time.monotonic() + timeout
        while self.state(node, res)['role'] != role:
            if time.monotonic() > deadline:
                self.fail(f'{res} on {node} is not {role} after '
                          f'{timeout:g}s')
            time.sleep(0.1)

    def test_migrate_between_replica_and_client(self):
        vol = self.name('hyper-migrate')
        self.ctl.create_volume(vol, 64 * MiB, replicas=3)

        path = self.ctl.attach(vol, 'stor-a')
        # The path is the one stor-a's agent reported (its device root),
        # not a literal the controller made up.
        self.assertEqual(self.standin.device_path('stor-a', vol), path)
        self.assertEqual(sorted(STORAGE), sorted(
            h['name'] for h in self.definition('stor-a', vol)['hosts']))
        for node in STORAGE:
            self.assertNotIn(OPTION, self.res_text(node, vol))
        fd_a = self.open_device(path)
        first = test_flows.random_chunks((0, MiB), (40 * MiB + 512, 8192))
        self.write_chunks(fd_a, first)
        self.assert_lv_data(vol, STORAGE, first)
        self.assertEqual('Primary', self.state('stor-a', vol)['role'])
        self.ran('attach on a replica: agent path, data on every replica')

        # Live migration to hv-1 while the guest on stor-a has it open.
        client = self.ctl.attach(vol, 'hv-1')
        for node in STORAGE + ('hv-1',):
            self.assertIn(OPTION, self.res_text(node, vol), node)
        fd_h = self.open_device(client)
        self.assertEqual('Primary', self.state('hv-1', vol)['role'])
        self.assertEqual('Primary', self.state('stor-a', vol)['role'])
        self.assert_device_data(fd_h, first)
        second = test_flows.random_chunks((8 * MiB, 64 * 1024))
        self.write_chunks(fd_h, second)
        self.assert_device_data(fd_a, second)
        self.assert_lv_data(vol, STORAGE, second)
        self.ran('second host while the replica is Primary: two primaries')

        # The guest left stor-a: detach there clears the option and
        # leaves the replica as it was.
        self.close_device(fd_a)
        self.wait_role('stor-a', vol, 'Secondary')
        self.ctl.detach(vol, 'stor-a')
        for node in STORAGE + ('hv-1',):
            self.assertNotIn('allow-two-primaries', self.res_text(node, vol),
                             node)
        self.assertIn(vol, self.lvs('stor-a'))
        me = {h['name']: h for h in self.definition('stor-a', vol)['hosts']}
        self.assertTrue(me['stor-a']['disk'])
        self.assertIn('hv-1', me)
        state = self.state('stor-a', vol)
        self.assertEqual('UpToDate', state['devices'][0]['disk-state'])
        self.assert_lv_data(vol, STORAGE, first)
        # One primary only again: the stand-in refuses a second one.
        with self.assertRaises(OSError) as ctx:
            os.open(self.standin.device_path('stor-a', vol), os.O_RDWR)
        self.assertEqual(errno.EROFS, ctx.exception.errno)
        self.ran('detach on the replica: option cleared, replica kept')

        self.close_device(fd_h)
        self.ctl.detach(vol, 'hv-1')
        self.assertEqual(sorted(STORAGE), sorted(
            h['name'] for h in self.definition('stor-b', vol)['hosts']))
        self.ctl.delete_volume(vol)
        self.assert_clean()
        self.ran('detach the client, delete')
