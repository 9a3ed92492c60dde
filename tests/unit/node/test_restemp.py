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
"""The .res writes' temporary files, and those a killed writer left."""

import fcntl
import logging
import os
import pathlib
import stat
import time
from unittest import mock

import fixtures

from blackstor_cinder.node import errors
from blackstor_cinder.node import resfiles
from blackstor_cinder.node import restemp
from tests.unit.node import test_resfiles


class StaleTempFilesTestCase(test_resfiles.StoreTestCase):
    """Temporary files a killed writer left behind (they hold a secret)."""

    OURS = ('.r0.0123456789abcdef.tmp',     # this version
            '.r1.ab_c1234.tmp',             # mkstemp, older agents
            '.r-2_x.res.restore.tmp')       # restore, older agents
    NOT_OURS = ('r0.res', '.r0.res', 'x.tmp', '.r0.tmp', '.r2.abc.tmp',
                '.r0.0123456789ABCDEF.tmp', '.r0.0123456789abcdef.tmp~',
                '.r0.0123456789abcdef.tmp.bak', '..0123456789abcdef.tmp',
                '.-r0.0123456789abcdef.tmp', '.r 0.0123456789abcdef.tmp',
                '.r0.0123456789abcdef0.tmp', '.r0.abc_12345.tmp',
                '.r0.restore.tmp', 'r0.0123456789abcdef.tmp',
                '.r0.x.0123456789abcdef.tmp', '.swp.tmp')

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        self.old = time.time() - restemp.STALE_AGE - 5

    def make(self, name, age=None, content='secret'):
        path = self.res_dir / name
        path.write_text(content)
        os.chmod(path, 0o600)
        mtime = self.old if age is None else time.time() - age
        os.utime(path, (mtime, mtime))
        return str(path)

    def test_write_temp_name_is_ours(self):
        with self.store._lock():
            tmp = restemp.write(self.res_dir, 'r0', 'text')
        self.assertRegex(os.path.basename(tmp),
                         r'^\.r0\.[0-9a-f]{16}\.tmp$')
        self.assertEqual(str(self.res_dir), os.path.dirname(tmp))
        self.assertEqual(0o600, stat.S_IMODE(os.stat(tmp).st_mode))
        self.assertEqual('text', pathlib.Path(tmp).read_text())
        self.assertEqual([tmp], self.store.stale_temp_files())
        os.utime(tmp, (self.old, self.old))
        self.assertEqual([tmp], self.store.remove_stale_temp_files())

    def test_write_temp_never_reuses_a_name(self):
        taken = self.make('.r0.0000000000000000.tmp', content='old')
        with mock.patch('secrets.token_hex',
                        side_effect=['0' * 16, '1' * 16]):
            with self.store._lock():
                tmp = restemp.write(self.res_dir, 'r0', 'new')
        self.assertEqual('old', pathlib.Path(taken).read_text())
        self.assertTrue(tmp.endswith('.r0.1111111111111111.tmp'))

    def test_removes_only_old_files_with_our_names(self):
        ours = [self.make(name) for name in self.OURS]
        for name in self.NOT_OURS:
            self.make(name)
        fresh = self.make('.r3.fedcba9876543210.tmp', age=10)
        self.assertEqual(sorted(ours), self.store.remove_stale_temp_files())
        self.assertEqual(sorted([*self.NOT_OURS,
                                 os.path.basename(fresh)]), self._files())
        for path in ours:
            self.assertIn(f'Removed {path}', self.log.output)
        self.assertEqual([], self.store.remove_stale_temp_files())
        self.assertEqual([fresh], self.store.stale_temp_files())
        self.assertEqual([fresh],
                         self.store.remove_stale_temp_files(min_age=5))

    def test_symlinks_and_directories_left_alone(self):
        outside = self.useFixture(fixtures.TempDir()).path
        target = os.path.join(outside, '.r0.0123456789abcdef.tmp')
        pathlib.Path(target).write_text('not ours')
        link = self.res_dir / '.r0.0123456789abcdef.tmp'
        os.symlink(target, link)
        dir_link = self.res_dir / '.r1.0123456789abcdef.tmp'
        os.symlink(outside, dir_link)
        subdir = self.res_dir / '.r2.0123456789abcdef.tmp'
        subdir.mkdir()
        (subdir / 'x').write_text('x')
        for path in (target, outside, subdir):
            os.utime(path, (self.old, self.old))
        for path in (link, dir_link):
            os.utime(path, (self.old, self.old), follow_symlinks=False)
        self.assertEqual([], self.store.stale_temp_files())
        self.assertEqual([], self.store.remove_stale_temp_files())
        self.assertTrue(os.path.islink(link))
        self.assertTrue(os.path.islink(dir_link))
        self.assertEqual('not ours', pathlib.Path(target).read_text())
        self.assertTrue((subdir / 'x').exists())

    def test_nothing_while_a_write_holds_the_lock(self):
        stale = self.make(self.OURS[0])
        fd = os.open(self.res_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.assertEqual([], self.store.remove_stale_temp_files())
            self.assertTrue(os.path.exists(stale))
        finally:
            os.close(fd)
        self.assertEqual([stale], self.store.remove_stale_temp_files())

    def test_missing_directory(self):
        store = resfiles.ResFileStore('/nonexistent/x', str(self.conf), 'a')
        self.assertEqual([], store.remove_stale_temp_files())
        self.assertEqual([], store.stale_temp_files())

    def test_file_that_cannot_be_removed_is_skipped(self):
        first, second = sorted(self.make(name) for name in self.OURS[:2])
        real = os.unlink

        def unlink(name, *args, **kwargs):
            if name == os.path.basename(first):
                raise PermissionError(13, 'Permission denied')
            return real(name, *args, **kwargs)
        with mock.patch.object(os, 'unlink', side_effect=unlink):
            self.assertEqual([second], self.store.remove_stale_temp_files())
        self.assertTrue(os.path.exists(first))
        self.assertIn(f'Cannot remove the stale temporary file {first}',
                      self.log.output)

    def test_restore(self):
        path = self.res_dir / 'r0.res'
        path.write_text('new')
        os.chmod(path, 0o644)
        self.store.restore('r0', b'old with secret')
        self.assertEqual('old with secret', path.read_text())
        self.assertEqual(0o600, stat.S_IMODE(os.stat(path).st_mode))
        self.assertEqual(['r0.res'], self._files())
        self.assertRaises(errors.AgentError, self.store.restore, '../x',
                          b'x')

    def test_restore_failure_leaves_no_temp(self):
        (self.res_dir / 'r0.res').write_text('new')
        with mock.patch.object(os, 'rename', side_effect=OSError(28, 'x')):
            self.assertRaises(OSError, self.store.restore, 'r0', b'old')
        self.assertEqual(['r0.res'], self._files())
