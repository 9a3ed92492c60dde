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

from blackstor_cinder import protocol
from tests.unit import base

SECRET = 'a' * 32
TEXT = 'resource "r" {}'


def spec(**changes):
    """A valid ``spec``: two replicas and a client."""
    value = {
        'version': protocol.SPEC_VERSION, 'minor': 1000, 'port': 7000,
        'protocol': 'C', 'quorum': 'majority', 'on_no_quorum': 'io-error',
        'allow_two_primaries': False, 'size': 1 << 30,
        'hosts': [
            {'name': 'stor1', 'node_id': 0, 'address': '10.0.0.1',
             'role': 'diskful', 'vg': 'vg'},
            {'name': 'stor2', 'node_id': 1, 'address': '10.0.0.2',
             'role': 'diskful', 'vg': 'vg'},
            {'name': 'hv1', 'node_id': 2, 'address': '10.0.0.3',
             'role': 'diskless'}],
        'connections': [['stor1', 'stor2'], ['stor1', 'hv1'],
                        ['stor2', 'hv1']],
        'net': {'max-buffers': 8000, 'verify-alg': 'crc32c'},
        'disk': {'c-max-rate': 768000, 'disk-flushes': False,
                 'on-io-error': 'detach'},
    }
    value.update(changes)
    return value


SPEC = spec()


