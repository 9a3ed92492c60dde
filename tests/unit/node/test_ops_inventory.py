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
"""inventory and status on a fake node."""

import json
import os
import time


from blackstor_cinder.cluster import divergence
from blackstor_cinder.cluster import inventory
from blackstor_cinder.node import agent
from blackstor_cinder.node import drbdstatus
from blackstor_cinder.node import restemp
from blackstor_cinder.node import sizing
from blackstor_cinder import protocol
from tests.unit.node import fakes
from tests.unit.node import samples
from tests.unit.node import test_agent

GiB = fakes.GiB
MiB = fakes.MiB
EXTENT = 4 * MiB


class InventoryTestCase(test_agent.AgentTestCase):

    def test_inventory(self):
        self.ok('create', **self.create_req())
        self.ok('create', **self.create_req('r1', 1001, 7001, size=5 * GiB))
        self.ok('snapshot-create', resource='r0', pool='vg0/thin',
                snapshot='s1')
        self.fake.add_lv('vg0', 'foreign', GiB, tags=())
        # An operator's resource in the same directory still counts.
        (self.res_dir / 'other.res').write_text(samples.res_text(
            'other', 7, 7789, placeholder=False).replace(
                'nodea', 'x1').replace('nodeb', 'x2'))
        result = self.ok('inventory')
        self.assertEqual('nodea', result['hostname'])
        self.assertRegex(result['drbd_utils_version'], r'^\d+\.\d+')
        thin_size = self.fake.lvs[('vg0', 'thin')]['size']
        provisioned = sum(lv['size'] for key, lv in self.fake.lvs.items()
                          if lv['pool_lv'] == 'thin')
        self.assertEqual([{'name': 'vg0/thin', 'total_bytes': thin_size,
                           'free_bytes': int(thin_size * 0.9),
                           'provisioned_bytes': provisioned,
                           'extent_bytes': EXTENT,
                           'vg_free_bytes': 50 * GiB,
                           'zero_new_blocks': True}], result['pools'])
        self.assertEqual(['other', 'r0', 'r1'], sorted(result['resources']))
        r0 = result['resources']['r0']
        self.assertEqual(1000, r0['definition']['minor'])
        self.assertNotIn('secret', r0['definition'])
        self.assertNotIn(samples.SECRET, str(result))
        self.assertEqual('r0', r0['state']['name'])
        self.assertIsNone(result['resources']['other']['definition'])
        self.assertEqual(
            [{'name': 'r0', 'pool': 'vg0/thin', 'size_bytes': self.need(),
              'origin': None, 'create_ids': []},
             {'name': 'r1', 'pool': 'vg0/thin',
              'size_bytes': self.need(5 * GiB), 'origin': None,
              'create_ids': []}],
            result['volumes'])
        self.assertEqual([{'name': 's1', 'pool': 'vg0/thin',
                           'size_bytes': self.need(), 'origin': 'r0'}],
                         result['snapshots'])
        self.assertEqual([7, 1000, 1001], result['used_minors'])
        self.assertEqual([7000, 7001, 7789], result['used_ports'])
        self.assertEqual([], result['removed_temp_files'])

    def test_pool_without_zeroing(self):
        self.fake.lvs[('vg0', 'thin')]['zero'] = False
        pools = self.ok('inventory')['pools']
        self.assertIs(False, pools[0]['zero_new_blocks'])
        lvs = [c for c in self.fake.calls if c[0] == 'lvs']
        self.assertEqual(1, len(lvs))
        self.assertIn('zero', lvs[0][lvs[0].index('-o') + 1].split(','))

    def test_inventory_removes_stale_temp_files(self):
        self.ok('create', **self.create_req())
        old = time.time() - restemp.STALE_AGE - 1
        stale = self.res_dir / '.r0.0123456789abcdef.tmp'
        fresh = self.res_dir / '.r1.0123456789abcdef.tmp'
        other = self.res_dir / '.r0.res.swp'
        for path in (stale, fresh, other):
            path.write_text(samples.SECRET)
        for path in (stale, other):
            os.utime(path, (old, old))
        result = self.ok('inventory')
        self.assertEqual([str(stale)], result['removed_temp_files'])
        self.assertEqual(sorted([fresh.name, other.name, 'r0.res']),
                         sorted(os.listdir(self.res_dir)))
        self.assertIn(f'Removed {stale}', self.log.output)
        self.assertNotIn(samples.SECRET, self.log.output)
        self.assertEqual([], self.ok('inventory')['removed_temp_files'])

    def test_inventory_without_resource_dir(self):
        self.res_dir.rmdir()
        self.assertEqual([], self.ok('inventory')['removed_temp_files'])

    def test_missing_everything(self):
        def nothing(*cmd, **kwargs):
            raise OSError(2, 'No such file or directory', cmd[0])
        self.agent = agent.Agent(self.conf, execute=nothing)
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        for what in ('drbdadm', 'vgs', 'drbdsetup', 'lvmconfig'):
            self.assertIn(what, err['message'])

    def test_missing_vg_and_module(self):
        self.fake.vgs.clear()
        self.fake.fail('drbdsetup', 'status', rc=20,
                       stderr='Failed to modprobe drbd (No such file)')
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        self.assertIn('volume group vg0 not found', err['message'])
        self.assertIn('kernel module', err['message'])

    def test_config_not_including_dir(self):
        self.conf_file.write_text('# empty\n')
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        self.assertIn('does not include', err['message'])

    def test_lvm_scanning_drbd_devices_refused(self):
        # what the VM tier had: udev's /dev/block/147:N got through
        self.fake.lvm_conf['devices/global_filter'] = ['r|^/dev/drbd|',
                                                       'a|.*|']
        err, before = self.error('inventory', protocol.E_MISSING, None)
        message = err['message']
        self.assertTrue(message.startswith('this node cannot serve: LVM '
                                           'would scan DRBD devices'),
                        message)
        for what in ('/dev/block/147:1000', 'lvm.conf', 'global_filter = [',
                     'devices/global_filter accepts'):
            self.assertIn(what, message)
        self.assertEqual(before, self.fake.snapshot())
        self.assertEqual([], self.changes())

    def test_lvm_default_filter_refused(self):
        self.fake.lvm_conf['devices/global_filter'] = None
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        self.assertIn('devices/global_filter accepts /dev/drbd1000',
                      err['message'])

    def test_lvm_filter_unreadable(self):
        self.fake.lvm_conf['devices/filter'] = '[1,"a|.*|"]'
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        self.assertIn('devices/filter in lvm.conf cannot be used: not a '
                      'list of quoted patterns: [1,"a|.*|"]', err['message'])

    def test_lvm_filter_problem_among_others(self):
        self.fake.lvm_conf['devices/global_filter'] = None
        self.conf_file.write_text('# empty\n')
        err, _ = self.error('inventory', protocol.E_MISSING, None)
        self.assertIn('does not include', err['message'])
        self.assertIn('LVM would scan DRBD devices', err['message'])

    def test_client_without_pools(self):
        self.conf.pools = []
        self.agent = agent.Agent(self.conf, execute=self.fake)
        # A client runs no LVM command: its filters do not matter.
        self.fake.lvm_conf['devices/global_filter'] = None
        result = self.ok('inventory')
        self.assertEqual([], result['pools'])
        self.assertFalse(any(c[0] in ('vgs', 'lvs', 'lvmconfig')
                             for c in self.fake.calls))


