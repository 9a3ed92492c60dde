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
"""Tests of a ResourceSpec as a ``spec`` field, rendered by the agent's
renderer; every rendered file goes through drbdadm."""

import itertools
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import ddt
import testtools

from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import resspec
from blackstor_cinder.node import resrender
from blackstor_cinder import protocol
from tests.unit import base

DRBDADM = shutil.which('drbdadm', path=os.pathsep.join(
    [os.environ.get('PATH', ''), '/usr/sbin', '/sbin']))
SECRET = 'Secret-0123456789abcdef'
NEEDS_DRBDADM = testtools.skipUnless(
    DRBDADM, 'drbdadm (drbd-utils) is not installed; these tests check '
             'rendered files with the real DRBD parser')

# A stand-in for drbdsetup/drbdmeta: `drbdadm -d` only prints the calls,
# but should it ever run one, nothing must reach a real DRBD kernel.
# drbdadm called by its absolute path runs the drbdsetup next to it, so it
# is called by name with the stand-ins first on PATH.
_REFUSE = '#!/bin/sh\necho "test stand-in: refusing $0 $*" >&2\nexit 99\n'


def _host(i, diskful, ipv6=False, name=None, resource='volume-r'):
    name = name or f'node{i}'
    address = f'fd00::{i + 1}' if ipv6 else f'10.0.0.{i + 1}'
    disk = f'/dev/blackstor/{resource}' if diskful else None
    return model.ResourceHost(name, i, address, diskful, disk)


def _render(spec):
    return resrender.render(spec.name, resspec.to_wire(spec))


def _spec(replicas=2, clients=0, ipv6=False, name='volume-r', minor=1000,
          port=7000, **kwargs):
    hosts = tuple(_host(i, i < replicas, ipv6, resource=name)
                  for i in range(replicas + clients))
    return model.ResourceSpec(name=name, minor=minor, port=port,
                              hosts=hosts, secret=SECRET, **kwargs)


def _replace_hosts(spec, index, **changes):
    hosts = list(spec.hosts)
    old = hosts[index]
    fields = dict(name=old.name, node_id=old.node_id, address=old.address,
                  diskful=old.diskful, disk=old.disk)
    fields.update(changes)
    hosts[index] = model.ResourceHost(**fields)
    return spec.with_hosts(tuple(hosts))


