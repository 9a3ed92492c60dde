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
"""What a new .res must be (node/resguard.py), through ResFileStore.write."""

import json

import ddt

from blackstor_cinder.node import errors
from blackstor_cinder import protocol
from tests.unit.node import samples
from tests.unit.node import test_resfiles


@ddt.ddt
class ShapeTestCase(test_resfiles.StoreTestCase):
    """Only the renderer's shape gets to drbdadm (issue 13's findings)."""

    @ddt.data(
        # include is followed by drbdadm as root (and its parse error
        # quoted the included file)
        ('    net {', 'include "/etc/shadow";\n    net {'),
        ('resource "r0" {', 'include "/etc/drbd.d/x.res";\nresource "r0" {'),
        # handlers run through /bin/sh -c as root
        ('    net {', '    handlers { before-resync-target "id"; }\n'
         '    net {'),
        ('    net {', '    startup { wfc-timeout 1; }\n    net {'),
        ('    net {', '    proxy { memlimit 1M; }\n    net {'),
        # create-md runs on every volume's disk
        ('        volume 0 {', '        volume 1 { device minor 1001; '
         'disk "/dev/vg0/other"; meta-disk internal; }\n'
         '        volume 0 {'),
        ('meta-disk internal;', 'meta-disk "/dev/vg0/md";'),
        ('meta-disk internal;', 'meta-disk internal; '
         'handlers { x "id"; }'),
        ('    net {', '    net { net { x; }'),
        ('        node-id 0;', '        node-id 0; handlers { x "y"; }'))
    @ddt.unpack
    def test_refused_before_drbdadm_reads_it(self, old, new):
        text = samples.res_text().replace(old, new, 1)
        self.assertNotEqual(samples.res_text(), text)
        e = self._refused(text)
        self.assertEqual([], self.calls)
        self.assertNotIn('root', e.message)

    def test_second_resource_refused(self):
        text = samples.res_text() + samples.res_text('r9', 1009, 7009)
        self._refused(text)
        self.assertEqual([], self.calls)

    def test_field_named_as_asked(self):
        text = samples.res_text().replace('    net {', 'include "x";\n'
                                          '    net {')
        e = self.assertRaises(errors.AgentError, self.store.write, 'r0',
                              text, samples.SECRET,
                              expect_disk='/dev/vg0/r0', field='config')
        self.assertEqual('config', e.field)

    def _refused(self, text):
        e = self.assertRaises(errors.AgentError, self.store.write, 'r0',
                              text, samples.SECRET,
                              expect_disk='/dev/vg0/r0')
        self.assertEqual(protocol.E_INVALID, e.code, e.message)
        self.assertEqual('spec', e.field)
        self.assertEqual([], self._files())
        return e


class InvariantsTestCase(test_resfiles.StoreTestCase):
    """What every write keeps, whoever asks: drbdsetup status is faked."""

    def setUp(self):
        super().setUp()
        self.state = None
        real = self.store._execute

        def execute(*cmd, **kwargs):
            if cmd[:2] == ('drbdsetup', 'status'):
                if self.state is None:
                    return '', ''
                return json.dumps([self.state]), ''
            return real(*cmd, **kwargs)

        self.store._execute = execute
        self.store.write('r0', samples.res_text(size='1048576k'),
                         samples.SECRET, expect_disk='/dev/vg0/r0')

    def run_as(self, minor=1000, node_id=0, peer_id=1, disk='UpToDate'):
        self.state = {'name': 'r0', 'node-id': node_id, 'devices': [
            {'volume': 0, 'minor': minor, 'disk-state': disk,
             'size': 1 << 20}],
            'connections': [{'name': 'nodeb', 'peer-node-id': peer_id}]}

    def refused(self, field, text, expect_disk='/dev/vg0/r0'):
        before = (self.res_dir / 'r0.res').read_text()
        e = self.assertRaises(errors.AgentError, self.store.write, 'r0',
                              text, samples.SECRET, expect_disk=expect_disk)
        self.assertEqual(protocol.E_CONFLICT, e.code, e.message)
        self.assertEqual(field, e.field, e.message)
        self.assertEqual(before, (self.res_dir / 'r0.res').read_text())
        self.assertEqual(['r0.res'], self._files())
        return e

    def hosts(self, a=0, b=1, disk='/dev/vg0/r0'):
        return [('nodea', a, '10.0.0.1', disk), ('nodeb', b, '10.0.0.2',
                                                 '/dev/vg0/r0')]

    def test_replica_never_rewritten_diskless(self):
        # down, and whatever the caller expects: the file says disk
        e = self.refused('spec.hosts', samples.res_text(
            hosts=self.hosts(disk=None)), expect_disk=None)
        self.assertIn('/dev/vg0/r0', e.message)

    def test_running_disk_never_rewritten_diskless(self):
        self.run_as()
        (self.res_dir / 'r0.res').unlink()
        e = self.assertRaises(errors.AgentError, self.store.write, 'r0',
                              samples.res_text(hosts=self.hosts(disk=None)),
                              samples.SECRET, expect_disk=None)
        self.assertEqual(protocol.E_CONFLICT, e.code)
        self.assertEqual('spec.hosts', e.field)
        self.assertEqual([], self._files())

    def test_running_minor_kept(self):
        self.run_as()
        self.refused('minor', samples.res_text(minor=1001,
                                               size='1048576k'))

    def test_running_port_kept(self):
        self.run_as()
        self.refused('port', samples.res_text(port=7001, size='1048576k'))

    def test_running_node_ids_kept(self):
        self.run_as()
        self.refused('node_id', samples.res_text(
            hosts=self.hosts(a=2), size='1048576k'))
        self.refused('node_id', samples.res_text(
            hosts=self.hosts(b=3), size='1048576k'))

    def test_node_ids_of_the_running_state_count_without_a_file(self):
        self.run_as(node_id=5, peer_id=6)
        (self.res_dir / 'r0.res').unlink()
        e = self.assertRaises(errors.AgentError, self.store.write, 'r0',
                              samples.res_text(size='1048576k'),
                              samples.SECRET, expect_disk='/dev/vg0/r0')
        self.assertEqual('node_id', e.field)

    def test_no_shrink_on_any_store(self):
        self.run_as()
        self.refused('size', samples.res_text(size='1048575k'))

    def test_all_may_change_while_down(self):
        self.assertTrue(self.store.write(
            'r0', samples.res_text(minor=1001, port=7001,
                                   hosts=self.hosts(a=2, b=3)),
            samples.SECRET, expect_disk='/dev/vg0/r0'))

    def test_same_identity_while_running_accepted(self):
        self.run_as()
        self.assertTrue(self.store.write(
            'r0', samples.res_text(size='2097152k'), samples.SECRET,
            expect_disk='/dev/vg0/r0'))
        # a client added keeps everyone else's node-id
        hosts = self.hosts() + [('hv1', 2, '10.0.0.3', None)]
        self.assertTrue(self.store.write(
            'r0', samples.res_text(hosts=hosts, size='2097152k'),
            samples.SECRET, expect_disk='/dev/vg0/r0'))
