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
"""Stock Nova and os-brick accept the connection_info our driver returns.

The driver answers ``initialize_connection`` with
``driver_volume_type: 'local'`` and the DRBD device path (DESIGN.md §2).
These tests feed such a connection_info through os-brick's real
``LocalConnector`` (from ``InitiatorConnector.factory('LOCAL', ...)``) and
through Nova's real libvirt volume driver for ``local`` and check the disk
XML libvirt would get.

Nova and Cinder both register options on oslo.config's global ``CONF`` and
some names clash (``state_path``, ``default_availability_zone``), so Nova
cannot be imported into a test process that also imports Cinder. Nova's
part therefore runs in a child Python process (this file run as a script);
the assertions stay here. Without Nova installed (``pip install nova``, see
the ``nova`` tox env) those tests are skipped.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from xml.etree import ElementTree

import ddt
from os_brick.initiator import connector as brick_connector

from blackstor_cinder import protocol
from tests.unit import base

VOLUME_NAME = 'volume-6f1e3c7a-2b9d-4c1e-9a57-0d3f5e8b1c24'
DEVICE_PATH = f'/dev/drbd/by-res/{VOLUME_NAME}/0'
# Key names that would carry a secret into Nova's database.
SECRET_KEY_RE = re.compile(r'secret|auth|passw|token|key|config',
                           re.IGNORECASE)
DISK_INFO = {'bus': 'virtio', 'dev': 'vdb', 'type': 'disk'}


def connection_info(**data):
    """A connection_info shaped like the driver's initialize_connection."""
    info = {'driver_volume_type': 'local',
            'data': {'device_path': DEVICE_PATH, 'access_mode': 'rw',
                     'discard': True, 'qos_specs': None}}
    info['data'].update(data)
    return info


def secret_like_keys(value, where='connection_info'):
    """Paths of keys in ``value`` whose name suggests a secret."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            path = f'{where}.{key}'
            if SECRET_KEY_RE.search(str(key)):
                found.append(path)
            found += secret_like_keys(item, path)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found += secret_like_keys(item, f'{where}[{index}]')
    return found


def assert_no_secret(test, info):
    test.assertEqual([], secret_like_keys(info))
    text = json.dumps(info)
    test.assertNotIn(protocol.SECRET_PLACEHOLDER, text)
    test.assertNotIn('shared-secret', text)


class ConnectionInfoTestCase(base.TestCase):

    def test_no_secret_in_connection_info(self):
        assert_no_secret(self, connection_info())

    def test_secret_check_catches_a_secret(self):
        # The check above must be able to fail.
        leaky = connection_info(provider_auth='x' * 32)
        self.assertEqual(['connection_info.data.provider_auth'],
                         secret_like_keys(leaky))
        leaky = connection_info(extra={'config': 'resource r { }'})
        self.assertEqual(['connection_info.data.extra.config'],
                         secret_like_keys(leaky))


class OsBrickLocalConnectorTestCase(base.TestCase):

    def test_local_connector_returns_the_drbd_path(self):
        conn = brick_connector.InitiatorConnector.factory(
            'LOCAL', root_helper='sudo')
        self.assertEqual('LocalConnector', type(conn).__name__)
        info = connection_info()
        device = conn.connect_volume(info['data'])
        self.assertEqual(DEVICE_PATH, device['path'])
        self.assertEqual([DEVICE_PATH], conn.get_volume_paths(info['data']))
        # Detach through the same connector is a no-op that must not fail.
        conn.disconnect_volume(info['data'], device)


def run_nova(cases):
    """Run Nova's volume driver on ``cases`` in a child process."""
    # The child runs this file as a script: its imports of ``tests`` need
    # the checkout on the path, which only the test runner's cwd gave us.
    top = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (top, os.environ.get('PYTHONPATH'))
                           if p)
    env = dict(os.environ, OS_NOVA_DISABLE_EVENTLET_PATCHING='1',
               PYTHONWARNINGS='ignore', PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__)],
        input=json.dumps(cases), capture_output=True, text=True, env=env,
        timeout=120, check=False)
    if proc.returncode != 0:
        raise AssertionError(f'the Nova child process failed '
                             f'({proc.returncode}):\n{proc.stderr}')
    return json.loads(proc.stdout)


