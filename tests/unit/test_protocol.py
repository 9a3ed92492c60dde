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

import ddt
import testtools

from blackstor_cinder import protocol

SECRET = 'a' * 32
TEXT = 'resource "r" {}'


@ddt.ddt
class ValidateRequestTest(testtools.TestCase):

    @ddt.data(
        {'op': 'inventory'},
        {'op': 'status', 'resource': 'volume-1'},
        {'op': 'create', 'resource': 'volume-1', 'pool': 'vg/pool',
         'size': 1, 'res_text': TEXT, 'secret': SECRET, 'max_peers': 7},
        {'op': 'delete', 'resource': 'v_1-x'},
        {'op': 'resize', 'resource': 'v', 'pool': 'vg+1/p', 'size': 2,
         'drbd': True, 'assume_clean': True, 'lv': False},
        {'op': 'resize', 'resource': 'v', 'pool': 'vg/p', 'size': 1 << 30,
         'drbd': True, 'lv': False, 'res_text': TEXT, 'secret': SECRET},
        {'op': 'attach', 'resource': 'v', 'res_text': TEXT, 'secret': SECRET,
         'device_path': '/dev/drbd/by-res/v/0', 'timeout': 30},
        {'op': 'suspend-io', 'resource': 'v', 'lease': 1},
        {'op': 'suspend-io', 'resource': 'v', 'lease': 600},
        {'op': 'suspend-io', 'resource': 'v', 'lease': 2.5},
    )
    def test_valid(self, request):
        self.assertIs(request, protocol.validate_request(request))

    @ddt.data(
        ({'op': 'format-disk'}, 'op'),
        ([], None),
        ({'op': 'status'}, 'resource'),
        ({'op': 'status', 'resource': 'a/b'}, 'resource'),
        ({'op': 'status', 'resource': '..'}, 'resource'),
        ({'op': 'status', 'resource': 'a b'}, 'resource'),
        ({'op': 'status', 'resource': 'a;rm'}, 'resource'),
        ({'op': 'status', 'resource': '$(id)'}, 'resource'),
        ({'op': 'status', 'resource': '-rf'}, 'resource'),
        ({'op': 'status', 'resource': 'volume-1\n'}, 'resource'),
        ({'op': 'status', 'resource': 'x' * 64}, 'resource'),
        ({'op': 'snapshot-delete', 'pool': 'vg/p',
          'snapshot': 'snapshot-1'}, 'snapshot'),
        ({'op': 'status', 'resource': 'pvmove0'}, 'resource'),
        ({'op': 'status', 'resource': 'v', 'extra': 1}, 'extra'),
        ({'op': 'delete', 'resource': 'v', 'pool': 'vg'}, 'pool'),
        ({'op': 'delete', 'resource': 'v', 'pool': 'vg/../p'}, 'pool'),
        ({'op': 'delete', 'resource': 'v', 'pool': 'vg/p\n'}, 'pool'),
        ({'op': 'resize', 'resource': 'v', 'pool': 'vg/p', 'size': 0},
         'size'),
        ({'op': 'resize', 'resource': 'v', 'pool': 'vg/p', 'size': -1},
         'size'),
        ({'op': 'resize', 'resource': 'v', 'pool': 'vg/p', 'size': '1'},
         'size'),
        ({'op': 'resize', 'resource': 'v', 'pool': 'vg/p', 'size': 1.5},
         'size'),
        ({'op': 'resize', 'resource': 'v', 'pool': 'vg/p', 'size': True},
         'size'),
        ({'op': 'resize', 'resource': 'v', 'pool': 'vg/p', 'size': 1,
          'drbd': 'yes'}, 'drbd'),
        ({'op': 'resize', 'resource': 'v', 'pool': 'vg/p', 'size': 1,
          'drbd': True, 'res_text': '', 'secret': SECRET}, 'res_text'),
        ({'op': 'resize', 'resource': 'v', 'pool': 'vg/p', 'size': 1,
          'drbd': True, 'res_text': TEXT, 'secret': 'short'}, 'secret'),
        ({'op': 'adjust', 'resource': 'v', 'res_text': '', 'secret': SECRET},
         'res_text'),
        ({'op': 'adjust', 'resource': 'v', 'res_text': TEXT,
          'secret': 'short'}, 'secret'),
        ({'op': 'adjust', 'resource': 'v', 'res_text': TEXT,
          'secret': 'a"b' * 8}, 'secret'),
        ({'op': 'attach', 'resource': 'v', 'res_text': TEXT,
          'secret': SECRET, 'device_path': 'dev/x'}, 'device_path'),
        ({'op': 'attach', 'resource': 'v', 'res_text': TEXT,
          'secret': SECRET, 'device_path': '/dev/../etc/passwd'},
         'device_path'),
        ({'op': 'attach', 'resource': 'v', 'res_text': TEXT,
          'secret': SECRET, 'timeout': 0}, 'timeout'),
        ({'op': 'suspend-io', 'resource': 'v', 'lease': 0}, 'lease'),
        ({'op': 'suspend-io', 'resource': 'v', 'lease': 601}, 'lease'),
        ({'op': 'suspend-io', 'resource': 'v', 'lease': '5'}, 'lease'),
        ({'op': 'suspend-io', 'resource': 'v', 'lease': True}, 'lease'),
        ({'op': 'resume-io', 'resource': 'v', 'lease': 5}, 'lease'),
    )
    @ddt.unpack
    def test_invalid_names_field(self, request, field):
        exc = self.assertRaises(protocol.ProtocolError,
                                protocol.validate_request, request)
        self.assertEqual(field, exc.field)
        if field:
            self.assertIn(field, str(exc))

    @ddt.data(0, 31)
    def test_node_id_range(self, node_id):
        self.assertEqual(node_id, protocol.check_node_id('node_id', node_id))

    @ddt.data(-1, 32)
    def test_node_id_out_of_range(self, node_id):
        self.assertRaises(protocol.ProtocolError, protocol.check_node_id,
                          'node_id', node_id)

    @ddt.data('stor1', 'stor-1.example.org', 'a')
    def test_hosts(self, host):
        protocol.check_host('host', host)

    @ddt.data('stor_1', '-stor', 'stor1.', 'a b', 'node1\n', '')
    def test_bad_hosts(self, host):
        self.assertRaises(protocol.ProtocolError, protocol.check_host,
                          'host', host)

    def test_rejected_secret_is_not_echoed(self):
        exc = self.assertRaises(protocol.ProtocolError, protocol.check_secret,
                                'secret', 'hunter2"; rm -rf /')
        self.assertNotIn('hunter2', str(exc))
        self.assertEqual('secret', exc.field)

    @ddt.data([], {}, ['status'], {'status': 1}, None, 7, 1.5, True)
    def test_op_of_another_type_is_invalid(self, op):
        # [] and {} are unhashable: a TypeError escaped validation.
        exc = self.assertRaises(protocol.ProtocolError,
                                protocol.validate_request, {'op': op})
        self.assertEqual('op', exc.field)

    def test_sizes_are_bounded(self):
        request = {'op': 'resize', 'resource': 'v', 'pool': 'vg/p'}
        protocol.validate_request(dict(request, size=protocol.SIZE_MAX))
        for size in (protocol.SIZE_MAX + 1, 10 ** 30):
            exc = self.assertRaises(protocol.ProtocolError,
                                    protocol.validate_request,
                                    dict(request, size=size))
            self.assertEqual('size', exc.field)
            self.assertIn('out of range', str(exc))

    def test_replies(self):
        self.assertEqual({'ok': True, 'result': {}}, protocol.ok_reply())
        reply = protocol.error_reply(protocol.E_INVALID, 'bad', 'size',
                                     got=0)
        self.assertEqual({'ok': False, 'error': {
            'code': 'invalid-input', 'message': 'bad', 'field': 'size',
            'details': {'got': 0}}}, reply)
        self.assertEqual(2, protocol.EXIT_CODES[protocol.E_INVALID])
