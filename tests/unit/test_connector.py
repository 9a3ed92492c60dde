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
"""Tests of the os-brick DRBD connector against a fake executor.

The fake answers ``drbdsetup`` and the state-changing ``drbdadm`` verbs
(``adjust``, ``down``) from a small in-memory state, the way the DRBD
kernel module would. Every other drbdadm call (the .res validation:
``dump``, ``sh-ll-dev``, ``sh-nop``) runs the real drbdadm, which needs no
kernel module.
"""

import copy
import json
import logging
import os
import pathlib
import stat
import time
from unittest import mock

import ddt
import fixtures
from os_brick import exception as brick_exception
from os_brick.initiator import connectors as brick_connectors
from oslo_concurrency import processutils

from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import resspec
from blackstor_cinder import connector
from blackstor_cinder import protocol
from blackstor_cinder.node import client
from blackstor_cinder.node import drbdstatus
from blackstor_cinder.node import executor
from blackstor_cinder.node import resrender
from tests.unit import base

RES = 'volume-0b7c8f0e-3d1a-4a57-9d5e-2f3c4b5a6d7e'
NODE = 'hv1'
MINOR = 1000
SECRET = 'Zq3xV9kLm2Np8Rt5Wy7Bc4Df6Gh1Jk0s'
ROOT_HELPER = 'sudo'


def _render(spec):
    """The .res the agent renders for ``spec`` as the controller sends it."""
    return resrender.render(spec.name, resspec.to_wire(spec))


def res_text(name=RES, minor=MINOR, port=7000, client=NODE):
    """The .res the controller renders for a volume with a client."""
    spec = model.ResourceSpec(name=name, minor=minor, port=port, hosts=(
        model.ResourceHost('store1', 0, '10.0.0.1', True,
                           f'/dev/vg0/{name}'),
        model.ResourceHost('store2', 1, '10.0.0.2', True,
                           f'/dev/vg0/{name}'),
        model.ResourceHost(client, 2, '10.0.0.3', False)))
    return _render(spec)


def props(name=RES, **extra):
    result = {'name': name, 'config': res_text(name), 'provider_auth': SECRET}
    result.update(extra)
    return result


def peer(name, node_id, connection='Connected', disk='UpToDate',
         replication='Established', role='Secondary'):
    return {'peer-node-id': node_id, 'name': name,
            'connection-state': connection, 'congested': False,
            'peer-role': role,
            'peer_devices': [{'volume': 0, 'replication-state': replication,
                              'peer-disk-state': disk, 'peer-client': False,
                              'out-of-sync': 0}]}


def status(name=RES, role='Secondary', disk='Diskless', quorum=True,
           client=True, size_kib=1048576, peers=None, minor=MINOR, **dev):
    """One resource as ``drbdsetup status --json`` (drbd-utils 9.22)."""
    device = {'volume': 0, 'minor': minor, 'disk-state': disk,
              'client': client, 'quorum': quorum}
    if size_kib is not None:
        device['size'] = size_kib
    device.update(dev)
    if peers is None:
        peers = [peer('store1', 0), peer('store2', 1)]
    return {'name': name, 'node-id': 2, 'role': role, 'suspended': False,
            'write-ordering': 'none', 'devices': [device],
            'connections': peers}


HEALTHY = status()
NO_PEERS_YET = status(quorum=False, peers=[
    peer('store1', 0, connection='Connecting', disk='DUnknown',
         replication='Off'),
    peer('store2', 1, connection='StandAlone', disk='DUnknown',
         replication='Off')])


