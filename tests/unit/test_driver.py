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
"""The Cinder adapter, on a fake agent cluster."""

import inspect
import uuid
from unittest import mock

from cinder import context
from cinder import exception
from cinder import objects
from cinder.tests.unit import fake_snapshot
from cinder.tests.unit import fake_volume
from cinder.volume import configuration
from cinder.volume import manager
import ddt
from oslo_config import cfg
from oslo_config import fixture as config_fixture

objects.register_all()

from blackstor_cinder.cluster import core  # noqa: E402
from blackstor_cinder.cluster import transport as tp  # noqa: E402
from blackstor_cinder import driver  # noqa: E402
from blackstor_cinder import options  # noqa: E402
from blackstor_cinder import protocol  # noqa: E402
from tests.unit.cluster import fakes  # noqa: E402
from tests.unit import base  # noqa: E402

G = 1 << 30
BACKEND = 'blackstor-test'
#: the logger of the stats and the repairs they trigger
STATS_LOG = 'blackstor_cinder.driver_stats'


def interface_functions(iface):
    """Every function an interface class declares (not ismethod: FACTS)."""
    return {name for name, member in vars(iface).items()
            if inspect.isfunction(member) and not name.startswith('__')}


class ComplianceTest(base.TestCase):
    """What Cinder's `tox -e compliance` checks, made to mean something."""

    def test_implements_volume_driver_core(self):
        from cinder.interface import volume_driver
        missing, stubs = [], []
        for name in sorted(interface_functions(
                volume_driver.VolumeDriverCore)):
            impl = getattr(driver.BlackStorDriver, name, None)
            if isinstance(impl, property):
                impl = impl.fget
            if impl is None:
                missing.append(name)
                continue
            source = inspect.getsource(impl)
            if 'raise NotImplementedError' in source:
                stubs.append(name)
        self.assertEqual([], missing)
        self.assertEqual([], stubs)

    def test_also_snapshot_revert_and_extend_are_our_own(self):
        for name in ('create_snapshot', 'delete_snapshot',
                     'create_volume_from_snapshot', 'create_cloned_volume',
                     'revert_to_snapshot', 'extend_volume',
                     'initialize_connection', 'terminate_connection'):
            self.assertIn(name, vars(driver.BlackStorDriver), name)

    def test_metadata(self):
        drv = driver.BlackStorDriver
        self.assertTrue(drv.VERSION)
        self.assertIn(drv.VERSION, drv.__doc__)
        self.assertTrue(drv.CI_WIKI_NAME)
        self.assertTrue(drv.SUPPORTS_ACTIVE_ACTIVE)
        self.assertEqual(options.blackstor_opts, drv.get_driver_options())
        names = {o.name for o in drv.get_driver_options()}
        self.assertTrue(all(n.startswith('blackstor_') for n in names))


class DriverTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.ctxt = context.get_admin_context()
        self.conf_fixture = self.useFixture(config_fixture.Config(cfg.CONF))
        self.configuration = configuration.Configuration(
            driver.driver.volume_opts, config_group=BACKEND)
        self.configuration.append_config_values(options.blackstor_opts)
        self.config(blackstor_storage_nodes=['n1', 'n2', 'n3'],
                    blackstor_client_nodes=['hv1'],
                    blackstor_ssh_addresses={'n1': '192.0.2.1',
                                             'n2': '192.0.2.2:2222',
                                             'n3': '[2001:db8::3]:22',
                                             'hv1': '192.0.2.9'},
                    blackstor_replication_addresses={'n3': '192.0.2.3',
                                                     'n1': '192.0.2.1'},
                    blackstor_node_zones={'n1': 'a', 'n2': 'b', 'n3': 'c'},
                    blackstor_pool='vg/pool', volume_backend_name=BACKEND)
        self.cluster = fakes.FakeCluster()
        for name in ('n1', 'n2', 'n3'):
            self.cluster.add(name, pool_bytes=100 * G)
        self.cluster.add('hv1', pool=None)
        self.cluster.add('hv2', pool=None)
        self.mock_object = mock.patch.object
        patcher = mock.patch.object(driver, '_coordination_lock',
                                    core.LocalLocks())
        patcher.start()
        self.addCleanup(patcher.stop)
        self.drv = self.make_driver()

    def config(self, **kwargs):
        for key, value in kwargs.items():
            self.conf_fixture.config(group=BACKEND, **{key: value})

    def make_driver(self):
        drv = driver.BlackStorDriver(configuration=self.configuration)
        with mock.patch.object(driver.backend, 'transport_factory',
                               return_value=self.cluster.transport_for):
            drv.do_setup(self.ctxt)
        drv.controller.config = drv.controller.config.__class__(
            **{**drv.controller.config.__dict__, 'connect_timeout': 1.0})
        drv.controller.poll_interval = 0.01
        self.addCleanup(drv.controller.close)
        return drv

    def volume(self, size=1, **specs):
        vtype = fake_volume.fake_volume_type_obj(self.ctxt,
                                                 extra_specs=specs)
        vol = fake_volume.fake_volume_obj(
            self.ctxt, size=size, volume_type_id=vtype.id,
            id=str(uuid.uuid4()))
        vol.volume_type = vtype
        return vol


