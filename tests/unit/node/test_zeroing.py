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
"""Zeroing a range of a device (BLKZEROOUT or writes), and the grow marks."""

import errno
import os
import pathlib
import struct
from unittest import mock

import ddt
import fixtures

from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import zeroing
from blackstor_cinder import protocol
from tests.unit import base

MiB = 1 << 20
#: the real pwrite, for the fake ioctl (the tests count the agent's)
_PWRITE = os.pwrite


class FakeZeroout:
    """BLKZEROOUT on a regular file: records the calls, writes zeros."""

    def __init__(self, error: int | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.error = error

    def __call__(self, fd, request, arg):
        if request != zeroing.BLKZEROOUT:
            raise AssertionError(f'unexpected ioctl {request:#x}')
        start, length = struct.unpack('QQ', arg)
        if start % 512 or length % 512:
            raise OSError(errno.EINVAL, 'not aligned')
        if self.error is not None:
            raise OSError(self.error, os.strerror(self.error))
        self.calls.append((start, length))
        _PWRITE(fd, bytes(length), start)
        return 0


@ddt.ddt
class ZeroRangeTest(base.TestCase):

    def setUp(self):
        super().setUp()
        base = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.path = base / 'device'
        self.path.write_bytes(b'\xff' * (8 * MiB))
        self.fd = os.open(self.path, os.O_RDWR)
        self.addCleanup(os.close, self.fd)
        self.pwrite = mock.patch.object(zeroing.os, 'pwrite',
                                        side_effect=os.pwrite).start()
        self.fsync = mock.patch.object(zeroing.os, 'fsync',
                                       side_effect=os.fsync).start()
        self.addCleanup(mock.patch.stopall)

    def assert_zeroed(self, start, end):
        data = self.path.read_bytes()
        self.assertEqual(b'\xff' * start, data[:start])
        self.assertEqual(bytes(end - start), data[start:end])
        self.assertEqual(b'\xff' * (len(data) - end), data[end:])

    def test_an_aligned_range_goes_through_blkzeroout_only(self):
        ioctl = FakeZeroout()
        how = zeroing.zero_range(self.fd, MiB, 5 * MiB, ioctl=ioctl)
        self.assertEqual('zeroout', how)
        self.assertEqual([(MiB, 4 * MiB)], ioctl.calls)
        self.pwrite.assert_not_called()
        self.fsync.assert_called_once_with(self.fd)
        self.assert_zeroed(MiB, 5 * MiB)

    def test_a_long_range_is_asked_in_chunks(self):
        ioctl = FakeZeroout()
        with mock.patch.object(zeroing, 'ZEROOUT_CHUNK', 3 * MiB):
            zeroing.zero_range(self.fd, 0, 7 * MiB, ioctl=ioctl)
        self.assertEqual([(0, 3 * MiB), (3 * MiB, 3 * MiB),
                          (6 * MiB, MiB)], ioctl.calls)
        self.assert_zeroed(0, 7 * MiB)

    def test_unaligned_edges_are_written(self):
        ioctl = FakeZeroout()
        start, end = MiB + 100, 2 * MiB + 700
        how = zeroing.zero_range(self.fd, start, end, ioctl=ioctl)
        self.assertEqual('zeroout', how)
        self.assertEqual([(MiB + 512, MiB)], ioctl.calls)
        self.assertEqual([412, 188],
                         [len(c.args[1]) for c in self.pwrite.call_args_list])
        self.assert_zeroed(start, end)

    def test_a_range_within_one_sector_is_written(self):
        ioctl = FakeZeroout()
        how = zeroing.zero_range(self.fd, 10, 20, ioctl=ioctl)
        self.assertEqual('write', how)
        self.assertEqual([], ioctl.calls)
        self.assert_zeroed(10, 20)

    @ddt.data(errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL)
    def test_falls_back_to_writing_zeros(self, error):
        ioctl = FakeZeroout(error)
        how = zeroing.zero_range(self.fd, MiB, 3 * MiB, ioctl=ioctl,
                                 chunk=MiB // 2)
        self.assertEqual('write', how)
        self.assertEqual(4, self.pwrite.call_count)
        self.fsync.assert_called_once_with(self.fd)
        self.assert_zeroed(MiB, 3 * MiB)

    def test_a_regular_file_takes_the_fallback_for_real(self):
        # fcntl.ioctl itself: a file is not a block device (ENOTTY)
        how = zeroing.zero_range(self.fd, MiB, 2 * MiB)
        self.assertEqual('write', how)
        self.assert_zeroed(MiB, 2 * MiB)

    def test_fallback_after_some_chunks_went_through(self):
        ioctl = FakeZeroout()
        real = ioctl.__call__

        def second_refused(fd, request, arg):
            if ioctl.calls:
                raise OSError(errno.EOPNOTSUPP, 'no')
            return real(fd, request, arg)
        with mock.patch.object(zeroing, 'ZEROOUT_CHUNK', MiB):
            zeroing.zero_range(self.fd, 0, 3 * MiB, ioctl=second_refused)
        self.assertEqual([(0, MiB)], ioctl.calls)
        self.assert_zeroed(0, 3 * MiB)

    def test_an_io_error_is_raised_and_not_flushed_as_done(self):
        ioctl = FakeZeroout(errno.EIO)
        e = self.assertRaises(OSError, zeroing.zero_range, self.fd, 0, MiB,
                              ioctl=ioctl)
        self.assertEqual(errno.EIO, e.errno)
        self.pwrite.assert_not_called()
        self.fsync.assert_not_called()

    def test_an_empty_range_touches_nothing(self):
        ioctl = FakeZeroout()
        self.assertEqual('none', zeroing.zero_range(self.fd, MiB, MiB,
                                                    ioctl=ioctl))
        self.fsync.assert_not_called()


class GrowMarksTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.marks = zeroing.GrowMarks(str(self.dir / 'state'))

    def test_round_trip(self):
        self.assertIsNone(self.marks.read('r0'))
        self.assertIsNone(self.marks.pending('r0'))
        self.marks.write('r0', zeroing.GrowMark(5 * MiB, 4 * MiB))
        self.assertEqual(zeroing.GrowMark(5 * MiB, 4 * MiB),
                         self.marks.read('r0'))
        self.assertIsNone(self.marks.pending('r0'))
        self.marks.write('r0', zeroing.GrowMark(5 * MiB, 4 * MiB,
                                                (4 * MiB, 5 * MiB)))
        self.assertEqual([4 * MiB, 5 * MiB], self.marks.pending('r0'))
        self.assertEqual(['r0.grow'], os.listdir(self.dir / 'state'))
        self.assertTrue(self.marks.remove('r0'))
        self.assertFalse(self.marks.remove('r0'))
        self.assertIsNone(self.marks.read('r0'))

    def test_a_damaged_mark_is_an_error_not_nothing(self):
        self.marks.write('r0', zeroing.GrowMark(1, 1))
        for text in ('{', '{"lv_size": -1}', '{"lv_size": 1, "zero": [1]}',
                     '[]'):
            self.marks.path('r0').write_text(text)
            e = self.assertRaises(AgentError, self.marks.read, 'r0')
            self.assertEqual(protocol.E_FAILED, e.code)
            self.assertIn('pending', e.message)

    def test_names_are_checked(self):
        self.assertRaises(protocol.ProtocolError, self.marks.path, '../x')

    def test_stale(self):
        mark = zeroing.GrowMark(5 * MiB, 4 * MiB)
        self.assertFalse(mark.stale(4 * MiB))
        self.assertFalse(mark.stale(None))
        self.assertTrue(mark.stale(8 * MiB))
        # a pending zeroing is never stale
        self.assertFalse(zeroing.GrowMark(
            5 * MiB, 4 * MiB, (4 * MiB, 5 * MiB)).stale(8 * MiB))