class FakeDRBD:
    """drbdsetup / drbdadm at the argv boundary, with a little state.

    ``after_adjust`` is the status a resource gets from ``adjust``;
    ``make_device`` says whether udev creates the by-res link;
    ``held_open`` resources refuse ``down`` like the kernel does.
    """

    def __init__(self, device_root):
        self.device_root = pathlib.Path(device_root)
        self.resources = {}
        self.calls = []
        self.after_adjust = copy.deepcopy(HEALTHY)
        self.make_device = True
        self.held_open = set()
        self.status_text = None     # forced drbdsetup status output
        self.status_error = None    # forced drbdsetup status exit code

    def device(self, name):
        return self.device_root / 'drbd' / 'by-res' / name / '0'

    def __call__(self, *cmd, **kwargs):
        argv = list(cmd)
        if argv and argv[0] == 'env':
            argv = argv[1:]
            while argv and '=' in argv[0]:
                argv = argv[1:]
        self.calls.append(argv)
        program = os.path.basename(argv[0])
        if program == 'drbdsetup':
            return self._drbdsetup(argv[1:])
        if program == 'drbdadm':
            verb, args = self._verb(argv[1:])
            if verb in ('adjust', 'down'):
                return getattr(self, f'_{verb}')(args[0])
            return self._real(cmd, kwargs)
        raise AssertionError(f'unexpected command {argv}')

    def commands(self, program, verb=None):
        return [c for c in self.calls if os.path.basename(c[0]) == program
                and (verb is None or verb in c)]

    @staticmethod
    def _verb(args):
        takes_value = {'-c', '--config-file', '--config-to-test',
                       '--config-to-exclude'}
        rest = list(args)
        while rest:
            arg = rest.pop(0)
            if arg in takes_value:
                rest.pop(0)
            elif not arg.startswith('-'):
                return arg, rest
        raise AssertionError(f'no drbdadm verb in {args}')

    @staticmethod
    def _real(cmd, kwargs):
        kwargs = {k: v for k, v in kwargs.items()
                  if k not in ('run_as_root', 'root_helper')}
        return processutils.execute(*cmd, **kwargs)

    def _adjust(self, name):
        state = copy.deepcopy(self.after_adjust)
        state['name'] = name
        self.resources[name] = state
        if self.make_device:
            self.device(name).parent.mkdir(parents=True, exist_ok=True)
            self.device(name).touch()
        return '', ''

    def _down(self, name):
        if name in self.held_open:
            raise processutils.ProcessExecutionError(
                exit_code=11, stderr=f'{name}: State change failed: (-12) '
                                     'Device is held open by someone')
        self.resources.pop(name, None)
        if self.device(name).exists():
            self.device(name).unlink()
        return '', ''

    def _drbdsetup(self, args):
        verb, names = args[0], [a for a in args[1:] if not a.startswith('-')]
        if verb == 'down':
            return self._down(names[0])
        assert verb == 'status' and '--json' in args, args
        if self.status_error is not None:
            raise processutils.ProcessExecutionError(
                exit_code=self.status_error,
                stderr='Failed to modprobe drbd (No such file or directory)')
        if self.status_text is not None:
            return self.status_text, ''
        if names:
            if names[0] not in self.resources:
                raise processutils.ProcessExecutionError(
                    exit_code=10, stderr=f'{names[0]}: No such resource')
            return json.dumps([self.resources[names[0]]]), ''
        return json.dumps(list(self.resources.values())), ''


class ConnectorTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.resource_dir = self.tmp / 'drbd.d'
        self.resource_dir.mkdir()
        self.drbd_config = self.tmp / 'drbd.conf'
        self.drbd_config.write_text(
            f'include "{self.resource_dir}/*.res";\n')
        self.device_root = self.tmp / 'dev'
        self.device_root.mkdir()
        self.fake = FakeDRBD(self.device_root)
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self.conn = self.make_connector()

    def make_connector(self, root_helper=ROOT_HELPER, execute=None,
                       **kwargs):
        options = dict(resource_dir=str(self.resource_dir),
                       drbd_config=str(self.drbd_config), node_name=NODE,
                       device_root=str(self.device_root),
                       attach_timeout=5.0, poll_interval=0.01)
        options.update(kwargs)
        return connector.DRBDConnector(root_helper,
                                       execute=execute or self.fake,
                                       **options)

    @property
    def res_path(self):
        return self.resource_dir / f'{RES}.res'

    def drbdadm_dump(self):
        """What a drbdadm started after a reboot sees of the resource."""
        return processutils.execute(
            'drbdadm', '-c', str(self.drbd_config), 'dump', RES,
            env_variables=dict(os.environ, __DRBD_NODE__=NODE))