class SetupTest(DriverTestCase):

    def test_nodes_from_config(self):
        nodes = {n.name: n for n in self.drv.controller.config.storage_nodes}
        self.assertEqual(('192.0.2.2', 2222),
                         (nodes['n2'].ssh_host, nodes['n2'].ssh_port))
        self.assertEqual('2001:db8::3', nodes['n3'].ssh_host)
        self.assertEqual('192.0.2.3', nodes['n3'].replication_address)
        self.assertEqual('a', nodes['n1'].zone)
        self.assertEqual(range(1000, 20000),
                         self.drv.controller.config.minors)

    def test_local_transport_needs_replication_address(self):
        self.config(blackstor_ssh_addresses={'n1': 'local',
                                             'n2': '192.0.2.2',
                                             'n3': '192.0.2.3',
                                             'hv1': '192.0.2.9'},
                    blackstor_replication_addresses={})
        drv = driver.BlackStorDriver(configuration=self.configuration)
        exc = self.assertRaises(exception.InvalidInput, drv.do_setup,
                                self.ctxt)
        self.assertIn('n1', str(exc))
        self.config(blackstor_replication_addresses={'n1': '192.0.2.1'})
        drv.do_setup(self.ctxt)
        self.assertIsNone(drv.controller.config.storage_nodes[0].ssh_host)

    def test_bad_ranges_and_names(self):
        for opts in ({'blackstor_minor_range': '2000-1000'},
                     {'blackstor_replication_addresses': {
                         'n3': '2001:db8::3'}},
                     {'blackstor_port_range': '80-90'},
                     {'blackstor_storage_nodes': ['bad name']},
                     {'blackstor_storage_nodes': []}):
            self.config(**opts)
            drv = driver.BlackStorDriver(configuration=self.configuration)
            self.assertRaises((exception.InvalidInput, ValueError),
                              drv.do_setup, self.ctxt)
            self.conf_fixture.cleanUp()
            self.conf_fixture.setUp()
            self.setUp_config_again()

    def test_configuration_that_cannot_work_is_refused(self):
        for opts, option in (({'blackstor_max_peers': 3}, 'max_peers'),
                             ({'blackstor_quorum': 'off'}, 'quorum')):
            self.config(**opts)
            drv = driver.BlackStorDriver(configuration=self.configuration)
            exc = self.assertRaises(exception.InvalidInput, drv.do_setup,
                                    self.ctxt)
            self.assertIn(f'blackstor_{option} = ', str(exc))
            self.assertIsNone(drv.controller)
            self.conf_fixture.cleanUp()
            self.conf_fixture.setUp()
            self.setUp_config_again()

    def test_two_replicas_start_with_a_warning(self):
        # two storage nodes: no third one for a tiebreaker
        self.config(blackstor_replicas=2,
                    blackstor_storage_nodes=['n1', 'n2'])
        with self.assertLogs('blackstor_cinder.driver', 'WARNING') as logs:
            drv = self.make_driver()
        self.assertIsNotNone(drv.controller)
        self.assertIn(f'BlackStor backend {BACKEND}: blackstor_replicas = 2 '
                      'and no tiebreaker', logs.output[0])

    def setUp_config_again(self):
        self.config(blackstor_storage_nodes=['n1', 'n2', 'n3'],
                    blackstor_ssh_addresses={'n1': '192.0.2.1',
                                             'n2': '192.0.2.2',
                                             'n3': '192.0.2.3'},
                    blackstor_pool='vg/pool')

    def test_check_for_setup_error_asks_no_node(self):
        self.cluster.requests.clear()
        self.drv.check_for_setup_error()
        self.assertEqual([], self.cluster.requests)

    def test_start_up_with_fewer_nodes_than_replicas(self):
        # 3 replicas by default, 2 of 3 storage nodes down: the backend
        # starts, the stats say which nodes are down and what still fits.
        self.assertEqual(3, self.drv.controller.config.replicas)
        self.cluster.down.update({'n2', 'n3'})
        self.drv.check_for_setup_error()
        with self.assertLogs(STATS_LOG, 'WARNING') as logs:
            stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(['n2', 'n3'], stats['blackstor_nodes_down'])
        self.assertEqual(1, stats['blackstor_capacity_replicas'])
        self.assertIn('n2, n3', logs.output[0])

    def test_one_node_down_at_start_up_leaves_the_rest_working(self):
        # Before the node went down: a volume on every node, one on two.
        everywhere, two = self.volume(), self.volume(**{
            driver.SPEC_REPLICAS: '2'})
        self.drv.create_volume(everywhere)
        self.cluster.down.add('n3')
        self.drv.create_volume(two)
        self.drv = self.make_driver()       # cinder-volume restarts
        self.drv.check_for_setup_error()
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(['n3'], stats['blackstor_nodes_down'])
        for vol in (everywhere, two):
            self.drv.initialize_connection(vol, {'host': 'hv1'})
            self.assertIn(vol.name, self.cluster.agents['hv1'].res)
            self.drv.terminate_connection(vol, {'host': 'hv1'})
            self.assertNotIn(vol.name, self.cluster.agents['hv1'].res)
        self.drv.delete_volume(two)
        self.assertNotIn(two.name, self.cluster.agents['n1'].lvs)
        placed = self.volume(**{driver.SPEC_REPLICAS: '2'})
        self.drv.create_volume(placed)
        self.assertIn(placed.name, self.cluster.agents['n1'].lvs)
        # what cannot be placed now is refused by the create, naming why
        exc = self.assertRaises(exception.VolumeBackendAPIException,
                                self.drv.create_volume, self.volume())
        self.assertIn('only 2 storage nodes', str(exc))

    def test_a_node_on_an_old_drbd_is_refused_in_the_stats(self):
        self.cluster.agents['n3'].kernel_version = '9.2.13'
        self.drv.check_for_setup_error()
        with self.assertLogs(STATS_LOG, 'WARNING') as logs:
            stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(['n3'], stats['blackstor_nodes_refused'])
        self.assertIn('n3', logs.output[0])
        self.assertIn('DRBD kernel module 9.2.13 is older than 9.2.14',
                      logs.output[0])

    def test_stats_name_a_node_that_cannot_serve(self):
        why = ('this node cannot serve: LVM would scan DRBD devices; set '
               'global_filter in the devices section of lvm.conf')
        self.cluster.faults[('n3', 'inventory')] = tp.NodeError(
            'n3', protocol.E_MISSING, why)
        self.drv.check_for_setup_error()
        with self.assertLogs(STATS_LOG, 'WARNING') as logs:
            stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(['n3'], stats['blackstor_nodes_refused'])
        self.assertEqual([], stats['blackstor_nodes_down'])
        self.assertIn('n3', logs.output[0])
        self.assertIn('lvm.conf', logs.output[0])


