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

"""Smoke test of the e2e stack with Cinder's own fake driver.

Proves the stack part of the e2e layer on its own: real MariaDB, RabbitMQ,
Keystone and Cinder services, driven with the ``openstack`` client, with a
driver that needs no storage (``FakeLoggingVolumeDriver`` reports its
backend as ``fake`` whatever the section is called).
"""

import ipaddress
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import fixtures
from oslotest import base

from tests.e2e import stack as e2e_stack

FAKE_DRIVER = 'cinder.tests.fake_driver.FakeLoggingVolumeDriver'


def _say(text):
    # stestr captures stdout/stderr of passing tests; timings go to the
    # real stderr so a run shows them.
    sys.__stderr__.write('[e2e stack] %s\n' % text)
    sys.__stderr__.flush()


class TestStack(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        # oslotest sends every logger to stderr at DEBUG; the HTTP client
        # libraries' request dumps only bury the output.
        for name in ('keystoneauth', 'urllib3'):
            logger = logging.getLogger(name)
            self.addCleanup(logger.setLevel, logger.level)
            logger.setLevel(logging.INFO)

    def _timed(self, what, func, *args, **kwargs):
        t = time.monotonic()
        result = func(*args, **kwargs)
        _say('%-40s %6.2fs' % (what, time.monotonic() - t))
        return result

    def test_fake_backend_lifecycle(self):
        fixture = e2e_stack.StackFixture(
            backends={'fakeback': {'volume_driver': FAKE_DRIVER}})
        t = time.monotonic()
        self.useFixture(fixture)
        stack = fixture.stack
        _say('bring-up %.1fs, steps (s since start): %s'
             % (time.monotonic() - t, stack.timings))
        self.addDetail('timings', self._text(repr(stack.timings)))

        # Every listening socket of every process is on loopback.
        listening = stack.listening_addresses()
        self.assertTrue(listening)
        for addr, port in listening:
            self.assertTrue(ipaddress.ip_address(addr).is_loopback,
                            '%s:%s is not loopback' % (addr, port))
        for name in ('mysql', 'amqp', 'keystone', 'cinder'):
            self.assertIn(('127.0.0.1', stack.ports[name]), listening)

        # Cinder really authenticates with Keystone: no token, no answer.
        req = urllib.request.Request('http://127.0.0.1:%d/v3/%s/volumes'
                                     % (stack.ports['cinder'], 'x'))
        exc = self.assertRaises(urllib.error.HTTPError,
                                urllib.request.urlopen, req, timeout=30)
        self.assertEqual(401, exc.code)

        vtype = self._timed('volume type create', stack.create_volume_type,
                            'T', 'fake', {'e2e:smoke': 'yes'})
        self.assertEqual('T', vtype['name'])
        props = vtype['properties']
        self.assertEqual('fake', props['volume_backend_name'])
        self.assertEqual('yes', props['e2e:smoke'])

        vol = self._timed('volume create (API)', stack.openstack,
                          'volume', 'create', '--size', '1', '--type', 'T',
                          'v1')
        vol = self._timed('volume -> available', stack.wait_for,
                          'volume', vol['id'], 'available', 120)
        self.assertEqual(1, vol['size'])
        self.assertEqual('T', vol['volume_type'])
        self.assertIn('@fakeback#', vol['os-vol-host-attr:host'])
        shown = stack.openstack('volume', 'show', 'v1')
        self.assertEqual('available', shown['status'])

        snap = self._timed('snapshot create (API)', stack.openstack,
                           'volume', 'snapshot', 'create', '--volume', 'v1',
                           's1')
        snap = self._timed('snapshot -> available', stack.wait_for,
                           'snapshot', snap['id'], 'available', 120)
        self.assertEqual(vol['id'], snap['volume_id'])

        pools = stack.openstack('volume', 'backend', 'pool', 'list',
                                '--long')
        names = [p['Name'] for p in pools]
        self.assertEqual(1, len(pools), names)
        self.assertRegex(names[0], r'^[^@]+@fakeback#fake$')
        caps = pools[0]['Capabilities']
        self.assertEqual('fake', caps['volume_backend_name'])
        self.assertEqual('fake', caps['storage_protocol'])

        stack.openstack('volume', 'snapshot', 'delete', 's1', json=False)
        self._timed('snapshot -> deleted', stack.wait_for,
                    'snapshot', snap['id'], 'deleted', 120)
        stack.openstack('volume', 'delete', 'v1', json=False)
        self._timed('volume -> deleted', stack.wait_for,
                    'volume', vol['id'], 'deleted', 120)
        self.assertEqual([], stack.openstack('volume', 'list'))

        # The stack stops clean: nothing it started is left, by its
        # environment marker and by what ps shows.
        self._timed('stop', stack.stop)
        self.assertEqual([], stack.leftover_processes())
        ps = subprocess.run(['ps', '-eo', 'pid=,args='], check=True,
                            capture_output=True, text=True).stdout
        strays = [line for line in ps.splitlines()
                  if stack.workdir in line
                  or ('epmd' in line and
                      '-port %d' % stack.ports['epmd'] in line)]
        self.assertEqual([], strays)
        self.assertFalse(os.path.exists(
            os.path.join(stack.workdir, 'mysql', 'mysqld.pid')))

    def test_missing_prerequisite_is_named(self):
        # A bin dir and PATH without the console scripts: start() must say
        # which PyPI package is missing, and start nothing.
        empty = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable('PATH', empty))
        workdir = os.path.join(empty, 'work')
        stack = e2e_stack.Stack(workdir, {'b': {'volume_driver': 'x'}},
                                bindir=empty)
        exc = self.assertRaises(e2e_stack.MissingPrerequisite, stack.start)
        self.assertIn('cinder-api (PyPI package cinder)', str(exc))
        self.assertIn('python-openstackclient', str(exc))
        self.assertIn('tools/stack/install.sh', str(exc))
        self.assertFalse(os.path.exists(workdir))
        self.assertFalse(stack.started)

    @staticmethod
    def _text(text):
        from testtools import content
        return content.text_content(text)