class ConnectVolumeTestCase(ConnectorTestCase):

    def test_connect_returns_the_by_res_device(self):
        device = self.conn.connect_volume(props())
        path = str(self.fake.device(RES))
        self.assertEqual({'type': 'block', 'path': path}, device)
        self.assertEqual([['drbdadm', '-c', str(self.drbd_config), 'adjust',
                           RES]], self.fake.commands('drbdadm', 'adjust'))
        self.assertTrue(self.res_path.is_file())
        self.assertEqual([], self.fake.commands('drbdadm', 'down'))

    def test_connect_uses_the_device_property(self):
        self.fake.make_device = False
        minor_dev = self.device_root / f'drbd{MINOR}'
        minor_dev.touch()
        device = self.conn.connect_volume(props(device=str(minor_dev)))
        self.assertEqual(str(minor_dev), device['path'])

    @ddt.data('/etc/passwd', '../dev/x', 'relative/0')
    def test_connect_refuses_device_outside_device_root(self, device):
        self.assertRaises(brick_exception.InvalidParameterValue,
                          self.conn.connect_volume, props(device=device))
        self.assertFalse(self.res_path.exists())
        self.assertEqual([], self.fake.calls)

    def test_res_is_persistent_private_and_holds_the_secret(self):
        properties = props()
        original = copy.deepcopy(properties)
        device = self.conn.connect_volume(properties)

        # Mode 0600, secret substituted in the file only.
        mode = stat.S_IMODE(self.res_path.stat().st_mode)
        self.assertEqual(0o600, mode)
        text = self.res_path.read_text()
        self.assertIn(f'shared-secret "{SECRET}";', text)
        self.assertNotIn(protocol.SECRET_PLACEHOLDER, text)
        self.assertEqual(original, properties)
        self.assertNotIn(SECRET, json.dumps(device))
        self.assertNotIn(SECRET, self.log.output)

        # "Reboot": a new drbdadm reading drbd.conf finds the resource,
        # as the boot service's "drbdadm adjust all" would.
        out, _err = self.drbdadm_dump()
        self.assertIn(f'resource {RES} {{', out)
        self.assertIn('on hv1 {', out)
        self.assertIn('disk         none;', out)

        # A fresh connector (new process after the reboot) sees it too.
        fresh = self.make_connector()
        self.assertTrue(fresh.client.store.exists(RES))
        self.assertEqual([device['path']], fresh.get_volume_paths(props()))
        self.assertEqual(RES, fresh.client.store.read_definition(RES)['name'])

    def test_connect_twice_is_idempotent(self):
        first = self.conn.connect_volume(props())
        mtime = self.res_path.stat().st_mtime_ns
        second = self.conn.connect_volume(props())
        self.assertEqual(first, second)
        self.assertEqual(mtime, self.res_path.stat().st_mtime_ns)
        self.assertEqual(2, len(self.fake.commands('drbdadm', 'adjust')))

    def test_connect_waits_for_a_peer_up_to_date(self):
        states = [copy.deepcopy(NO_PEERS_YET), copy.deepcopy(NO_PEERS_YET),
                  copy.deepcopy(HEALTHY)]
        real_drbdsetup = self.fake._drbdsetup

        def drbdsetup(args):
            if args[0] == 'status' and len(states) > 1:
                self.fake.resources[RES] = states.pop(0)
            elif args[0] == 'status':
                self.fake.resources[RES] = states[0]
            return real_drbdsetup(args)

        self.fake._drbdsetup = drbdsetup
        self.conn.connect_volume(props())
        self.assertEqual(3, len(self.fake.commands('drbdsetup', 'status')))

    def _one_peer_connecting(self):
        return status(peers=[peer('store1', 0),
                             peer('store2', 1, connection='Connecting',
                                  disk='DUnknown', replication='Off')])

    def _statuses(self, states):
        real_drbdsetup = self.fake._drbdsetup

        def drbdsetup(args):
            if args[0] == 'status':
                self.fake.resources[RES] = copy.deepcopy(
                    states.pop(0) if len(states) > 1 else states[0])
            return real_drbdsetup(args)

        self.fake._drbdsetup = drbdsetup

    def test_connect_waits_a_grace_for_a_peer_still_connecting(self):
        # Usable at the first look, the second peer connects at the
        # third: the first write's auto-promote must not race it.
        self._statuses([self._one_peer_connecting(),
                        self._one_peer_connecting(), HEALTHY])
        self.conn.connect_volume(props())
        self.assertEqual(3, len(self.fake.commands('drbdsetup', 'status')))

    def test_a_peer_that_stays_away_costs_the_grace_only(self):
        self.useFixture(fixtures.MockPatchObject(client, 'PEER_GRACE',
                                                 0.2))
        self._statuses([self._one_peer_connecting()])
        start = time.monotonic()
        self.conn.connect_volume(props())
        took = time.monotonic() - start
        self.assertGreaterEqual(took, 0.2)
        self.assertLess(took, 3)
        self.assertIn('with peers not connected yet', self.log.output)

    def _assert_timeout(self, **kwargs):
        conn = self.make_connector(attach_timeout=0.1, poll_interval=0.02)
        start = time.monotonic()
        exc = self.assertRaises(connector.DRBDAttachTimeout,
                                conn.connect_volume, props(**kwargs))
        self.assertLess(time.monotonic() - start, 3)
        self.assertIsInstance(exc, brick_exception.BrickException)
        return str(exc)

    def test_timeout_reports_state_and_undoes(self):
        self.fake.after_adjust = copy.deepcopy(NO_PEERS_YET)
        message = self._assert_timeout()
        for seen in ('quorum no', 'Connecting', 'StandAlone', 'DUnknown',
                     'store1 (node-id 0)', 'store2 (node-id 1)',
                     'disk Diskless', RES):
            self.assertIn(seen, message)
        self.assertNotIn(SECRET, message)
        # Undone: down called, resource gone, .res removed.
        self.assertEqual(1, len(self.fake.commands('drbdadm', 'down')))
        self.assertNotIn(RES, self.fake.resources)
        self.assertFalse(self.res_path.exists())
        self.assertEqual([], list(self.resource_dir.iterdir()))

    def test_timeout_when_the_device_never_appears(self):
        self.fake.make_device = False
        message = self._assert_timeout()
        self.assertIn('missing', message)
        self.assertIn('quorum yes', message)
        self.assertFalse(self.res_path.exists())

    def test_timeout_when_the_resource_never_comes_up(self):
        self.fake.after_adjust = None
        self.fake._adjust = lambda name: ('', '')
        message = self._assert_timeout()
        self.assertIn('resource not up', message)
        self.assertFalse(self.res_path.exists())

    def test_quorum_without_up_to_date_peer_is_not_enough(self):
        self.fake.after_adjust = status(peers=[
            peer('store1', 0, disk='Inconsistent',
                 replication='SyncTarget'),
            peer('store2', 1, disk='Outdated')])
        message = self._assert_timeout()
        self.assertIn('Inconsistent', message)
        self.assertIn('Outdated', message)

    def test_timeout_keeps_an_attach_already_in_place(self):
        self.conn.connect_volume(props())
        self.fake.after_adjust = copy.deepcopy(NO_PEERS_YET)
        self._assert_timeout()
        self.assertTrue(self.res_path.exists())
        self.assertEqual([], self.fake.commands('drbdadm', 'down'))
        self.assertIn(RES, self.fake.resources)

    # -- on a node that holds a replica (hyperconverged) --

    def replica_connector(self, replicas=1, **kwargs):
        """A connector on store1, whose replica's .res is in place."""
        hosts = tuple(
            model.ResourceHost(f'store{i + 1}', i, f'10.0.0.{i + 1}', True,
                               f'/dev/vg0/{RES}')
            for i in range(replicas))
        text = _render(model.ResourceSpec(
            name=RES, minor=MINOR, port=7000, hosts=hosts))
        self.res_path.write_text(
            text.replace(protocol.SECRET_PLACEHOLDER, SECRET))
        self.res_path.chmod(0o600)
        return (self.make_connector(node_name='store1', **kwargs),
                {'name': RES, 'config': text, 'provider_auth': SECRET})

    def test_single_replica_node_is_usable_with_its_own_disk(self):
        conn, properties = self.replica_connector()
        before = self.res_path.read_text()
        self.fake.after_adjust = status(disk='UpToDate', client=False,
                                        peers=[])
        device = conn.connect_volume(properties)
        self.assertEqual(str(self.fake.device(RES)), device['path'])
        self.assertEqual(before, self.res_path.read_text())
        self.assertEqual([], self.fake.commands('drbdadm', 'down'))

    def test_replica_node_with_inconsistent_disk_uses_a_peer(self):
        conn, properties = self.replica_connector(replicas=2)
        self.fake.after_adjust = status(
            disk='Inconsistent', client=False,
            peers=[peer('store2', 1, replication='SyncTarget')])
        conn.connect_volume(properties)

    def test_own_disk_up_to_date_without_quorum_is_not_enough(self):
        conn, properties = self.replica_connector(
            replicas=3, attach_timeout=0.1, poll_interval=0.02)
        self.fake.after_adjust = status(
            disk='UpToDate', client=False, quorum=False,
            peers=[peer('store2', 1, connection='Connecting',
                        disk='DUnknown', replication='Off'),
                   peer('store3', 2, connection='Connecting',
                        disk='DUnknown', replication='Off')])
        exc = self.assertRaises(connector.DRBDAttachTimeout,
                                conn.connect_volume, properties)
        self.assertIn('quorum no', str(exc))
        self.assertIn("this node's disk or a peer's", str(exc))
        # The replica is never taken down, its .res stays.
        self.assertEqual([], self.fake.commands('drbdadm', 'down'))
        self.assertTrue(self.res_path.exists())
        self.assertIn(RES, self.fake.resources)

    def test_replica_node_refuses_a_diskless_res_and_keeps_its_own(self):
        conn, properties = self.replica_connector()
        before = self.res_path.read_text()
        text = _render(model.ResourceSpec(
            name=RES, minor=MINOR, port=7000, hosts=(
                model.ResourceHost('store1', 0, '10.0.0.1', False),
                model.ResourceHost('store2', 1, '10.0.0.2', True,
                                   f'/dev/vg0/{RES}'))))
        diskless = dict(properties, config=text)
        exc = self.assertRaises(connector.DRBDConnectorError,
                                conn.connect_volume, diskless)
        self.assertIn(f'/dev/vg0/{RES}', str(exc))
        self.assertEqual(before, self.res_path.read_text())
        self.assertEqual([], self.fake.commands('drbdadm', 'adjust'))
        self.assertEqual([], self.fake.commands('drbdadm', 'down'))

    def test_replica_is_never_disconnected(self):
        conn, properties = self.replica_connector(replicas=2)
        before = self.res_path.read_text()
        for force in (False, True):
            exc = self.assertRaises(connector.DRBDReplicaHere,
                                    conn.disconnect_volume,
                                    {'name': RES}, None, force=force)
            self.assertIn('holds a replica', str(exc))
        self.assertEqual(before, self.res_path.read_text())
        self.assertEqual([], self.fake.commands('drbdadm', 'down'))

    def test_adjust_failure_is_undone(self):
        def adjust(name):
            raise processutils.ProcessExecutionError(
                exit_code=10, stderr='Failure: (162) Invalid configuration')

        self.fake._adjust = adjust
        exc = self.assertRaises(connector.DRBDConnectorError,
                                self.conn.connect_volume, props())
        self.assertIn('Invalid configuration', str(exc))
        self.assertFalse(self.res_path.exists())

    def test_bad_res_text_is_refused_and_nothing_written(self):
        bad = props(config=res_text().replace('node-id 2;', 'node-id 2'))
        exc = self.assertRaises(connector.DRBDConnectorError,
                                self.conn.connect_volume, bad)
        self.assertIn('refused', str(exc))
        self.assertEqual([], list(self.resource_dir.iterdir()))
        self.assertEqual([], self.fake.commands('drbdadm', 'adjust'))

    def test_res_for_another_host_is_refused(self):
        other = props(config=res_text(client='hv2'))
        self.assertRaises(connector.DRBDConnectorError,
                          self.conn.connect_volume, other)
        self.assertFalse(self.res_path.exists())

    @ddt.data(None, '', 'short', 'has space in it 1234567',
              'x' * (protocol.SECRET_MAX_LEN + 1))
    def test_bad_secret_is_refused_without_echo(self, secret):
        exc = self.assertRaises(brick_exception.InvalidParameterValue,
                                self.conn.connect_volume,
                                props(provider_auth=secret))
        if secret:
            self.assertNotIn(secret, str(exc))
        self.assertFalse(self.res_path.exists())

    @ddt.data(None, '', '../etc', 'a b', '-x')
    def test_bad_name_is_refused(self, name):
        properties = props()
        properties['name'] = name
        self.assertRaises(brick_exception.InvalidParameterValue,
                          self.conn.connect_volume, properties)
        self.assertEqual([], self.fake.calls)

    def test_missing_config_is_refused(self):
        self.assertRaises(brick_exception.InvalidParameterValue,
                          self.conn.connect_volume, props(config=None))