@ddt.ddt
class NovaLibvirtVolumeDriverTestCase(base.TestCase):

    _results = None

    CASES = {
        'discard': connection_info(),
        'no-discard': connection_info(discard=False),
        'read-only': connection_info(access_mode='ro'),
        'qos': connection_info(qos_specs={'total_iops_sec': 500,
                                          'read_bytes_sec': 1048576}),
        'serial': dict(connection_info(), serial='6f1e3c7a'),
    }

    def setUp(self):
        super().setUp()
        if importlib.util.find_spec('nova') is None:
            self.skipTest('nova is not installed here: tox -e e2e runs '
                          'these checks (it installs nova==34.0.0), or pip '
                          'install nova==34.0.0 into this environment')
        if NovaLibvirtVolumeDriverTestCase._results is None:
            NovaLibvirtVolumeDriverTestCase._results = run_nova(
                {name: case for name, case in self.CASES.items()})
        self.results = NovaLibvirtVolumeDriverTestCase._results

    def _disk(self, case):
        result = self.results[case]
        self.assertEqual(
            'nova.virt.libvirt.volume.volume.LibvirtVolumeDriver',
            result['driver'])
        return ElementTree.fromstring(result['xml'])

    def test_nova_maps_local_to_the_block_volume_driver(self):
        self._disk('discard')

    @ddt.data('discard', 'no-discard', 'read-only', 'qos', 'serial')
    def test_disk_is_the_drbd_block_device(self, case):
        disk = self._disk(case)
        self.assertEqual('disk', disk.tag)
        self.assertEqual('block', disk.get('type'))
        self.assertEqual('disk', disk.get('device'))
        sources = disk.findall('source')
        self.assertEqual(1, len(sources))
        self.assertEqual({'dev': DEVICE_PATH}, dict(sources[0].attrib))
        driver = disk.find('driver')
        self.assertEqual('raw', driver.get('type'))
        self.assertEqual('none', driver.get('cache'))
        target = disk.find('target')
        self.assertEqual({'bus': 'virtio', 'dev': 'vdb'},
                         dict(target.attrib))

    def test_discard_unmap(self):
        self.assertEqual('unmap',
                         self._disk('discard').find('driver').get('discard'))
        self.assertIsNone(
            self._disk('no-discard').find('driver').get('discard'))

    def test_access_mode(self):
        self.assertIsNotNone(self._disk('read-only').find('readonly'))
        self.assertIsNone(self._disk('discard').find('readonly'))

    def test_qos_specs_become_iotune(self):
        iotune = self._disk('qos').find('iotune')
        self.assertEqual('500', iotune.findtext('total_iops_sec'))
        self.assertEqual('1048576', iotune.findtext('read_bytes_sec'))
        self.assertIsNone(self._disk('discard').find('iotune'))

    def test_serial_and_no_encryption(self):
        disk = self._disk('serial')
        self.assertEqual('6f1e3c7a', disk.findtext('serial'))
        self.assertIsNone(disk.find('encryption'))
        self.assertEqual([['volume', '6f1e3c7a']],
                         self.results['serial']['find_secret_calls'])

    def test_no_secret_reaches_nova(self):
        for case in self.CASES.values():
            assert_no_secret(self, case)
        for result in self.results.values():
            self.assertNotIn(protocol.SECRET_PLACEHOLDER, result['xml'])
            self.assertNotIn('secret', result['xml'])


def _nova_worker():
    """Child process: connection_infos on stdin, Nova's disk XML out."""
    from unittest import mock

    from nova.virt.libvirt import driver as libvirt_driver
    from oslo_utils import importutils

    cases = json.load(sys.stdin)
    results = {}
    for name, info in cases.items():
        if 'attachment_ref' in info:
            # What Cinder's attachments API returned: Nova rebuilds the old
            # style connection_info from it before using it.
            from nova.volume import cinder as nova_cinder
            info = nova_cinder._translate_attachment_ref(
                info['attachment_ref'])['connection_info']
        driver_name = libvirt_driver.VOLUME_DRIVERS[
            info['driver_volume_type']]
        host = mock.Mock()
        host.find_secret.return_value = None
        volume_driver = importutils.import_class(driver_name)(host)
        conf = volume_driver.get_config(info, dict(DISK_INFO))
        results[name] = {
            'driver': driver_name,
            'xml': conf.to_xml(),
            'find_secret_calls': [list(c.args)
                                  for c in host.find_secret.call_args_list],
        }
    json.dump(results, sys.stdout)


if __name__ == '__main__':
    _nova_worker()
