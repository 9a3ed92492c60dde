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
"""What the README and the messages tell a reader to run or read exists."""

import configparser
import fnmatch
import os
import pathlib
import re

from tests.unit import base

TOP = pathlib.Path(__file__).resolve().parents[2]
README = TOP / 'README.md'
# Where a reader is told what to run: docs, scripts, test messages.
TEXT_FILES = ('*.md', '*.rst', '*.py', '*.sh', '*.txt', '*.ini', '*.yaml')
SKIP_DIRS = {'.git', '.tox', '.cache', '.stestr', 'build', '__pycache__'}


def text_files():
    for root, dirs, files in os.walk(TOP):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS
                         and not d.endswith('.egg-info'))
        for name in sorted(files):
            if any(fnmatch.fnmatch(name, p) for p in TEXT_FILES):
                yield pathlib.Path(root, name)


def tox_envs():
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(TOP / 'tox.ini')
    return {name.split(':', 1)[1] for name in ini.sections()
            if name.startswith('testenv:')}


class DocsTest(base.TestCase):

    def test_every_tox_env_named_exists(self):
        envs = tox_envs()
        self.assertIn('py3', envs)
        missing = []
        for path in text_files():
            for number, line in enumerate(
                    path.read_text(errors='replace').splitlines(), 1):
                # Another project's env ("Cinder's `tox -e compliance`").
                if "Cinder's" in line:
                    continue
                for named in re.findall(r'tox -e ([a-z0-9_,-]+)', line):
                    for env in filter(None, named.split(',')):
                        if env not in envs:
                            missing.append(f'{path.relative_to(TOP)}:'
                                           f'{number}: {env}')
        self.assertEqual([], missing)

    def test_readme_points_inside_the_repository(self):
        text = README.read_text()
        self.assertEqual([], [line for line in text.splitlines()
                              if '../' in line])
        links = re.findall(r'\]\(([^)#]+)', text)
        self.assertIn('doc/source/design.rst', links)
        self.assertIn('doc/source/architecture.rst', links)
        for link in links:
            if '://' not in link:
                self.assertTrue((TOP / link).exists(), link)

    def test_readme_tox_is_where_run_tests_puts_it(self):
        # tox is not on a new user's PATH: tools/run-tests.sh installs it
        # into .cache/tools-venv/.
        bare = [line for line in README.read_text().splitlines()
                if re.search(r'(?<![/\w])tox -e', line)]
        self.assertEqual([], bare)
        self.assertIn('.cache/tools-venv/bin/tox -e', README.read_text())
        self.assertIn('"$tools_venv/bin/tox"',
                      (TOP / 'tools' / 'run-tests.sh').read_text())

    def test_readme_quick_start_is_two_commands(self):
        text = README.read_text()
        section = text.split('## Quick start', 1)[1].split('## ', 1)[0]
        block = section.split('```\n', 2)[1]
        commands = [line.split('#')[0].strip()
                    for line in block.splitlines() if line.strip()]
        self.assertEqual(['tools/demo.sh', 'tools/run-tests.sh'], commands)