ConnectVolumeTestCase = ddt.ddt(ConnectVolumeTestCase)


@ddt.ddt
class DisconnectVolumeTestCase(ConnectorTestCase):

    def setUp(self):
        super().setUp()
        self.device_info = self.conn.connect_volume(props())
        self.fake.calls.clear()

    def test_disconnect(self):
        self.conn.disconnect_volume(props(), self.device_info)
        self.assertEqual(1, len(self.fake.commands('drbdadm', 'down')))
        self.assertNotIn(RES, self.fake.resources)
        self.assertFalse(self.res_path.exists())
        self.assertFalse(self.fake.device(RES).exists())

    def test_disconnect_is_idempotent(self):
        self.conn.disconnect_volume(props(), self.device_info)
        self.fake.calls.clear()
        self.conn.disconnect_volume(props(), self.device_info)
        self.assertEqual([], self.fake.commands('drbdadm'))
        self.assertEqual([], self.fake.commands('drbdsetup', 'down'))

    def test_disconnect_from_a_fresh_connector(self):
        self.make_connector().disconnect_volume({'name': RES}, None)
        self.assertFalse(self.res_path.exists())
        self.assertNotIn(RES, self.fake.resources)

    @ddt.data({'open': True}, {'open': 'yes'}, {'role': 'Primary'})
    def test_disconnect_refused_while_in_use(self, in_use):
        state = self.fake.resources[RES]
        if 'role' in in_use:
            state['role'] = in_use['role']
        else:
            state['devices'][0]['open'] = in_use['open']
        exc = self.assertRaises(connector.DRBDDeviceInUse,
                                self.conn.disconnect_volume, props(),
                                self.device_info)
        self.assertIsInstance(exc, brick_exception.BrickException)
        self.assertIn('in use', str(exc))
        self.assertIn('force', str(exc))
        self.assertEqual([], self.fake.commands('drbdadm', 'down'))
        self.assertTrue(self.res_path.exists())
        self.assertIn(RES, self.fake.resources)

    def test_not_open_is_not_in_use(self):
        self.fake.resources[RES]['devices'][0]['open'] = False
        self.conn.disconnect_volume(props(), self.device_info)
        self.assertFalse(self.res_path.exists())

    def test_force_disconnect_while_primary(self):
        self.fake.resources[RES]['role'] = 'Primary'
        self.conn.disconnect_volume(props(), self.device_info, force=True)
        self.assertEqual(1, len(self.fake.commands('drbdadm', 'down')))
        self.assertNotIn(RES, self.fake.resources)
        self.assertFalse(self.res_path.exists())

    def test_force_disconnect_held_open_raises_after_cleanup(self):
        self.fake.resources[RES]['devices'][0]['open'] = True
        self.fake.held_open.add(RES)
        exc = self.assertRaises(connector.DRBDConnectorError,
                                self.conn.disconnect_volume, props(),
                                self.device_info, force=True)
        self.assertIn('held open', str(exc))
        self.assertIn('incomplete', str(exc))
        # Every step was tried: the .res is gone (no return at reboot).
        self.assertFalse(self.res_path.exists())

    def test_force_ignore_errors(self):
        self.fake.held_open.add(RES)
        self.fake.resources[RES]['role'] = 'Primary'
        self.conn.disconnect_volume(props(), self.device_info, force=True,
                                    ignore_errors=True)
        self.assertFalse(self.res_path.exists())
        self.assertIn('Ignoring errors', self.log.output)

    def test_failed_down_without_force_keeps_the_res(self):
        self.fake.held_open.add(RES)     # open, but not reported as open
        exc = self.assertRaises(connector.DRBDConnectorError,
                                self.conn.disconnect_volume, props(),
                                self.device_info)
        self.assertIn('held open', str(exc))
        self.assertTrue(self.res_path.exists())

    def test_down_reported_failed_but_resource_gone_is_fine(self):
        def down(name):
            self.fake.resources.pop(name, None)
            raise processutils.ProcessExecutionError(
                exit_code=10, stderr=f'{name}: No such resource')

        self.fake._down = down
        self.conn.disconnect_volume(props(), self.device_info)
        self.assertFalse(self.res_path.exists())

    def test_up_without_res_uses_drbdsetup_down(self):
        self.res_path.unlink()
        self.conn.disconnect_volume(props(), self.device_info)
        self.assertEqual([['drbdsetup', 'down', RES]],
                         self.fake.commands('drbdsetup', 'down'))
        self.assertNotIn(RES, self.fake.resources)

    def test_unreadable_status_still_tries_down(self):
        self.fake.status_text = 'garbage'
        self.conn.disconnect_volume(props(), self.device_info)
        self.assertEqual(1, len(self.fake.commands('drbdadm', 'down')))
        self.assertFalse(self.res_path.exists())

    def test_res_left_but_resource_down(self):
        self.fake.resources.clear()
        self.conn.disconnect_volume(props(), self.device_info)
        self.assertEqual([], self.fake.commands('drbdadm', 'down'))
        self.assertFalse(self.res_path.exists())


