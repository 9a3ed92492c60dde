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
"""tools/apt-install.sh against stand-in dpkg-query and apt-get."""

import os
import pathlib
import subprocess

import fixtures

from tests.unit import base

TOP = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = TOP / 'tools' / 'apt-install.sh'

# dpkg-query: the packages in $INSTALLED are installed, no other.
DPKG_QUERY = '''#!/bin/sh
for package; do :; done
for p in $INSTALLED; do
    [ "$p" = "$package" ] && { printf 'install ok installed'; exit 0; }
done
exit 1
'''
# apt-get: one line of arguments per call into $CALLS.
APT_GET = '''#!/bin/sh
echo "$*" >> "$CALLS"
'''


class AptInstallTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        for name, text in (('dpkg-query', DPKG_QUERY), ('apt-get', APT_GET)):
            path = self.dir / name
            path.write_text(text)
            path.chmod(0o755)
        self.calls = self.dir / 'calls'

    def run_script(self, *args, installed=''):
        env = dict(os.environ, PATH=f'{self.dir}:/usr/bin:/bin',
                   CALLS=str(self.calls), INSTALLED=installed)
        subprocess.run(['bash', str(SCRIPT), *args], env=env, check=True,
                       capture_output=True, timeout=60)
        return (self.calls.read_text().splitlines()
                if self.calls.exists() else [])

    def test_installs_without_recommended_packages(self):
        self.assertEqual(
            ['update -q',
             'install -y -q --no-install-recommends drbd-utils git'],
            self.run_script('drbd-utils', 'git'))

    def test_only_what_is_missing(self):
        self.assertEqual(
            ['update -q', 'install -y -q --no-install-recommends git'],
            self.run_script('drbd-utils', 'git', installed='drbd-utils'))

    def test_nothing_missing_nothing_run(self):
        self.assertEqual([], self.run_script('git', installed='git'))

    def test_extra_options(self):
        self.assertEqual(
            ['update -q', 'install -y -q --no-install-recommends '
             '--allow-downgrades git'],
            self.run_script('--allow-downgrades', '--', 'git'))