@ddt.ddt
class RenderTestCase(base.TestCase):
    """What the text says, without drbdadm."""

    def test_secret_is_never_rendered(self):
        text = _render(_spec(3, 1))
        self.assertNotIn(SECRET, text)
        self.assertIn(f'shared-secret "{protocol.SECRET_PLACEHOLDER}";',
                      text)

    def test_fixed_options(self):
        text = _render(_spec())
        for line in ('protocol C;', 'cram-hmac-alg sha256;',
                     'quorum majority;', 'on-no-quorum io-error;',
                     'auto-promote yes;', 'auto-promote-timeout 100;'):
            self.assertIn(line, text)
        self.assertNotIn('allow-two-primaries', text)
        self.assertNotIn('disk {', text)

    def test_quorum_off_omits_quorum_lines(self):
        text = _render(_spec(quorum='off',
                                    on_no_quorum='suspend-io'))
        self.assertNotIn('quorum', text)
        self.assertIn('auto-promote yes;', text)

    def test_quorum_all_and_number(self):
        self.assertIn('quorum all;', _render(_spec(quorum='all')))
        self.assertIn('quorum 2;', _render(_spec(quorum='2')))

    def test_on_no_quorum(self):
        text = _render(_spec(on_no_quorum='suspend-io'))
        self.assertIn('on-no-quorum suspend-io;', text)

    def test_allow_two_primaries(self):
        text = _render(_spec(allow_two_primaries=True))
        self.assertIn('allow-two-primaries yes;', text)

    def test_connection_blocks_skip_client_pairs(self):
        spec = _spec(2, 2)
        text = _render(spec)
        pairs = re.findall(r'connection \{\s*host (\S+);\s*host (\S+);',
                           text)
        self.assertEqual([('node0', 'node1'), ('node0', 'node2'),
                          ('node0', 'node3'), ('node1', 'node2'),
                          ('node1', 'node3')], pairs)

    def test_hosts_sorted_by_node_id(self):
        spec = _spec(3, 1)
        shuffled = spec.with_hosts(tuple(reversed(spec.hosts)))
        text = _render(shuffled)
        self.assertEqual(['node0', 'node1', 'node2', 'node3'],
                         re.findall(r'^    on (\S+) \{', text, re.M))
        self.assertEqual(_render(spec), text)

    def test_deterministic_option_order(self):
        one = _spec(net_options={'sndbuf-size': '0', 'max-buffers': '8000'},
                    disk_options={'c-max-rate': '750M', 'al-extents': 6007})
        two = _spec(net_options={'max-buffers': '8000', 'sndbuf-size': '0'},
                    disk_options={'al-extents': 6007, 'c-max-rate': '750M'})
        text = _render(one)
        self.assertEqual(text, _render(two))
        self.assertLess(text.index('max-buffers 8000;'),
                        text.index('sndbuf-size 0;'))
        self.assertIn('al-extents 6007;', text)
        # 750M in c-max-rate's unit, KiB/s
        self.assertIn('c-max-rate 768000;', text)

    def test_size_in_kib_in_the_resource_disk_section(self):
        text = _render(_spec(2, 1, size=3 << 30))
        section = re.search(r'^    disk \{\n(.*?)^    \}', text,
                            re.M | re.S)
        self.assertIsNotNone(section, text)
        self.assertEqual('size 3145728k;', section.group(1).strip())
        self.assertEqual(1, text.count('size '))

    def test_size_not_whole_kib_in_sectors(self):
        self.assertIn('size 3s;', _render(_spec(size=1536)))
        self.assertEqual('3s', resrender.size_option(1536))
        self.assertEqual('1048576k', resrender.size_option(1 << 30))

    def test_size_sorted_among_disk_options(self):
        text = _render(_spec(size=1 << 30, disk_options={
            'al-extents': '6007', 'c-max-rate': '750M'}))
        self.assertLess(text.index('c-max-rate 768000;'),
                        text.index('size 1048576k;'))
        self.assertLess(text.index('al-extents 6007;'),
                        text.index('c-max-rate 768000;'))

    def test_no_size_no_disk_section(self):
        # A spec read back from an old .res: the device is not capped.
        text = _render(_spec(3, 1))
        self.assertNotIn('size', text)
        self.assertNotIn('    disk {', text)

    def test_zone_policy_recorded_and_read_back(self):
        for zones in ('any', 'spread'):
            text = _render(_spec(2, 1, zone_policy=zones))
            self.assertEqual(1, text.count('# blackstor-zones'))
            self.assertIn(f'\n# blackstor-zones {zones}\nresource ', text)
            self.assertEqual(zones, resrender.zones(text))

    def test_no_zone_policy_no_line(self):
        text = _render(_spec(2, 1))
        self.assertNotIn('blackstor-zones', text)
        self.assertIsNone(resrender.zones(text))

    @ddt.data('# blackstor-zones Spread\n', '# blackstor-zones all\n',
              '# blackstor-zones any\n# blackstor-zones spread\n',
              '#  blackstor-zones spread\n')
    def test_a_hand_edited_zone_policy_is_not_trusted(self, lines):
        text = _render(_spec(2, 1))
        self.assertIsNone(resrender.zones(lines + text))

    def test_a_bad_zone_policy_is_not_sent(self):
        exc = self.assertRaises(ValueError, resspec.to_wire,
                                _spec(2, 1, zone_policy='everywhere'))
        self.assertIn('spec.zones', str(exc))

    def test_client_disk_none_and_diskful_disk_quoted(self):
        text = _render(_spec(1, 1))
        self.assertIn('disk "/dev/blackstor/volume-r";', text)
        self.assertEqual(1, text.count('disk none;'))

    def test_ipv6_address_bracketed_and_normalised(self):
        spec = _replace_hosts(_spec(2, ipv6=True), 0,
                              address='FD00:0:0::0001')
        text = _render(spec)
        self.assertIn('address ipv6 [fd00::1]:7000;', text)
        self.assertIn('address ipv6 [fd00::2]:7000;', text)

    def test_ipv4_address(self):
        self.assertIn('address ipv4 10.0.0.2:7000;',
                      _render(_spec(2)))