@ddt.ddt
class CheckValidDeviceTestCase(ConnectorTestCase):

    def setUp(self):
        super().setUp()
        self.path = str(self.fake.device(RES))

    def check(self, state, path=None):
        self.fake.resources[RES] = state
        return self.conn.check_valid_device(path or self.path)

    @ddt.data(
        ('healthy diskless client', status(), True),
        ('one peer up to date', status(peers=[
            peer('store1', 0), peer('store2', 1, connection='Connecting',
                                    disk='DUnknown')]), True),
        ('diskful node alone', status(disk='UpToDate', client=False,
                                      peers=[]), True),
        ('quorum not reported', status(quorum=None), True),
        ('no quorum', status(quorum=False), False),
        ('quorum "no" word', status(quorum='no'), False),
        ('no peer up to date', status(peers=[
            peer('store1', 0, disk='Outdated'),
            peer('store2', 1, disk='Inconsistent')]), False),
        ('no peers', status(peers=[]), False),
        ('local disk inconsistent', status(disk='Inconsistent',
                                           client=False, peers=[]), False),
    )
    @ddt.unpack
    def test_check_valid_device(self, _case, state, expected):
        if state['devices'][0]['quorum'] is None:
            del state['devices'][0]['quorum']
        self.assertIs(expected, self.check(state))

    def test_never_opens_the_device(self):
        self.check(status())
        programs = {os.path.basename(c[0]) for c in self.fake.calls}
        self.assertEqual({'drbdsetup'}, programs)

    def test_resource_not_up(self):
        self.assertFalse(self.conn.check_valid_device(self.path))

    def test_other_resource_up(self):
        self.fake.resources['volume-other'] = status(name='volume-other')
        self.assertFalse(self.conn.check_valid_device(self.path))

    def test_by_minor(self):
        self.assertTrue(self.check(status(), f'/dev/drbd{MINOR}'))
        self.assertFalse(self.check(status(), f'/dev/drbd{MINOR + 1}'))

    def test_by_link_to_minor(self):
        link = self.tmp / 'link'
        link.symlink_to(f'/dev/drbd{MINOR}')
        self.assertTrue(self.check(status(), str(link)))

    def test_unrelated_path(self):
        self.assertFalse(self.check(status(), '/dev/sda'))

    @ddt.data('garbage', '{"name": ', '"a string"', '[1, 2]', '')
    def test_malformed_status(self, text):
        self.fake.resources[RES] = status()
        self.fake.status_text = text
        self.assertFalse(self.conn.check_valid_device(self.path))

    def test_drbdsetup_fails(self):
        self.fake.resources[RES] = status()
        self.fake.status_error = 20
        self.assertFalse(self.conn.check_valid_device(self.path))
        self.assertIn('modprobe', self.log.output)


