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
"""resize: growing the LV and DRBD, and zeroing the old metadata area."""

import dataclasses
import errno
import os
import pathlib
from unittest import mock

import ddt
import fixtures

from blackstor_cinder.node import agent
from blackstor_cinder.node import sizing
from blackstor_cinder.node import zeroing
from blackstor_cinder import protocol
from tests.unit.node import fakes
from tests.unit.node import samples
from tests.unit.node import test_agent

GiB = fakes.GiB
MiB = fakes.MiB
EXTENT = 4 * MiB


@ddt.ddt
class ResizeTestCase(test_agent.ReplicaTestCase):

    def test_resize(self):
        size = 2 * GiB
        need = sizing.lv_size_for(size, protocol.MAX_PEERS_MAX, EXTENT)
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=size)
        self.assertEqual([['lvextend', '--size', f'{need}b', 'vg0/r0']],
                         self.changes())
        self.assertEqual({'resource': 'r0', 'lv_size': need,
                          'lv_size_before': result['lv_size_before'],
                          'lv_size_base': result['lv_size_before'],
                          'lv_grown': True, 'drbd_resized': False,
                          'res_changed': False, 'zeroed': None,
                          'resynced': False, 'zero_pending': None}, result)
        self.assertLess(result['lv_size_before'], need)
        self.fake.calls.clear()
        self.ok('resize', resource='r0', pool='vg0/thin', size=size,
                lv=False, drbd=True, assume_clean=True)
        self.assertEqual([['drbdadm', '--', '--assume-clean', 'resize',
                           'r0/0']], self.changes())
        self.fake.calls.clear()
        self.ok('resize', resource='r0', pool='vg0/thin', size=size,
                drbd=True)
        self.assertEqual([['drbdadm', 'resize', 'r0/0']], self.changes())

    def device_agent(self, with_device=True, device_size=MiB):
        """An agent whose device_root holds r0's device as a file.

        DRBD reports the device at ``device_size`` until it is resized
        (then at its .res's size); the file holds 4 MiB of 0xff.
        """
        root = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        running = self.agent.drbd.state('r0')
        minor = running['devices'][0]['minor']
        self.fake.running['r0']['devices'][0]['size'] = device_size // 1024
        device = root / f'drbd{minor}'
        if with_device:
            device.write_bytes(b'\xff' * (4 * MiB))
        self.agent = agent.Agent(
            dataclasses.replace(self.conf, device_root=str(root)),
            execute=self.fake)
        return device

    def test_grow_zeroes_the_old_metadata_through_the_device(self):
        device = self.device_agent()
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=2 * GiB, lv=False, drbd=True,
                         assume_clean=True, zero_from=1 * MiB,
                         zero_to=3 * MiB)
        self.assertEqual([['drbdadm', '--', '--assume-clean', 'resize',
                           'r0/0']], self.changes())
        self.assertEqual([MiB, 3 * MiB], result['zeroed'])
        self.assertFalse(result['resynced'])
        self.assertIsNone(result['zero_pending'])
        self.assertFalse(self.mark_path().exists())
        data = device.read_bytes()
        self.assertEqual(b'\xff' * MiB, data[:MiB])
        self.assertEqual(bytes(2 * MiB), data[MiB:3 * MiB])
        self.assertEqual(b'\xff' * MiB, data[3 * MiB:])

    def test_grow_zeroing_stops_at_the_device_end(self):
        device = self.device_agent(device_size=3 * MiB)
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=2 * GiB, lv=False, drbd=True,
                         assume_clean=True, zero_from=3 * MiB,
                         zero_to=9 * MiB)
        self.assertEqual([3 * MiB, 4 * MiB], result['zeroed'])
        self.assertEqual(4 * MiB, len(device.read_bytes()))

    def test_grow_with_zeroing_refused_while_io_is_suspended(self):
        # The zeroing writes through the device, which waits while I/O is
        # suspended: the agent hung holding the lock (found by fuzzing).
        device = self.device_agent()
        self.ok('suspend-io', resource='r0')
        lv_before = dict(self.fake.lvs[('vg0', 'r0')])
        err, before = self.error(
            'resize', protocol.E_CONFLICT, 'resource', resource='r0',
            pool='vg0/thin', size=2 * GiB, drbd=True, assume_clean=True,
            zero_from=MiB, zero_to=3 * MiB)
        self.assertIn('suspended', err['message'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual(lv_before, self.fake.lvs[('vg0', 'r0')])
        self.assertEqual(b'\xff' * (4 * MiB), device.read_bytes())
        self.ok('resume-io', resource='r0')
        self.ok('resize', resource='r0', pool='vg0/thin', size=2 * GiB,
                drbd=True, assume_clean=True, zero_from=MiB,
                zero_to=3 * MiB)

    def test_grow_resyncs_when_the_device_cannot_be_opened(self):
        self.device_agent(with_device=False)
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=2 * GiB, lv=False, drbd=True,
                         assume_clean=True, zero_from=MiB, zero_to=3 * MiB)
        self.assertEqual([['drbdadm', 'resize', 'r0/0']], self.changes())
        self.assertTrue(result['resynced'])
        self.assertIsNone(result['zeroed'])
        self.assertFalse(self.mark_path().exists())

    def test_grow_records_the_old_lv_size_before_growing(self):
        before = self.agent.lvm.find(self.agent.lvm.pool('vg0/thin'),
                                     'r0').size
        self.fake.fail('lvextend')
        self.error('resize', protocol.E_FAILED, resource='r0',
                   pool='vg0/thin', size=2 * GiB)
        # recorded before the lvextend, kept although it failed
        mark = zeroing.GrowMarks(self.conf.lock_dir).read('r0')
        self.assertEqual(before, mark.lv_size)
        self.assertIsNone(mark.zero)

    def test_retry_after_a_half_done_grow_reports_the_first_lv_size(self):
        first = self.ok('resize', resource='r0', pool='vg0/thin',
                        size=2 * GiB)
        self.assertTrue(first['lv_grown'])
        # The node restarts (a new agent) and the extend is retried: the
        # LV is grown already; the old metadata ended at the old LV end.
        self.agent = agent.Agent(self.conf, execute=self.fake)
        again = self.ok('resize', resource='r0', pool='vg0/thin',
                        size=2 * GiB)
        self.assertFalse(again['lv_grown'])
        self.assertEqual(first['lv_size'], again['lv_size_before'])
        self.assertEqual(first['lv_size_before'], again['lv_size_base'])
        self.assertLess(again['lv_size_base'], again['lv_size'])

    def test_the_mark_is_stale_once_drbd_was_resized(self):
        first = self.ok('resize', resource='r0', pool='vg0/thin',
                        size=2 * GiB)
        self.fake.running['r0']['devices'][0]['size'] = 2 * GiB // 1024
        again = self.ok('resize', resource='r0', pool='vg0/thin',
                        size=2 * GiB)
        self.assertEqual(first['lv_size'], again['lv_size_base'])
        self.assertFalse(self.mark_path().exists())

    def test_a_range_the_device_exposes_already_is_not_zeroed(self):
        device = self.device_agent(device_size=2 * MiB)
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=2 * GiB, lv=False, drbd=True,
                         assume_clean=True, zero_from=MiB, zero_to=3 * MiB)
        self.assertIsNone(result['zeroed'])
        self.assertEqual(b'\xff' * (4 * MiB), device.read_bytes())
        self.assertEqual([['drbdadm', '--', '--assume-clean', 'resize',
                           'r0/0']], self.changes())

    def fail_zeroing(self):
        """The next zeroing fails with EIO half-way (a lost peer)."""
        def half(fd, start, end, **kwargs):
            os.pwrite(fd, bytes(MiB), start)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return mock.patch.object(zeroing, 'zero_range',
                                 side_effect=half)

    def test_a_failed_zeroing_stays_pending_and_the_next_resize_ends_it(
            self):
        device = self.device_agent()
        req = self.resize_req(zero_from=MiB, zero_to=3 * MiB)
        with self.fail_zeroing():
            err, _ = self.error('resize', protocol.E_FAILED, **req)
        self.assertIn('stays pending', err['message'])
        # DRBD has the new size: the new .res stays (no shrink back)
        self.assertIn('size 2097152k;', (self.res_dir / 'r0.res').read_text())
        self.assertEqual([MiB, 3 * MiB],
                         self.ok('status', resource='r0')['zero_pending'])
        self.assertEqual([MiB, 3 * MiB], self.ok('inventory')['resources'][
            'r0']['zero_pending'])
        self.assertEqual(b'\xff' * MiB, device.read_bytes()[2 * MiB:3 * MiB])
        self.fake.calls.clear()
        # the finishing request: no .res, no range of its own
        result = self.ok('resize', resource='r0', pool='vg0/thin',
                         size=2 * GiB, lv=False, drbd=True,
                         assume_clean=True, zero_from=MiB)
        self.assertEqual([MiB, 3 * MiB], result['zeroed'])
        self.assertIsNone(result['zero_pending'])
        # the device had its size already: no drbdadm resize
        self.assertEqual([], self.changes())
        self.assertEqual(bytes(2 * MiB), device.read_bytes()[MiB:3 * MiB])
        self.assertIsNone(self.ok('status', resource='r0')['zero_pending'])
        self.assertFalse(self.mark_path().exists())

    def test_a_pending_zeroing_is_ended_by_the_retried_grow(self):
        device = self.device_agent()
        req = self.resize_req(zero_from=MiB, zero_to=3 * MiB)
        with self.fail_zeroing():
            self.error('resize', protocol.E_FAILED, **req)
        # the retry asks from the old size; the device exposes it already
        result = self.ok('resize', **req)
        self.assertEqual([MiB, 3 * MiB], result['zeroed'])
        self.assertEqual(bytes(2 * MiB), device.read_bytes()[MiB:3 * MiB])
        self.assertFalse(self.mark_path().exists())

    def test_a_pending_zeroing_below_the_volume_size_is_refused(self):
        device = self.device_agent(device_size=4 * MiB)
        self.pending()
        err, before = self.error('resize', protocol.E_CONFLICT, 'zero_from',
                                 resource='r0', pool='vg0/thin',
                                 size=2 * GiB, lv=False, drbd=True,
                                 assume_clean=True, zero_from=2 * MiB)
        self.assertIn('may hold data', err['message'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], self.changes())
        self.assertEqual(b'\xff' * (4 * MiB), device.read_bytes())
        self.assertTrue(self.mark_path().exists())

    def test_a_pending_zeroing_needs_the_volume_size(self):
        self.device_agent(device_size=4 * MiB)
        self.pending()
        self.error('resize', protocol.E_INVALID, 'zero_from', resource='r0',
                   pool='vg0/thin', size=2 * GiB, lv=False, drbd=True)
        self.assertEqual([], self.changes())

    def test_a_pending_zeroing_waits_while_the_device_is_held(self):
        self.device_agent(with_device=False, device_size=4 * MiB)
        self.pending()
        self.error('resize', protocol.E_BUSY, 'resource', resource='r0',
                   pool='vg0/thin', size=2 * GiB, lv=False, drbd=True,
                   assume_clean=True, zero_from=MiB)
        self.assertEqual([], self.changes())
        self.assertTrue(self.mark_path().exists())

    def test_resize_with_the_new_res(self):
        self.ok('resize', resource='r0', pool='vg0/thin', size=2 * GiB)
        self.fake.calls.clear()
        result = self.ok('resize', **self.resize_req())
        # the .res first (drbdadm resize reads the size from it)
        self.assertEqual([['drbdadm', '--', '--assume-clean', 'resize',
                           'r0/0']], self.changes())
        written = [i for i, c in enumerate(self.fake.calls)
                   if 'sh-ll-dev' in c]
        resized = [i for i, c in enumerate(self.fake.calls)
                   if 'resize' in c]
        self.assertLess(max(written), min(resized))
        text = (self.res_dir / 'r0.res').read_text()
        self.assertIn('size 2097152k;', text)
        self.assertIn(samples.SECRET, text)
        self.assertTrue(result['res_changed'])
        self.assertTrue(result['drbd_resized'])
        self.fake.calls.clear()
        again = self.ok('resize', **self.resize_req())
        self.assertFalse(again['res_changed'])

    def test_resize_failure_restores_the_res(self):
        old = (self.res_dir / 'r0.res').read_text()
        self.fake.fail('drbdadm', 'resize')
        self.error('resize', protocol.E_FAILED, **self.resize_req())
        self.assertEqual(old, (self.res_dir / 'r0.res').read_text())

    @ddt.data(({'drbd': False}, 'spec'),
              ({'secret': None}, 'secret'),
              ({'spec': samples.spec(hosts=[
                  ('nodea', 0, '10.0.0.1', None),
                  ('nodeb', 1, '10.0.0.2', 'vg0')])}, 'spec.hosts[0]'),
              ({'spec': samples.spec(hosts=[
                  ('nodea', 0, '10.0.0.1', 'vg1')])}, 'spec.hosts[0]'))
    @ddt.unpack
    def test_resize_bad_res_changes_nothing(self, changes, field):
        req = self.resize_req(lv=True, size=5 * GiB, **changes)
        if req['secret'] is None:
            del req['secret']
        _, before = self.error('resize', protocol.E_INVALID, field, **req)
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], self.changes())

    def test_resize_down_refused(self):
        self.fake.running.clear()
        _, before = self.error('resize', protocol.E_CONFLICT, 'resource',
                               resource='r0', pool='vg0/thin', size=5 * GiB)
        self.assertEqual(before, self.fake.snapshot())

    def test_resize_missing(self):
        self.error('resize', protocol.E_NOT_FOUND, 'resource',
                   resource='r9', pool='vg0/thin', size=GiB)

    def test_no_shrink_on_adjust(self):
        # The device runs with 2 GiB; a .res saying 1 GiB must not land.
        self.ok('resize', resource='r0', pool='vg0/thin', size=2 * GiB)
        self.ok('resize', **self.resize_req())
        old = (self.res_dir / 'r0.res').read_text()
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = samples.spec(size=GiB)
        err, before = self.error('adjust', protocol.E_CONFLICT, 'size',
                                 **req)
        self.assertIn(str(GiB), err['message'])
        self.assertIn(str(2 * GiB), err['message'])
        self.assertEqual({'size': GiB, 'device_size': 2 * GiB},
                         err['details'])
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual(old, (self.res_dir / 'r0.res').read_text())
        # The same size, or a larger one, is fine.
        req['spec'] = samples.spec(size=2 * GiB)
        self.ok('adjust', **req)

    def test_no_shrink_on_create_and_resize(self):
        self.ok('resize', **self.resize_req())
        req = self.create_req()
        req['spec'] = samples.spec(size=GiB)
        err, _ = self.error('create', protocol.E_CONFLICT, 'size', **req)
        self.assertIn('never shrinks', err['message'])
        self.fake.calls.clear()
        self.error('resize', protocol.E_CONFLICT, 'size',
                   **self.resize_req(size=GiB, spec_size=2 * GiB - 1024))
        self.assertEqual([], self.changes())

    def test_no_shrink_check_needs_a_running_device(self):
        self.ok('resize', **self.resize_req())
        self.fake.running.clear()
        req = self.create_req()
        del req['pool'], req['size']
        req['spec'] = samples.spec(size=GiB)
        self.ok('adjust', **req)
