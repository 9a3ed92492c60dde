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
"""The DRBD shared secret on the driver's real output: logs, connection_info.

The real driver (tests/functional/driver_fixture.py) creates, attaches,
extends, snapshots, detaches and deletes a volume on the cluster in a box
over SSH with every logger at DEBUG, which logs each request it sends. The
secret the nodes really use (read from their .res files) must appear in
none of those log lines and nowhere in what ``initialize_connection``
returned.
"""

from __future__ import annotations

import json
import logging
import re
import unittest
import uuid

from cinder import objects
from cinder.tests.unit import fake_volume
import fixtures
from oslotest import base

objects.register_all()

from blackstor_cinder import driver  # noqa: E402
from blackstor_cinder import protocol  # noqa: E402
from tests.functional import cluster_box  # noqa: E402
from tests.functional import driver_fixture  # noqa: E402

BACKEND = 'blackstor-secrets'
SECRET_RE = re.compile(r'shared-secret\s+"([^"]+)"')


class SecretNeverShownTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        why = cluster_box.missing_prerequisites()
        if why:
            raise unittest.SkipTest(why)
        # Every logger (ours, paramiko, oslo, cinder) at DEBUG.
        self.log = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG,
            format='%(levelname)s [%(name)s] %(message)s'))
        self.box = self.useFixture(cluster_box.ClusterInABox(
            hypervisors=('hv-1',)))
        fixture = self.useFixture(driver_fixture.DriverFixture(self.box,
                                                               BACKEND))
        self.ctxt, self.drv = fixture.ctxt, fixture.driver

    def volume(self, size=1):
        vtype = fake_volume.fake_volume_type_obj(
            self.ctxt, extra_specs={driver.SPEC_REPLICAS: '2'})
        vol = fake_volume.fake_volume_obj(
            self.ctxt, size=size, volume_type_id=vtype.id,
            id=str(uuid.uuid4()), encryption_key_id=None)
        vol.volume_type = vtype
        return vol

    def node_secrets(self, vol) -> set[str]:
        found = set()
        for node in self.box.nodes.values():
            for path in node.resource_dir.glob(f'{vol.name}.res'):
                found.update(SECRET_RE.findall(path.read_text()))
        return found

    def test_secret_in_no_log_line_and_no_connection_info(self):
        vol = self.volume()
        self.drv.create_volume(vol)
        connector = {'host': 'hv-1', 'ip': self.box.nodes['hv-1'].address,
                     'initiator': 'iqn.2026-12.org.example:hv-1',
                     'multipath': False, 'platform': 'x86_64',
                     'os_type': 'linux', 'do_local_attach': False}
        info = self.drv.initialize_connection(vol, connector)
        # The secret the nodes really use while attached.
        secrets = self.node_secrets(vol)
        self.assertEqual(1, len(secrets), secrets)
        self.assertTrue(
            (self.box.nodes['hv-1'].resource_dir / f'{vol.name}.res'
             ).exists())
        secret = secrets.pop()
        self.assertGreaterEqual(len(secret), 16)
        self.drv.extend_volume(vol, 2)
        self.drv.terminate_connection(vol, connector)
        self.drv.delete_volume(vol)
        self.assertEqual({}, self.box.leftovers())

        text = json.dumps(info)
        self.assertEqual('local', info['driver_volume_type'])
        self.assertNotIn(secret, text)
        self.assertNotIn(protocol.SECRET_PLACEHOLDER, text)
        self.assertNotIn('shared-secret', text)
        log = self.log.output
        # The check can fail: the requests that carried the secret were
        # logged (masked), with the resource they were for.
        requests = [line for line in log.splitlines()
                    if 'Request to' in line and vol.name in line
                    and '"secret"' in line]
        self.assertGreater(len(requests), 2, log[-3000:])
        self.assertNotIn(secret, log)