class ExtendVolumeTestCase(ConnectorTestCase):
    """Not offered: nothing calls it (online_extend_support is False)."""

    def test_refused_and_runs_nothing(self):
        self.conn.connect_volume(props())
        self.fake.calls.clear()
        self.assertRaises(NotImplementedError, self.conn.extend_volume,
                          props())
        self.assertEqual([], self.fake.calls)


class RealExecutorTestCase(ConnectorTestCase):
    """The connector on the agent's own executor, as blackstor-node runs it.

    That executor raises its ProcessFailed, not processutils'
    ProcessExecutionError; a ``drbdsetup`` on PATH answers as DRBD does
    for a resource that is not up (exit 10, "No such resource").
    """

    def setUp(self):
        super().setUp()
        bindir = self.tmp / 'bin'
        bindir.mkdir()
        script = bindir / 'drbdsetup'
        script.write_text('#!/bin/sh\necho "$4: No such resource" >&2\n'
                          'exit 10\n')
        script.chmod(0o755)
        self.useFixture(fixtures.EnvironmentVariable(
            'PATH', f'{bindir}:{os.environ["PATH"]}'))

    def make_connector(self, **kwargs):
        return super().make_connector(
            root_helper=None, execute=executor.default_execute, **kwargs)

    def test_status_of_a_resource_not_up(self):
        self.assertEqual((None, client.NOT_UP), self.conn.client.status(RES))

    def test_disconnect_of_a_resource_not_running_is_a_no_op(self):
        self.conn.disconnect_volume({'name': RES}, None)
        self.assertFalse(self.res_path.exists())

    def test_check_valid_device_is_false_without_status(self):
        self.assertFalse(self.conn.check_valid_device(
            str(self.device_root / 'drbd' / 'by-res' / RES / '0')))


