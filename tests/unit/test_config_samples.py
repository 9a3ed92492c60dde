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
"""The option samples in etc/ are what `tox -e genconfig` writes now."""

import pathlib

import ddt
import fixtures
from oslo_config import generator

from tests.unit import base

TOP = pathlib.Path(__file__).resolve().parents[2]


@ddt.ddt
class ConfigSampleTest(base.TestCase):

    @ddt.data(('blackstor_cinder', 'etc/blackstor-cinder.conf.sample'),
              ('blackstor_cinder.node', 'etc/blackstor-node.conf.sample'))
    @ddt.unpack
    def test_sample_is_current(self, namespace, sample):
        out = self.useFixture(fixtures.TempDir()).path
        target = pathlib.Path(out) / 'sample.conf'
        conf = generator.cfg.ConfigOpts()
        generator.register_cli_opts(conf)
        conf(['--namespace', namespace, '--output-file', str(target),
              '--wrap-width', '79'])
        generator.generate(conf)
        self.assertEqual((TOP / sample).read_text(), target.read_text(),
                         f'{sample} is stale: run tox -e genconfig')
        self.assertIn('blackstor', target.read_text())