@ddt.ddt
class ValidateRequestTest(base.TestCase):

    @ddt.data(
        {'op': 'inventory'},
        {'op': 'status', 'resource': 'volume-1'},
        {'op': 'create', 'resource': 'volume-1', 'pool': 'vg/pool',
         'size': 1, 'spec': SPEC, 'secret': SECRET, 'max_peers': 7},
        {'op': 'delete', 'resource': 'v_1-x'},
        {'op': 'resize', 'resource': 'v', 'pool': 'vg+1/p', 'size': 2,
         'drbd': True, 'assume_clean': True, 'lv': False},
        {'op': 'resize', 'resource': 'v', 'pool': 'vg/p', 'size': 1 << 30,
         'drbd': True, 'lv': False, 'spec': SPEC, 'secret': SECRET},
        {'op': 'attach', 'resource': 'v', 'spec': SPEC, 'secret': SECRET,
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
          'drbd': True, 'spec': {}, 'secret': SECRET}, 'spec.version'),
        ({'op': 'resize', 'resource': 'v', 'pool': 'vg/p', 'size': 1,
          'drbd': True, 'spec': SPEC, 'secret': 'short'}, 'secret'),
        ({'op': 'adjust', 'resource': 'v', 'spec': '', 'secret': SECRET},
         'spec'),
        # The field of protocol 1, in whatever op, refused by name.
        ({'op': 'adjust', 'resource': 'v', 'res_text': TEXT,
          'secret': SECRET}, 'res_text'),
        ({'op': 'adjust', 'resource': 'v', 'res_text': TEXT,
          'spec': SPEC, 'secret': SECRET}, 'res_text'),
        ({'op': 'attach', 'resource': 'v', 'res_text': TEXT,
          'secret': SECRET}, 'res_text'),
        ({'op': 'inventory', 'res_text': TEXT}, 'res_text'),
        ({'op': 'adjust', 'resource': 'v', 'spec': SPEC,
          'secret': 'short'}, 'secret'),
        ({'op': 'adjust', 'resource': 'v', 'spec': SPEC,
          'secret': 'a"b' * 8}, 'secret'),
        ({'op': 'attach', 'resource': 'v', 'spec': SPEC,
          'secret': SECRET, 'device_path': 'dev/x'}, 'device_path'),
        ({'op': 'attach', 'resource': 'v', 'spec': SPEC,
          'secret': SECRET, 'device_path': '/dev/../etc/passwd'},
         'device_path'),
        ({'op': 'attach', 'resource': 'v', 'spec': SPEC,
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


#: Strings that would end a statement, open a block or a string, start a
#: comment or a new line in a .res: none may pass any string field.
EVIL = ('x; handlers { before-resync-target "/bin/sh -c id"; }', 'x;',
        'x}', '{', 'x\nhandlers {', 'x"', 'x # y', '$(id)', 'x y',
        'include "/etc/shadow"', '', 'x\0', 'é')


def _hosts(**changes):
    hosts = [dict(h) for h in SPEC['hosts']]
    hosts[0].update(changes)
    return hosts


@ddt.ddt
class SpecSchemaTest(base.TestCase):
    """The resource as fields: a closed schema, typed, in DRBD's ranges."""

    def refused(self, value, field):
        exc = self.assertRaises(protocol.ProtocolError, protocol.check_spec,
                                'spec', value)
        self.assertEqual(field, exc.field)
        self.assertIn(field, str(exc))
        return exc

    def test_valid(self):
        self.assertIs(SPEC, protocol.check_spec('spec', SPEC))

    @ddt.data({}, {'quorum': 'off'}, {'quorum': 2}, {'quorum': 'all'},
              {'protocol': 'A'}, {'allow_two_primaries': True},
              {'size': 512}, {'size': protocol.SIZE_MAX}, {'net': {}},
              {'connections': []})
    def test_valid_variants(self, changes):
        protocol.check_spec('spec', spec(**changes))

    def test_minimal(self):
        value = {k: v for k, v in SPEC.items()
                 if k not in ('size', 'net', 'disk')}
        protocol.check_spec('spec', value)

    @ddt.data('handlers', 'startup', 'proxy', 'include', 'volumes',
              'volume', 'meta_disk', 'name', 'res_text', 'common',
              'resource', 'options')
    def test_unknown_field_refused(self, name):
        self.refused(spec(**{name: {}}), f'spec.{name}')

    @ddt.data('disk', 'meta_disk', 'volume', 'device', 'port', 'minor',
              'handlers')
    def test_unknown_host_field_refused(self, name):
        # No second volume, no other disk, no external metadata.
        self.refused(spec(hosts=_hosts(**{name: '/dev/sda'})),
                     f'spec.hosts[0].{name}')

    @ddt.data('version', 'minor', 'port', 'protocol', 'quorum',
              'on_no_quorum', 'allow_two_primaries', 'hosts', 'connections')
    def test_missing_field_refused(self, name):
        value = dict(SPEC)
        del value[name]
        self.refused(value, f'spec.{name}')

    @ddt.data(0, 2, '1', None)
    def test_other_schema_version_refused(self, version):
        self.refused(spec(version=version), 'spec.version')

    @ddt.data(('net', 'no-such-option'), ('net', 'shared-secret'),
              ('net', 'cram-hmac-alg'), ('net', 'protocol'),
              ('net', 'allow-two-primaries'), ('net', 'fencing'),
              ('net', 'after-sb-0pri'), ('disk', 'size'),
              ('disk', 'meta-disk'), ('disk', 'resync-after'),
              ('net', 'handlers'), ('disk', 'max-buffers'),
              ('net', 'al-extents'))
    @ddt.unpack
    def test_unknown_option_refused(self, section, name):
        exc = self.refused(spec(**{section: {name: 1}}),
                           f'spec.{section}.{name}')
        self.assertIn('not a', str(exc))

    @ddt.idata([(section, name) for section, known in
                protocol.OPTION_SECTIONS.items() for name in known])
    @ddt.unpack
    def test_option_types_and_ranges(self, section, name):
        option = protocol.OPTION_SECTIONS[section][name]
        field = f'spec.{section}.{name}'
        good = {'int': [option.low, option.high], 'bool': [True, False],
                'choice': list(option.choices),
                'algorithm': ['crc32c', 'sha256']}[option.kind]
        bad = {'int': [option.low - 1, option.high + 1, str(option.low),
                       True, 1.0, None],
               'bool': ['yes', 1, None],
               'choice': ['call-local-io-error', 'Detach', 1],
               'algorithm': [1, 'SHA256', 'sha256 x']}[option.kind]
        for value in good:
            protocol.check_spec('spec', spec(**{section: {name: value}}))
        for value in bad + list(EVIL):
            self.refused(spec(**{section: {name: value}}), field)

    @ddt.idata(EVIL)
    def test_metacharacters_refused_in_every_string_field(self, evil):
        for changes, field in (
                ({'protocol': evil}, 'spec.protocol'),
                ({'quorum': evil}, 'spec.quorum'),
                ({'on_no_quorum': evil}, 'spec.on_no_quorum'),
                ({'hosts': _hosts(name=evil)}, 'spec.hosts[0].name'),
                ({'hosts': _hosts(address=evil)}, 'spec.hosts[0].address'),
                ({'hosts': _hosts(vg=evil)}, 'spec.hosts[0].vg'),
                ({'hosts': _hosts(role=evil)}, 'spec.hosts[0].role'),
                ({'connections': [['stor1', evil]]},
                 'spec.connections[0][1]'),
                ({'minor': evil}, 'spec.minor'),
                ({'size': evil}, 'spec.size')):
            self.refused(spec(**changes), field)

    @ddt.data(({'minor': -1}, 'spec.minor'),
              ({'minor': protocol.MINOR_MAX + 1}, 'spec.minor'),
              ({'port': 0}, 'spec.port'), ({'port': 65536}, 'spec.port'),
              ({'size': 0}, 'spec.size'), ({'size': 1000}, 'spec.size'),
              ({'size': protocol.SIZE_MAX + 512}, 'spec.size'),
              ({'size': True}, 'spec.size'),
              ({'quorum': 0}, 'spec.quorum'), ({'quorum': 33}, 'spec.quorum'),
              ({'quorum': True}, 'spec.quorum'),
              ({'allow_two_primaries': 'yes'}, 'spec.allow_two_primaries'),
              ({'hosts': []}, 'spec.hosts'), ({'hosts': {}}, 'spec.hosts'),
              ({'net': []}, 'spec.net'),
              ({'hosts': _hosts(node_id=32)}, 'spec.hosts[0].node_id'),
              ({'hosts': _hosts(node_id=-1)}, 'spec.hosts[0].node_id'),
              ({'hosts': _hosts(address='fe80::1%eth0')},
               'spec.hosts[0].address'),
              ({'hosts': _hosts(address=167772161)},
               'spec.hosts[0].address'),
              ({'hosts': _hosts(address='stor1.example.org')},
               'spec.hosts[0].address'))
    @ddt.unpack
    def test_out_of_range_refused(self, changes, field):
        self.refused(spec(**changes), field)

    @ddt.data('any', 'spread')
    def test_zone_policy(self, zones):
        protocol.check_spec('spec', spec(zones=zones))

    @ddt.data('Spread', 'spread ', 'all', '', None, 1, ['spread'],
              'spread\n# blackstor-tiebreaker x')
    def test_other_zone_policy_refused(self, zones):
        exc = self.refused(spec(zones=zones), 'spec.zones')
        self.assertIn('any, spread', str(exc))

    def test_too_many_hosts_refused(self):
        hosts = [{'name': f'n{i}', 'node_id': i % 32,
                  'address': f'10.0.1.{i}', 'role': 'diskful', 'vg': 'vg'}
                 for i in range(33)]
        self.refused(spec(hosts=hosts, connections=[]), 'spec.hosts')

    def test_roles_and_volume_groups(self):
        self.refused(spec(hosts=_hosts(vg=None)), 'spec.hosts[0].vg')
        no_vg = _hosts()
        del no_vg[0]['vg']
        self.refused(spec(hosts=no_vg), 'spec.hosts[0].vg')
        hosts = _hosts()
        hosts[2]['vg'] = 'vg'
        self.refused(spec(hosts=hosts), 'spec.hosts[2].vg')
        everyone_diskless = [dict(name=h['name'], node_id=h['node_id'],
                                  address=h['address'], role='diskless')
                             for h in SPEC['hosts']]
        self.refused(spec(hosts=everyone_diskless, connections=[]),
                     'spec.hosts')

    @ddt.data(({'name': 'STOR1'}, 'spec.hosts[1].name', 'twice'),
              ({'node_id': 0}, 'spec.hosts[1].node_id', 'also used'),
              ({'address': '10.0.0.1'}, 'spec.hosts[1].address',
               'also used'))
    @ddt.unpack
    def test_duplicates_refused(self, changes, field, why):
        hosts = _hosts()
        hosts[1].update(changes)
        exc = self.refused(spec(hosts=hosts, connections=[]), field)
        self.assertIn(why, str(exc))

    @ddt.data([['stor1', 'nobody']], [['stor1', 'stor1']],
              [['stor1', 'stor2'], ['stor2', 'stor1']],
              [['stor1', 'stor2', 'hv1']], [['stor1']], ['stor1'])
    def test_bad_connections_refused(self, connections):
        exc = self.assertRaises(protocol.ProtocolError, protocol.check_spec,
                                'spec', spec(connections=connections))
        self.assertTrue(exc.field.startswith('spec.connections'), exc.field)

    def test_two_clients_never_connect(self):
        hosts = SPEC['hosts'] + [{'name': 'hv2', 'node_id': 3,
                                  'address': '10.0.0.4', 'role': 'diskless'}]
        exc = self.refused(spec(hosts=hosts, connections=[['hv1', 'hv2']]),
                           'spec.connections[0]')
        self.assertIn('diskless', str(exc))

    def test_mixed_ip_versions_refused(self):
        exc = self.refused(spec(hosts=_hosts(address='fd00::1')),
                           'spec.connections[0]')
        self.assertIn('IP version', str(exc))


@ddt.ddt
class ParseOptionsTest(base.TestCase):
    """Options as cinder.conf writes them, typed for the wire."""

    @ddt.data(('disk', 'c-max-rate', '750M', 768000),
              ('disk', 'resync-rate', '100', 100),
              ('disk', 'resync-rate', '1G', 1 << 20),
              ('disk', 'c-fill-target', '1M', 2048),
              ('net', 'sndbuf-size', '0', 0),
              ('net', 'sndbuf-size', '2M', 2 << 20),
              ('net', 'max-buffers', '8000', 8000),
              ('net', 'max-buffers', 8000, 8000),
              ('disk', 'disk-flushes', 'no', False),
              ('disk', 'md-flushes', 'Yes', True),
              ('net', 'verify-alg', 'sha256', 'sha256'),
              ('disk', 'on-io-error', 'detach', 'detach'))
    @ddt.unpack
    def test_parsed(self, section, name, text, value):
        self.assertEqual({name: value}, protocol.parse_options(
            'opts', section, {name: text}))

    @ddt.data(('net', 'max-buffers', '8k'), ('net', 'max-buffers', '1.5'),
              ('disk', 'c-max-rate', '5G'), ('disk', 'c-fill-target', '1G'),
              ('net', 'sndbuf-size', '-1'), ('disk', 'disk-flushes', '1'),
              ('net', 'max-buffers', '8000; handlers {'),
              ('net', 'timeout', '60\n'), ('disk', 'size', '1G'),
              ('net', 'verify-alg', 'sha256;'))
    @ddt.unpack
    def test_refused(self, section, name, text):
        exc = self.assertRaises(protocol.ProtocolError,
                                protocol.parse_options, 'opts', section,
                                {name: text})
        self.assertEqual(f'opts.{name}', exc.field)

    def test_not_a_mapping(self):
        self.assertRaises(protocol.ProtocolError, protocol.parse_options,
                          'opts', 'net', ['max-buffers'])