class PathsTestCase(ConnectorTestCase):

    def test_search_path(self):
        self.assertEqual(str(self.device_root / 'drbd' / 'by-res'),
                         self.conn.get_search_path())

    def test_volume_paths(self):
        self.assertEqual([], self.conn.get_volume_paths(props()))
        device = self.conn.connect_volume(props())
        self.assertEqual([device['path']],
                         self.conn.get_volume_paths(props()))

    def test_all_available_volumes(self):
        self.assertEqual([], self.conn.get_all_available_volumes())
        first = self.conn.connect_volume(props())['path']
        other = 'volume-other'
        second = self.conn.connect_volume(
            {'name': other, 'config': res_text(other, MINOR + 1, 7001),
             'provider_auth': SECRET})['path']
        (self.device_root / 'drbd' / 'by-res' / 'half-gone').mkdir()
        self.assertEqual(sorted([first, second]),
                         self.conn.get_all_available_volumes())

    def test_is_an_os_brick_linux_connector(self):
        self.assertIsInstance(self.conn, brick_connectors.base
                              .BaseLinuxConnector)
        self.assertEqual(NODE, self.conn.node_name)

    def test_default_node_name_is_uname(self):
        conn = connector.DRBDConnector(ROOT_HELPER, execute=self.fake)
        self.assertEqual(os.uname().nodename, conn.node_name)

    def test_entry_point(self):
        from importlib import metadata
        points = metadata.entry_points(group='os_brick.connectors')
        loaded = [p.load() for p in points if p.name == 'DRBD']
        self.assertEqual([connector.DRBDConnector], loaded)