class InventoryScaleTestCase(test_agent.AgentTestCase):
    """An inventory runs as many commands for 50 resources as for 1."""

    #: nodea's replication address is one of this host's: drbdadm's
    #: ``dump all`` checks it (``dump <res>`` only warns).
    HOSTS = [('nodea', 0, '127.0.0.1', 'vg0'), ('nodeb', 1, '10.0.0.2', None)]

    def populate(self, count, hosts=HOSTS):
        for i in range(count):
            self.ok('create', resource=f'r{i}', pool='vg0/thin', size=GiB,
                    spec=samples.spec(1000 + i, 7000 + i, hosts=hosts),
                    secret=samples.SECRET)

    def commands(self, **fields):
        self.fake.calls.clear()
        result = self.ok('inventory', **fields)
        return [fakes.strip_config(c) for c in self.fake.calls], result

    def test_commands_do_not_grow_with_resources(self):
        self.populate(1)
        one, _ = self.commands()
        self.populate(50)
        fifty, result = self.commands()
        self.assertEqual(50, len(result['resources']))
        self.assertEqual(one, fifty)
        self.assertEqual(1, sum(c[:2] == ['drbdadm', 'dump'] for c in fifty))
        self.assertIn(['drbdadm', 'dump', 'all'], fifty)
        self.assertEqual(1, sum(c[:2] == ['drbdsetup', 'status']
                                for c in fifty))

    def test_brief_reads_no_definition(self):
        self.populate(3)
        calls, result = self.commands(brief=True)
        self.assertFalse(any(c[:2] == ['drbdadm', 'dump'] for c in calls))
        self.assertTrue(result['brief'])
        self.assertEqual({'r0': {}, 'r1': {}, 'r2': {}}, result['resources'])
        full = self.ok('inventory')
        self.assertFalse(full['brief'])
        for key in ('pools', 'volumes', 'snapshots', 'used_minors',
                    'used_ports', 'hostname', 'protocol_version',
                    'drbd_kernel_version'):
            self.assertEqual(full[key], result[key], key)

    def assertSameAsEachRead(self, result):
        """Each entry is what a ``dump <res>`` of its own gives."""
        for name, entry in result['resources'].items():
            try:
                expected = self.agent.store.read_definition(name)
            except agent.AgentError as e:
                self.assertEqual({'definition': None, 'error': e.message},
                                 {k: entry.get(k) for k in
                                  ('definition', 'error')}, name)
                continue
            expected.pop('secret', None)
            self.assertEqual(expected, entry['definition'], name)
            self.assertNotIn('error', entry)

    def test_same_definitions_as_one_dump_each(self):
        self.populate(3)
        # An operator's resource of other hosts: "ignored" in dump all.
        (self.res_dir / 'other.res').write_text(samples.res_text(
            'other', 7, 7789, placeholder=False).replace(
                'nodea', 'x1').replace('nodeb', 'x2'))
        # A file that defines another resource than its name says.
        (self.res_dir / 'named.res').write_text(samples.res_text(
            'misnamed', 8, 7790).replace('10.0.0.1', '127.0.0.1'))
        calls, result = self.commands()
        self.assertEqual(['named', 'other', 'r0', 'r1', 'r2'],
                         sorted(result['resources']))
        self.assertIsNone(result['resources']['other']['definition'])
        self.assertIn('not defined', result['resources']['named']['error'])
        self.assertEqual(1000, result['resources']['r0']['definition'][
            'minor'])
        # Only the two odd ones are read on their own.
        self.assertEqual([['drbdadm', 'dump', 'all'],
                          ['drbdadm', 'dump', 'named'],
                          ['drbdadm', 'dump', 'other']],
                         [c for c in calls if 'dump' in c])
        self.assertSameAsEachRead(result)

    def test_dump_all_refused_reads_each(self):
        # nodea's address is not on this host: dump all refuses, each
        # dump <res> only warns; every entry is still read.
        self.populate(2, hosts=None)
        calls, result = self.commands()
        self.assertEqual(3, sum('dump' in c for c in calls))
        self.assertEqual(['r0', 'r1'], sorted(result['resources']))
        self.assertEqual(1001, result['resources']['r1']['definition'][
            'minor'])
        self.assertSameAsEachRead(result)

    def test_unparsable_file(self):
        self.populate(2)
        (self.res_dir / 'bad.res').write_text('resource bad {\n')
        result = self.ok('inventory')
        self.assertIn('cannot read', result['resources']['bad']['error'])
        self.assertIsNone(result['resources']['r0']['definition'])
        self.assertSameAsEachRead(result)
        self.assertIn('drbdadm dump all failed', self.log.output)
        self.assertNotIn(samples.SECRET, self.log.output)
        self.assertNotIn(samples.SECRET, str(result))


