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
"""The base of the blackstor-manage tests: main() on the fake agents."""

import io
import json
import os
import sys
from unittest import mock

import fixtures

from blackstor_cinder import backend
from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.manage import app
from blackstor_cinder.manage import config
from tests.unit.cluster import fakes
from tests.unit import base

G = 1 << 30
VOL_A = 'volume-aaaa'
VOL_B = 'volume-bbbb'
STORAGE = ('n1', 'n2', 'n3')

CONF = """
[DEFAULT]
enabled_backends = lvm-1,blackstor-1

[lvm-1]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver

[backend_defaults]
blackstor_replicas = 2
blackstor_pool = other/pool

[blackstor-1]
volume_driver = blackstor_cinder.driver.BlackStorDriver
volume_backend_name = blackstor
blackstor_storage_nodes = n1,n2,n3
blackstor_client_nodes = hv1
blackstor_ssh_addresses = n1:10.0.0.1,n2:10.0.0.2,n3:10.0.0.3,hv1:10.0.1.1
blackstor_node_zones = n1:z1,n2:z2,n3:z3
blackstor_pool = vg/pool
blackstor_replicas = 3
blackstor_minor_range = 1000-1099
blackstor_port_range = 7000-7099
"""


class ManageTestCase(base.TestCase):
    """main() in-process against the fake agents of tests.unit.cluster."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.FakeLogger())
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.conf_file = self.write('cinder.conf', CONF)
        self.cluster = fakes.FakeCluster()
        self.origins = {}
        for name in STORAGE:
            self.with_origins(self.cluster.add(name, pool_bytes=100 * G))
        self.cluster.add('hv1', pool=None)
        self.useFixture(fixtures.MockPatchObject(
            backend, 'transport_factory',
            lambda conf: self.cluster.transport_for))

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def with_origins(self, agent):
        # The real agent reports each LV's origin; the fake does not.
        inner = agent.op_inventory

        def op_inventory(req):
            reply = inner(req)
            for lv in reply['volumes'] + reply['snapshots']:
                lv['origin'] = self.origins.get((agent.name, lv['name']))
            return reply
        agent.op_inventory = op_inventory

    def controller(self):
        conf = config.load_backend([self.conf_file], 'blackstor-1')
        cluster_config = backend.cluster_config(conf, 20.0)
        controller = ctl.Controller(cluster_config,
                                    self.cluster.transport_for,
                                    poll_interval=0.01)
        self.addCleanup(controller.close)
        return controller

    def run_main(self, *argv, with_config=True):
        if with_config:
            argv = ('--config-file', self.conf_file) + argv
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.object(sys, 'stdout', out), \
                mock.patch.object(sys, 'stderr', err):
            code = app.main(list(argv))
        self.assertIsInstance(code, int)
        return code, out.getvalue(), err.getvalue()

    def run_json(self, *argv, expect=0):
        code, out, err = self.run_main(*(argv + ('-f', 'json')))
        self.assertEqual(expect, code, err)
        return json.loads(out)

    def agent(self, name):
        return self.cluster.agents[name]

    def two_volumes(self):
        controller = self.controller()
        controller.create_volume(VOL_A, 2 * G)
        controller.create_volume(VOL_B, G)
        controller.attach(VOL_A, 'hv1')
        return controller