@ddt.ddt
class ValidationTestCase(base.TestCase):
    """The renderer's own refusals: checks drbdadm does not make."""

    def _refused(self, spec, *words):
        exc = self.assertRaises(ValueError, _render, spec)
        for word in words:
            self.assertIn(word, str(exc))
        return exc

    def test_node_id_32_refused(self):
        # drbdadm would accept this one.
        self._refused(_replace_hosts(_spec(2), 1, node_id=32), 'node_id')

    def test_node_id_31_accepted(self):
        self.assertIn('node-id 31;', _render(
            _replace_hosts(_spec(2), 1, node_id=31)))

    def test_negative_node_id_refused(self):
        self._refused(_replace_hosts(_spec(2), 1, node_id=-1), 'node_id')

    def test_duplicate_node_id_refused(self):
        self._refused(_replace_hosts(_spec(3), 2, node_id=0),
                      'node-id 0', 'node0')

    def test_duplicate_host_name_refused(self):
        self._refused(_replace_hosts(_spec(3), 2, name='NODE1'),
                      'twice')

    def test_duplicate_address_refused(self):
        self._refused(_replace_hosts(_spec(3), 2, address='10.0.0.1'),
                      '10.0.0.1', 'node0')

    def test_mixed_ip_versions_refused(self):
        self._refused(_replace_hosts(_spec(2), 1, address='fd00::9'),
                      'IP version')

    @ddt.data('', 'a b', '../x', 'x/y', '-x', 'x;y', 'x"y', 'x}y',
              'volume-\n', 'x' * 64, None, 7)
    def test_bad_resource_name_refused(self, name):
        self._refused(_spec(name=name), 'name')

    @ddt.data('', 'a b', 'a;b', '-a', 'a_b', 'a"', 'a}', 'a.', 'a\n', None)
    def test_bad_host_name_refused(self, name):
        self._refused(_replace_hosts(_spec(2), 1, name=name), 'name')

    @ddt.data('node.example.com', 'Node-7', 'n')
    def test_good_host_name_accepted(self, name):
        self.assertIn(f'on {name} {{', _render(
            _replace_hosts(_spec(2), 1, name=name)))

    @ddt.data('10.0.0.256', 'host.example.com', '', 'fe80::1%eth0',
              '10.0.0.1:7000', '[fd00::1]', None, 167772161)
    def test_bad_address_refused(self, address):
        self._refused(_replace_hosts(_spec(2), 1, address=address),
                      'address')

    @ddt.data(-1, protocol.MINOR_MAX + 1, '1000', True, 1.5)
    def test_bad_minor_refused(self, minor):
        self._refused(_spec(minor=minor), 'minor')

    @ddt.data(0, 65536, '7000', False)
    def test_bad_port_refused(self, port):
        self._refused(_spec(port=port), 'port')

    @ddt.data('none', 'yes', '0', '33', 'majority;', '', None, 0, 33)
    def test_bad_quorum_refused(self, quorum):
        self._refused(_spec(quorum=quorum), 'quorum')

    @ddt.data('freeze', 'io-error;', '', None)
    def test_bad_on_no_quorum_refused(self, value):
        self._refused(_spec(on_no_quorum=value), 'on_no_quorum')

    @ddt.data({'max-buffers': '8000; }'},
              {'max-buffers': '8000;'},
              {'max-buffers': '8000 }'},
              {'max-buffers': '{'},
              {'max-buffers': '"8000"'},
              {'max-buffers': "'8000'"},
              {'max-buffers': '8000\nshared-secret x'},
              {'max-buffers': '8000 # x'},
              {'max-buffers': '$(reboot)'},
              {'max-buffers': ''},
              {'max-buffers': None},
              {'max-buffers': True},
              {'max-buffers; disk': '1'},
              {'max buffers': '1'},
              {'Max-Buffers': '1'},
              {'max-buffers-': '1'},
              {'}': '1'},
              {'': '1'},
              {1: '1'})
    def test_injection_in_net_options_refused(self, options):
        self._refused(_spec(net_options=options), 'net_options')

    @ddt.data({'c-max-rate': '750M"; }'}, {'on-io-error\n': 'detach'},
              {'al-extents': '6007}'})
    def test_injection_in_disk_options_refused(self, options):
        self._refused(_spec(disk_options=options), 'disk_options')

    @ddt.data('protocol', 'shared-secret', 'cram-hmac-alg',
              'allow-two-primaries')
    def test_reserved_net_option_refused(self, name):
        self._refused(_spec(net_options={name: 'A'}), name)

    def test_reserved_disk_option_refused(self):
        self._refused(_spec(disk_options={'size': '1G'}), 'size')

    @ddt.data(0, -512, 1000, 513, True, '1G', 1.5 * 1024,
              (2 << 40) * 512 + 512)
    def test_bad_size_refused(self, size):
        self._refused(_spec(size=size), 'size')
        if isinstance(size, int) and not isinstance(size, bool):
            self.assertRaises(ValueError, resrender.size_option, size)

    def test_largest_size_accepted(self):
        self.assertIn('size 1099511627776k;',
                      _render(_spec(size=(2 << 40) * 512)))

    def test_options_not_a_mapping_refused(self):
        self._refused(_spec(net_options=['max-buffers']), 'net_options')

    @ddt.data('/dev/../etc/passwd', '/dev/./x', 'dev/vg/lv', '/dev',
              '/dev/', '/etc/vg/lv', '/dev/vg//lv', '/dev/vg/l v',
              '/dev/vg/lv";', '/dev/vg/lv\n', '/dev/vg/lv}')
    def test_bad_disk_refused(self, disk):
        self._refused(_replace_hosts(_spec(2), 1, disk=disk), 'disk')

    def test_no_diskful_host_refused(self):
        hosts = (_host(0, False), _host(1, False))
        spec = model.ResourceSpec('volume-x', 1000, 7000, hosts)
        self._refused(spec, 'diskful')

    def test_no_host_refused(self):
        self._refused(model.ResourceSpec('volume-x', 1000, 7000, ()),
                      'hosts')

    def test_too_many_hosts_for_max_peers_refused(self):
        self._refused(_spec(3, 1, max_peers=2), 'max_peers')
        self.assertIn('on node3', _render(_spec(3, 1, max_peers=3)))

    @ddt.data(0, 32, None)
    def test_bad_max_peers_refused(self, max_peers):
        self._refused(_spec(max_peers=max_peers), 'max_peers')

    def test_allow_two_primaries_must_be_bool(self):
        self._refused(_spec(allow_two_primaries='yes'),
                      'allow_two_primaries')