@ddt.ddt
class OtherBackendsTest(DriverTestCase):
    """Start-up compares the ranges with the other BlackStor backends."""

    OTHER = 'blackstor-other'

    def other(self, driver_path='blackstor_cinder.driver.BlackStorDriver',
              **options_):
        conf = configuration.Configuration(manager.volume_backend_opts,
                                           config_group=self.OTHER)
        conf.append_config_values(options.blackstor_opts)
        self.conf_fixture.config(enabled_backends=[BACKEND, self.OTHER])
        values = {'volume_driver': driver_path,
                  'blackstor_storage_nodes': ['m1', 'm2', 'm3'],
                  **options_}
        for key, value in values.items():
            self.conf_fixture.config(group=self.OTHER, **{key: value})

    def test_default_ranges_of_two_backends_refused(self):
        self.other()
        self.cluster.requests.clear()
        exc = self.assertRaises(exception.InvalidInput,
                                self.drv.check_for_setup_error)
        message = str(exc)
        for part in (f'[{BACKEND}] blackstor_minor_range 1000-19999',
                     f'[{self.OTHER}] blackstor_minor_range 1000-19999',
                     f'[{BACKEND}] blackstor_port_range 7000-7999',
                     f'[{self.OTHER}] blackstor_port_range 7000-7999',
                     'accept unlisted clients'):
            self.assertIn(part, message)
        self.assertEqual([], self.cluster.requests)

    def test_a_shared_listed_hypervisor_is_named(self):
        self.config(blackstor_allow_unlisted_clients=False)
        self.other(blackstor_client_nodes=['hv1'],
                   blackstor_allow_unlisted_clients=False,
                   blackstor_minor_range='20000-29999')
        exc = self.assertRaises(exception.InvalidInput,
                                self.drv.check_for_setup_error)
        self.assertIn('both list hv1', str(exc))
        self.assertIn('blackstor_port_range', str(exc))
        self.assertNotIn('blackstor_minor_range 20000', str(exc))

    @ddt.data(
        # disjoint ranges
        dict(blackstor_minor_range='20000-29999',
             blackstor_port_range='8000-8999'),
        # hosts that never meet
        dict(blackstor_client_nodes=['hv2'],
             blackstor_allow_unlisted_clients=False))
    def test_accepted(self, options_):
        self.config(blackstor_allow_unlisted_clients=False)
        self.other(**options_)
        self.drv.check_for_setup_error()

    def test_other_drivers_are_not_compared(self):
        self.other(driver_path='cinder.volume.drivers.lvm.LVMVolumeDriver')
        self.drv.check_for_setup_error()

    def test_an_invalid_other_backend_is_left_to_its_own_start(self):
        self.other(blackstor_minor_range='9-1')
        with self.assertLogs('blackstor_cinder.driver', 'WARNING') as logs:
            self.drv.check_for_setup_error()
        self.assertIn(self.OTHER, logs.output[0])
        self.assertIn('blackstor_minor_range', logs.output[0])


