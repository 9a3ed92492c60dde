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
"""The real BlackStorDriver on a cluster in a box, as cinder-volume runs it.

Its backend section comes from the box's options through oslo.config and
Cinder's ``Configuration``; its transports are the real SSH ones. Only the
coordination lock is a local one (no tooz backend here).
"""

from __future__ import annotations

from cinder import context
from cinder import objects
from cinder.volume import configuration
import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture

objects.register_all()

from blackstor_cinder.cluster import core  # noqa: E402
from blackstor_cinder import driver  # noqa: E402


class DriverFixture(fixtures.Fixture):
    """``driver`` (set up and checked), ``ctxt``, ``conf`` after setUp."""

    def __init__(self, box, backend: str) -> None:
        super().__init__()
        self.box = box
        self.backend = backend

    def _setUp(self):
        self.ctxt = context.get_admin_context()
        self.conf = self.useFixture(config_fixture.Config(cfg.CONF))
        configuration_ = configuration.Configuration(
            driver.driver.volume_opts, config_group=self.backend)
        configuration_.append_config_values(driver.options.blackstor_opts)
        opts = {o.dest: o for o in driver.options.blackstor_opts}
        for key, value in self.box.backend_options().items():
            if key == 'volume_driver':
                continue
            self.conf.config(group=self.backend,
                             **{key: opts[key].type(value)})
        self.conf.config(group=self.backend,
                         volume_backend_name=self.backend)
        self.useFixture(fixtures.MockPatchObject(
            driver, '_coordination_lock', core.LocalLocks()))
        self.configuration = configuration_
        self.driver = driver.BlackStorDriver(configuration=configuration_)
        self.driver.do_setup(self.ctxt)
        self.addCleanup(self.driver.controller.close)
        self.driver.check_for_setup_error()