@ddt.ddt
@NEEDS_DRBDADM
class DrbdadmTestCase(base.TestCase):
    """Rendered files checked by the real drbdadm parser."""

    def setUp(self):
        super().setUp()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix='blackstor-res-'))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        bin_dir = self.dir / 'bin'
        bin_dir.mkdir()
        for tool in ('drbdsetup', 'drbdmeta'):
            path = bin_dir / tool
            path.write_text(_REFUSE)
            path.chmod(0o755)
        self.path = os.pathsep.join(
            [str(bin_dir), os.environ.get('PATH', ''),
             os.path.dirname(DRBDADM)])

    def _write(self, spec, filename=None):
        text = _render(spec)
        path = self.dir / (filename or f'{spec.name}.res')
        path.write_text(text.replace(protocol.SECRET_PLACEHOLDER, SECRET))
        return path

    def _drbdadm(self, node, *args):
        env = dict(os.environ, PATH=self.path, __DRBD_NODE__=node)
        return subprocess.run(['drbdadm', *args], env=env, cwd=self.dir,
                              capture_output=True, text=True, timeout=30)

    def _check_parses(self, spec, path):
        for host in spec.hosts:
            proc = self._drbdadm(host.name, '-c', str(path), 'dump',
                                 spec.name)
            self.assertEqual(0, proc.returncode,
                             f'{host.name}: {proc.stderr}')
            self.assertIn(f'resource {spec.name} {{', proc.stdout)
            self.assertIn(f'shared-secret    {SECRET};', proc.stdout)

    def _up_calls(self, spec, path, host):
        proc = self._drbdadm(host, '-c', str(path), '-d', 'up', spec.name)
        self.assertEqual(0, proc.returncode, f'{host}: {proc.stderr}')
        return proc.stdout.splitlines()

    def _peers(self, calls):
        return sorted(m.group(1) for m in
                      map(re.compile(r'^drbdsetup new-peer \S+ \d+ '
                                     r'--_name=(\S+)').match, calls) if m)

    @ddt.idata(itertools.product((1, 2, 3), (0, 1, 2)))
    @ddt.unpack
    def test_replicas_and_clients(self, replicas, clients):
        spec = _spec(replicas, clients, name=f'volume-{replicas}-{clients}')
        path = self._write(spec)
        self._check_parses(spec, path)
        diskful = sorted(h.name for h in spec.diskful_hosts)
        everyone = sorted(h.name for h in spec.hosts)
        self.assertEqual(replicas, len(diskful))
        for host in spec.hosts:
            calls = self._up_calls(spec, path, host.name)
            expected = everyone if host.diskful else diskful
            self.assertEqual([n for n in expected if n != host.name],
                             self._peers(calls), host.name)
            minor_line = f'drbdsetup new-minor {spec.name} 1000 0'
            if host.diskful:
                self.assertIn(minor_line, calls)
                self.assertIn(f'drbdsetup attach 1000 {host.disk} '
                              f'{host.disk} internal', calls)
            else:
                self.assertIn(minor_line + ' --diskless', calls)
                self.assertFalse(any('attach' in c for c in calls))

    def test_zone_policy_line_parses(self):
        spec = _spec(2, 1, zone_policy='spread')
        path = self._write(spec)
        self._check_parses(spec, path)
        self.assertEqual('spread', resrender.zones(path.read_text()))

    def test_ipv6(self):
        spec = _spec(2, 1, ipv6=True)
        path = self._write(spec)
        self._check_parses(spec, path)
        calls = self._up_calls(spec, path, 'node2')
        self.assertIn(r'drbdsetup new-path volume-r 0 '
                      r'ipv6:\[fd00::3\]:7000 ipv6:\[fd00::1\]:7000', calls)

    def test_allow_two_primaries_and_options(self):
        spec = _spec(2, 1, allow_two_primaries=True,
                     net_options={'max-buffers': '8000',
                                  'sndbuf-size': '0'},
                     disk_options={'c-max-rate': '750M',
                                   'al-extents': '6007'})
        path = self._write(spec)
        self._check_parses(spec, path)
        calls = '\n'.join(self._up_calls(spec, path, 'node0'))
        for option in ('--allow-two-primaries=yes', '--max-buffers=8000',
                       '--sndbuf-size=0', '--c-max-rate=768000',
                       '--al-extents=6007', '--protocol=C',
                       f'--shared-secret={SECRET}',
                       '--cram-hmac-alg=sha256', '--quorum=majority',
                       '--on-no-quorum=io-error', '--auto-promote=yes',
                       '--auto-promote-timeout=100'):
            self.assertIn(option, calls)

    @ddt.data((1 << 30, '1048576k'), (1536, '3s'))
    @ddt.unpack
    def test_size_reaches_attach_and_resize(self, size, value):
        spec = _spec(2, 1, size=size)
        path = self._write(spec)
        self._check_parses(spec, path)
        for host in spec.diskful_hosts:
            self.assertIn(f'drbdsetup attach 1000 {host.disk} {host.disk} '
                          f'internal --size={value}',
                          self._up_calls(spec, path, host.name))
        self.assertFalse(any('size' in c for c in
                             self._up_calls(spec, path, 'node2')))
        proc = self._drbdadm('node0', '-c', str(path), '-d', '--',
                             '--assume-clean', 'resize', f'{spec.name}/0')
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertEqual([f'drbdsetup resize 1000 --size={value} '
                          '--assume-clean', 'drbdsetup check-resize 1000'],
                         proc.stdout.splitlines())

    def test_no_size_no_size_option(self):
        spec = _spec(2)
        path = self._write(spec)
        self.assertFalse(any('--size' in c for c in
                             self._up_calls(spec, path, 'node0')))

    def test_every_option_at_its_limits_parses(self):
        # The closed list of options, each at its lowest and its highest
        # value: drbdadm takes every one in the section it is rendered in.
        for pick in (0, 1):
            net, disk = {}, {}
            for options, known in ((net, protocol.NET_OPTIONS),
                                   (disk, protocol.DISK_OPTIONS)):
                for name, option in known.items():
                    options[name] = {
                        'int': (option.low, option.high),
                        'bool': (False, True),
                        'choice': option.choices[:1] + option.choices[-1:],
                        'algorithm': ('crc32c', 'sha256')}[option.kind][pick]
            spec = _spec(2, 1, net_options=net, disk_options=disk)
            path = self._write(spec)
            self._check_parses(spec, path)
            calls = '\n'.join(self._up_calls(spec, path, 'node0'))
            for name, value in list(net.items()) + list(disk.items()):
                shown = resrender._value(value)
                self.assertIn(f'--{name}={shown}', calls)

    def test_quorum_off(self):
        spec = _spec(2, 1, quorum='off')
        path = self._write(spec)
        self._check_parses(spec, path)
        calls = self._up_calls(spec, path, 'node1')
        new_resource = [c for c in calls if 'new-resource' in c]
        self.assertEqual(['drbdsetup new-resource volume-r 1 '
                          '--auto-promote=yes --auto-promote-timeout=100'],
                         new_resource)

    def test_suspend_io_quorum(self):
        spec = _spec(3, quorum='all', on_no_quorum='suspend-io')
        path = self._write(spec)
        self._check_parses(spec, path)
        calls = '\n'.join(self._up_calls(spec, path, 'node2'))
        self.assertIn('--quorum=all --on-no-quorum=suspend-io', calls)

    def test_lvm_name_with_plus_parses(self):
        spec = _replace_hosts(_spec(2), 0, disk='/dev/vg+a/volume-r')
        path = self._write(spec)
        self._check_parses(spec, path)
        calls = self._up_calls(spec, path, 'node0')
        self.assertIn('drbdsetup attach 1000 /dev/vg+a/volume-r '
                      '/dev/vg+a/volume-r internal', calls)

    def test_node_id_31_and_max_peers(self):
        spec = _replace_hosts(_spec(2, max_peers=31), 1, node_id=31)
        path = self._write(spec)
        self._check_parses(spec, path)

    # Clashes across resources: what the agent's --config-to-test catches.

    def _config_to_test(self, existing, new, node='node0'):
        existing_dir = self.dir / 'resources'
        existing_dir.mkdir(exist_ok=True)
        for spec in existing:
            self._write(spec, f'resources/{spec.name}.res')
        main = self.dir / 'main.conf'
        main.write_text(f'include "{existing_dir}/*.res";\n')
        new_path = self._write(new, f'new-{new.name}.res')
        return self._drbdadm(node, '-c', str(main), '--config-to-test',
                             str(new_path), 'sh-nop')

    def test_distinct_minor_and_port_accepted(self):
        proc = self._config_to_test(
            [_spec(2, 1, name='volume-a')],
            _spec(2, 1, name='volume-b', minor=1001, port=7001))
        self.assertEqual(0, proc.returncode, proc.stderr)

    @ddt.data(('node0', 1000, 7001, 'device-minor'),
              ('node2', 1000, 7001, 'device-minor'),
              ('node0', 1001, 7000, 'is also used'),
              ('node2', 1001, 7000, 'is also used'))
    @ddt.unpack
    def test_same_minor_or_port_refused(self, node, minor, port, why):
        proc = self._config_to_test(
            [_spec(2, 1, name='volume-a')],
            _spec(2, 1, name='volume-b', minor=minor, port=port), node)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn(why, proc.stderr)

    def test_same_name_refused(self):
        proc = self._config_to_test(
            [_spec(2, name='volume-a')],
            _spec(2, name='volume-a', minor=1001, port=7001))
        self.assertNotEqual(0, proc.returncode)

    def test_same_port_on_other_addresses_accepted(self):
        # A port clashes only on the same address.
        other = model.ResourceSpec(
            'volume-b', 1001, 7000,
            (model.ResourceHost('node0', 0, '10.0.1.1', True,
                                '/dev/v/volume-b'),
             model.ResourceHost('node9', 1, '10.0.1.9', True,
                                '/dev/v/volume-b')))
        proc = self._config_to_test([_spec(2, name='volume-a')], other)
        self.assertEqual(0, proc.returncode, proc.stderr)