class StatusTestCase(test_agent.ReplicaTestCase):

    def test_status(self):
        result = self.ok('status', resource='r0')
        self.assertTrue(result['exists'])
        self.assertEqual(1000, result['definition']['minor'])
        self.assertEqual(samples.SECRET, result['definition']['secret'])
        self.assertEqual('r0', result['state']['name'])
        self.assertEqual(sizing.usable_size_of(self.need(), 7),
                         result['device_size'])
        result = self.ok('status', resource='r9')
        self.assertEqual({'resource': 'r9', 'exists': False,
                          'definition': None, 'state': None,
                          'device_size': None, 'zero_pending': None},
                         result)


class InventoryCompactTestCase(InventoryScaleTestCase):
    """``compact``: what stats read of each resource, a fraction of it."""

    def test_compact_keeps_what_is_read(self):
        self.populate(20)
        for name, entry in self.fake.running.items():
            # what DRBD 9.2 reports with --statistics, every field
            self.fake.running[name] = samples.status_entry(
                name, entry['devices'][0]['minor'], peers=('nodeb',),
                size_kib=entry['devices'][0]['size'])
        full = self.ok('inventory')
        calls, compact = self.commands(compact=True)
        self.assertTrue(compact['compact'])
        self.assertFalse(full['compact'])
        self.assertEqual(sorted(full['resources']),
                         sorted(compact['resources']))
        self.assertEqual(20, len(compact['resources']))
        for name, entry in full['resources'].items():
            small = compact['resources'][name]
            self.assertIsNotNone(entry['state'], name)
            self.assertEqual(drbdstatus.of(entry['state']),
                             drbdstatus.of(small['state']), name)
            for key in ('device_size', 'zero_pending'):
                self.assertEqual(entry[key], small[key], (name, key))
            want, got = entry['definition'], small['definition']
            self.assertEqual(divergence.key(want), divergence.key(got))
            self.assertEqual(inventory.definition_size(want),
                             inventory.definition_size(got))
            for key in ('name', 'minor', 'hosts'):
                self.assertEqual(want[key], got[key], (name, key))
            self.assertNotIn('options', got)
        for key in set(full) - {'resources', 'compact'}:
            self.assertEqual(full[key], compact[key], key)
        # the same commands as the full one
        self.assertEqual(self.commands()[0], calls)
        whole = len(json.dumps(full['resources']))
        cut = len(json.dumps(compact['resources']))
        # 1,702 bytes per resource (two hosts), compact 859
        self.assertLess(cut, whole * 0.55, (cut, whole))
        # out-of-sync stays: the status model reads it
        for word in ('al-writes', 'paths', 'percent-in-sync',
                     'cram-hmac-alg', 'on-no-quorum', 'write-ordering'):
            self.assertIn(word, json.dumps(full['resources']))
            self.assertNotIn(word, json.dumps(compact['resources']))

    def test_compact_and_brief_is_brief(self):
        self.populate(2)
        result = self.ok('inventory', compact=True, brief=True)
        self.assertTrue(result['brief'])
        self.assertFalse(result['compact'])
        self.assertEqual({'r0': {}, 'r1': {}}, result['resources'])

    def test_compact_must_be_a_flag(self):
        self.populate(1)
        self.error('inventory', protocol.E_INVALID, 'compact',
                   compact='yes')