@ddt.ddt
class VolumeTest(DriverTestCase):

    def test_create_delete_uses_name_id(self):
        vol = self.volume(size=2)
        vol._name_id = 'b5f1a2c4-0000-4000-8000-000000000001'
        self.drv.create_volume(vol)
        self.assertEqual(f'volume-{vol._name_id}', vol.name)
        for name in ('n1', 'n2', 'n3'):
            self.assertEqual(2 * G, self.cluster.agents[name].lvs[vol.name])
        self.drv.delete_volume(vol)
        self.assertEqual({}, self.cluster.clean())
        self.drv.delete_volume(vol)

    @ddt.data(('1', 1), ('2', 2), ('3', 3))
    @ddt.unpack
    def test_replicas_extra_spec(self, spec, count):
        vol = self.volume(**{'blackstor:replicas': spec})
        self.drv.create_volume(vol)
        holders = [n for n, a in self.cluster.agents.items()
                   if vol.name in a.lvs]
        self.assertEqual(count, len(holders))

    @ddt.data('0', '9', 'three')
    def test_bad_replicas_extra_spec(self, spec):
        vol = self.volume(**{'blackstor:replicas': spec})
        self.assertRaises(exception.InvalidVolumeType,
                          self.drv.create_volume, vol)
        self.assertEqual({}, self.cluster.clean())

    def test_bad_zones_extra_spec(self):
        vol = self.volume(**{'blackstor:zones': 'nearby'})
        self.assertRaises(exception.InvalidVolumeType,
                          self.drv.create_volume, vol)

    def test_too_large_is_backend_error_and_leaves_nothing(self):
        vol = self.volume(size=100 * 20 + 1)
        exc = self.assertRaises(exception.VolumeBackendAPIException,
                                self.drv.create_volume, vol)
        self.assertIn('largest volume', str(exc))
        self.assertEqual({}, self.cluster.clean())

    def test_failure_on_third_node_rolls_back(self):
        from blackstor_cinder.cluster import transport as tp
        self.cluster.faults[('n3', 'create')] = tp.NodeUnreachable(
            'n3', 'connection reset')
        self.assertRaises(exception.VolumeBackendAPIException,
                          self.drv.create_volume, self.volume())
        self.assertEqual({}, self.cluster.clean())

    def volume_with_snapshot(self):
        vol = self.volume(size=1)
        self.drv.create_volume(vol)
        snap = fake_snapshot.fake_snapshot_obj(self.ctxt, volume_size=1)
        snap.volume = vol
        self.drv.create_snapshot(snap)
        return vol, snap

    def test_snapshot_flows(self):
        vol, snap = self.volume_with_snapshot()
        self.assertTrue(snap.name.startswith('snapshot-'))
        self.assertEqual({f'snap-{snap.id}'},
                         set(self.cluster.agents['n1'].snapshots))
        new = self.volume(size=2)
        self.drv.create_volume_from_snapshot(new, snap)
        self.assertEqual(2 * G, self.cluster.agents['n2'].lvs[new.name])
        self.drv.revert_to_snapshot(self.ctxt, vol, snap)
        self.drv.delete_snapshot(snap)
        self.assertEqual({}, self.cluster.agents['n1'].snapshots)

    def test_snapshot_delete_with_a_node_down_that_holds_no_replica(self):
        vol = self.volume(size=1, **{driver.SPEC_REPLICAS: '2'})
        self.drv.create_volume(vol)
        snap = fake_snapshot.fake_snapshot_obj(self.ctxt, volume_size=1)
        snap.volume = vol
        self.drv.create_snapshot(snap)
        holders = sorted(n for n, a in self.cluster.agents.items()
                         if f'snap-{snap.id}' in a.snapshots)
        other = ({'n1', 'n2', 'n3'} - set(holders)).pop()
        self.cluster.down.add(other)
        with self.assertLogs('blackstor_cinder.cluster.snapshots',
                             'WARNING') as logs:
            self.drv.delete_snapshot(snap)
        for node in holders:
            self.assertEqual({}, self.cluster.agents[node].snapshots)
        self.assertIn(other, logs.output[0])
        self.assertIn('best effort', logs.output[0])
        # a replica of the volume down: refused, naming it
        self.drv.create_snapshot(snap)
        self.cluster.down = {holders[0]}
        exc = self.assertRaises(exception.VolumeBackendAPIException,
                                self.drv.delete_snapshot, snap)
        self.assertIn(holders[0], str(exc))

    def test_a_node_lost_during_a_revert_is_a_backend_error_naming_it(self):
        vol, snap = self.volume_with_snapshot()
        self.cluster.faults[('n1', 'status')] = [None, tp.NodeUnreachable(
            'n1', 'connection to 192.0.2.1:22 lost during the request')]
        exc = self.assertRaises(exception.VolumeBackendAPIException,
                                self.drv.revert_to_snapshot, self.ctxt, vol,
                                snap)
        self.assertIn('n1: connection to 192.0.2.1:22 lost', str(exc))

    def test_a_node_error_escaping_the_controller_is_still_mapped(self):
        vol = self.volume(size=1)
        self.drv.create_volume(vol)
        with mock.patch.object(self.drv.controller, 'extend_volume',
                               side_effect=tp.NodeUnreachable('n2',
                                                              'no route')):
            exc = self.assertRaises(exception.VolumeBackendAPIException,
                                    self.drv.extend_volume, vol, 2)
        self.assertIn('n2: no route', str(exc))

    def test_clone_and_extend(self):
        src = self.volume(size=1)
        self.drv.create_volume(src)
        clone = self.volume(size=1)
        self.drv.create_cloned_volume(clone, src)
        self.drv.extend_volume(clone, 3)
        self.assertEqual(3 * G, self.cluster.agents['n3'].lvs[clone.name])
        self.assertEqual({}, self.cluster.agents['n3'].snapshots)
        # nothing below Cinder's size (the old one) may be zeroed
        drbd = [r for _n, r in self.cluster.requests
                if r['op'] == 'resize' and r.get('drbd')]
        self.assertEqual(1 * G, drbd[-1]['zero_from'])


