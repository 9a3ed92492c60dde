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
"""The drbd.conf reader."""


from blackstor_cinder.node import drbdconf
from tests.unit import base

DUMP = '''# resource r0 on nodea: not ignored, not stacked
# defined at /tmp/nx/drbd.d/r0.res:2
resource r0 {
    on nodea {
        node-id 0;
        volume 0 {
            device       minor 1000;
            disk         "/dev/vg+0/r0";
            meta-disk    internal;
        }
        address          ipv6 [fd00::1]:7000;
    }
    on nodeb {
        node-id 1;
        volume 0 {
            device       /dev/drbd1000 minor 1000;
            disk         none;
            meta-disk    internal;
        }
        address          ipv4 10.0.0.2:7001;
    }
    connection {
        host nodea;
        host nodeb;
        net {
            _name        nodeb;
        }
    }
    options {
        quorum           majority;
        auto-promote     yes;
    }
    net {
        protocol           C;
        shared-secret    "a\\"b";
    }
    disk {
        resync-rate 10M;
    }
}
'''


class ParseTestCase(base.TestCase):

    def test_tokens(self):
        self.assertEqual(
            ['a', 'b c', (';',), 'x', ('{',), ('}',)],
            drbdconf.tokenize('a "b c"; # comment\nx {}'))

    def test_nested(self):
        [res] = drbdconf.parse('resource r { on a { node-id 1; } x; }')
        self.assertEqual(['resource', 'r'], res.words)
        self.assertEqual(['node-id', '1'],
                         res.first('on').body[0].words)
        self.assertEqual(['x'], res.find('x')[0].words)
        self.assertIsNone(res.first('nothing'))

    def test_errors(self):
        for text in ('a {', 'a }', '}', '{ }', 'a { b', 'a "unterminated'):
            self.assertRaises(drbdconf.ParseError, drbdconf.parse, text)

    def test_definition(self):
        d = drbdconf.resources(DUMP)['r0']
        self.assertEqual('r0', d['name'])
        self.assertEqual(1000, d['minor'])
        self.assertEqual('a"b', d['secret'])
        self.assertEqual({'protocol': 'C'}, d['net'])
        self.assertEqual({'quorum': 'majority', 'auto-promote': 'yes'},
                         d['options'])
        self.assertEqual({'resync-rate': '10M'}, d['disk'])
        self.assertEqual(
            [{'name': 'nodea', 'node_id': 0, 'address': 'fd00::1',
              'port': 7000, 'family': 'ipv6', 'diskful': True,
              'disk': '/dev/vg+0/r0'},
             {'name': 'nodeb', 'node_id': 1, 'address': '10.0.0.2',
              'port': 7001, 'family': 'ipv4', 'diskful': False,
              'disk': None}], d['hosts'])

    def test_definition_keeps_the_device_size(self):
        # as drbdadm 9.22 dumps a .res with "disk { size 1048576k; }"
        dump = DUMP.replace('resync-rate 10M;', 'resync-rate 10M;\n'
                            '        size             1048576k;')
        d = drbdconf.resources(dump)['r0']
        self.assertEqual({'resync-rate': '10M', 'size': '1048576k'},
                         d['disk'])

    def test_definition_defensive(self):
        d = drbdconf.resources('resource r { on a { volume 1 { x; } } }')
        self.assertEqual({'name': 'a', 'node_id': None, 'address': None,
                          'port': None, 'family': None, 'diskful': False,
                          'disk': None}, d['r']['hosts'][0])
        self.assertIsNone(d['r']['minor'])
        self.assertEqual({}, drbdconf.resources('global { x y; }'))