class ConnectorPropertiesTestCase(base.TestCase):

    VERSION_OUTPUT = ('DRBDADM_BUILDTAG=GIT-hash:\\ 409097fe\n'
                      'DRBDADM_API_VERSION=2\n'
                      'DRBD_KERNEL_VERSION_CODE=0x090208\n'
                      'DRBD_KERNEL_VERSION=9.2.8\n'
                      'DRBDADM_VERSION_CODE=0x091c00\n'
                      'DRBDADM_VERSION=9.28.0\n')

    def setUp(self):
        super().setUp()
        self.tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.proc = mock.patch.object(connector, '_proc_drbd_version',
                                      return_value=None)
        self.proc_mock = self.proc.start()
        self.addCleanup(self.proc.stop)

    def properties(self, output=VERSION_OUTPUT, **kwargs):
        execute = mock.Mock(return_value=(output, ''))
        result = connector.DRBDConnector.get_connector_properties(
            ROOT_HELPER, execute=execute, **kwargs)
        execute.assert_called_once_with('drbdadm', '--version',
                                        check_exit_code=False)
        return result

    def test_properties(self):
        self.assertEqual({'drbd_node_name': 'hv7',
                          'drbd_utils_version': '9.28.0',
                          'drbd_kernel_version': '9.2.8',
                          'drbd_address': '192.0.2.7'},
                         self.properties(node_name='hv7',
                                         drbd_address='192.0.2.7'))

    def test_defaults(self):
        result = self.properties(multipath=False, enforce_multipath=False)
        self.assertEqual(os.uname().nodename, result['drbd_node_name'])
        self.assertIsNone(result['drbd_address'])

    def test_no_kernel_module(self):
        output = self.VERSION_OUTPUT.replace('0x090208', '0x000000').replace(
            '=9.2.8', '=0')
        self.assertIsNone(self.properties(output)['drbd_kernel_version'])

    def test_proc_drbd_wins(self):
        self.proc_mock.return_value = '9.2.12'
        self.assertEqual('9.2.12',
                         self.properties()['drbd_kernel_version'])

    def test_bad_address(self):
        self.assertRaises(protocol.ProtocolError, self.properties,
                          drbd_address='hv1.example.com')

    def test_drbdadm_missing(self):
        execute = mock.Mock(side_effect=OSError(2, 'No such file'))
        result = connector.DRBDConnector.get_connector_properties(
            ROOT_HELPER, execute=execute)
        self.assertIsNone(result['drbd_utils_version'])

    def test_real_drbdadm(self):
        result = connector.DRBDConnector.get_connector_properties(
            ROOT_HELPER)
        self.assertRegex(result['drbd_utils_version'], r'^9\.\d+\.\d+')

    def test_proc_drbd_parsing(self):
        self.proc.stop()
        proc = self.tmp / 'drbd'
        proc.write_text('version: 9.2.8 (api:2/proto:86-122)\n'
                        'GIT-hash: e163b05a build by root, 2024-01-01\n'
                        'Transports (api:20): tcp (9.2.8)\n')
        self.assertEqual('9.2.8', connector._proc_drbd_version(str(proc)))
        self.assertIsNone(connector._proc_drbd_version(
            str(self.tmp / 'missing')))
        self.proc.start()


@ddt.ddt
class ParseStatusTestCase(base.TestCase):

    def test_full_status(self):
        state = drbdstatus.parse_status(json.dumps([status()]))[RES]
        self.assertEqual('Secondary', state.role)
        self.assertEqual('Diskless', state.disk)
        self.assertTrue(state.client)
        self.assertTrue(state.quorum)
        self.assertIsNone(state.open)
        self.assertEqual(MINOR, state.minor)
        self.assertEqual(['store1', 'store2'],
                         [p.name for p in state.up_to_date_peers])
        self.assertFalse(state.in_use)

    def test_old_and_new_field_names(self):
        res = {'name': RES, 'role': 'Secondary',
               'devices': [{'volume': 0, 'disk': 'Diskless',
                            'quorum': 'yes', 'open': 'no'}],
               'connections': [{'name': 'store1', 'connection': 'Connected',
                                'peer-devices': [{'volume': 0,
                                                  'peer-disk': 'UpToDate'}]}]}
        state = drbdstatus.parse_status(json.dumps(res))[RES]
        self.assertTrue(state.quorum)
        self.assertIs(False, state.open)
        self.assertEqual('Connected', state.peers[0].connection)
        self.assertEqual(['store1'],
                         [p.name for p in state.up_to_date_peers])

    def test_missing_keys(self):
        state = drbdstatus.parse_status(json.dumps([{'name': RES}]))[RES]
        self.assertIsNone(state.disk)
        self.assertIsNone(state.quorum)
        self.assertEqual([], state.peers)
        self.assertFalse(state.has_usable_disk)
        self.assertIn('quorum not reported', state.describe())
        self.assertIn('peers: none', state.describe())

    def test_wrong_types_are_ignored(self):
        res = {'name': RES, 'role': 7, 'devices': 'x',
               'connections': [None, 'y', {'peer_devices': 'z',
                                           'peer-node-id': 'one'}]}
        state = drbdstatus.parse_status(json.dumps([res, 'junk']))[RES]
        self.assertIsNone(state.role)
        self.assertEqual(1, len(state.peers))
        self.assertIsNone(state.peers[0].node_id)
        self.assertIsNone(state.peers[0].disk)

    def test_picks_volume_zero(self):
        res = status()
        res['devices'].insert(0, dict(res['devices'][0], volume=1,
                                      **{'disk-state': 'Failed'}))
        state = drbdstatus.parse_status(json.dumps([res]))[RES]
        self.assertEqual('Diskless', state.disk)

    @ddt.data('', 'not json', '"text"', '42', 'null')
    def test_not_status(self, text):
        self.assertRaises(ValueError, drbdstatus.parse_status, text)

    def test_empty_list(self):
        self.assertEqual({}, drbdstatus.parse_status('[]'))