@ddt.ddt
class ConnectionTest(DriverTestCase):

    def setUp(self):
        super().setUp()
        self.vol = self.volume()
        self.drv.create_volume(self.vol)

    def test_initialize_connection_is_local_without_secret(self):
        info = self.drv.initialize_connection(
            self.vol, {'host': 'hv1', 'ip': '192.0.2.9'})
        self.assertEqual('local', info['driver_volume_type'])
        self.assertEqual(f'/dev/drbd/by-res/{self.vol.name}/0',
                         info['data']['device_path'])
        secret = self.cluster.agents['n1'].res[self.vol.name][1]
        self.assertNotIn(secret, repr(info))
        self.assertNotIn('provider_auth', repr(info))

    def test_unlisted_host_by_connector_ip(self):
        self.drv.initialize_connection(self.vol,
                                       {'host': 'hv2', 'ip': '192.0.2.10'})
        hosts = {h['name']: h for h in fakes.parse_res(
            self.cluster.agents['n1'].res[self.vol.name][0])['hosts']}
        self.assertEqual('192.0.2.10', hosts['hv2']['address'])

    def test_missing_host_in_connector(self):
        self.assertRaises(exception.InvalidConnectorException,
                          self.drv.initialize_connection, self.vol,
                          {'ip': '192.0.2.9'})

    def test_terminate_and_force_detach(self):
        self.drv.initialize_connection(self.vol, {'host': 'hv1'})
        self.drv.terminate_connection(self.vol, {'host': 'hv1'})
        self.assertNotIn(self.vol.name, self.cluster.agents['hv1'].res)
        self.drv.initialize_connection(self.vol, {'host': 'hv1'})
        self.drv.initialize_connection(self.vol, {'host': 'hv2',
                                                  'ip': '192.0.2.10'})
        self.drv.terminate_connection(self.vol, None)
        for client in ('hv1', 'hv2'):
            self.assertNotIn(self.vol.name,
                             self.cluster.agents[client].res)

    @ddt.data({}, {'ip': '192.0.2.9'}, {'host': None, 'ip': '192.0.2.9'})
    def test_terminate_with_a_connector_without_host_refused(self, conn):
        self.drv.initialize_connection(self.vol, {'host': 'hv1'})
        self.cluster.requests.clear()
        self.assertRaises(exception.InvalidConnectorException,
                          self.drv.terminate_connection, self.vol, conn)
        self.assertEqual([], self.cluster.requests)
        self.assertIn(self.vol.name, self.cluster.agents['hv1'].res)

    def test_terminate_on_a_dead_hypervisor(self):
        self.drv.initialize_connection(self.vol, {'host': 'hv1'})
        self.cluster.down.add('hv1')
        self.drv.terminate_connection(self.vol, {'host': 'hv1'})
        hosts = fakes.parse_res(
            self.cluster.agents['n1'].res[self.vol.name][0])['hosts']
        self.assertNotIn('hv1', [h['name'] for h in hosts])

    def test_other_attachment_on_same_host_keeps_it(self):
        self.drv.initialize_connection(self.vol, {'host': 'hv1'})
        attachments = [mock.Mock(attached_host='hv1',
                                 attach_status='attached')
                       for _ in range(2)]
        with mock.patch.object(type(self.vol), 'volume_attachment',
                               attachments, create=True):
            self.drv.terminate_connection(self.vol, {'host': 'hv1'})
        self.assertIn(self.vol.name, self.cluster.agents['hv1'].res)

    def test_update_migrated_volume_points_at_new_name(self):
        new = self.volume()
        update = self.drv.update_migrated_volume(self.ctxt, self.vol, new,
                                                 'available')
        self.assertEqual(new.name_id, update['_name_id'])

    def test_export_hooks_are_noops(self):
        self.assertIsNone(self.drv.create_export(self.ctxt, self.vol, {}))
        self.assertIsNone(self.drv.ensure_export(self.ctxt, self.vol))
        self.assertIsNone(self.drv.remove_export(self.ctxt, self.vol))


class VendorPropertiesTest(DriverTestCase):

    def test_vendor_properties(self):
        props, vendor = self.drv._init_vendor_properties()
        self.assertEqual('blackstor', vendor)
        self.assertEqual({'blackstor:replicas', 'blackstor:zones'},
                         set(props))
        self.assertTrue(all(k.startswith(vendor + ':') for k in props))
