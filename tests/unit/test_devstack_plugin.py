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
"""The devstack plugin (devstack/), run in bash against stub devstack.

Each test sources ``override-defaults``, ``settings`` and ``plugin.sh`` in
a fresh bash with small stand-ins for the devstack functions the plugin
calls. ``iniset`` writes real ini files (through configparser); ``sudo``
runs file commands unprivileged inside the test directory and only records
the rest (LVM, DRBD, useradd), so the tests need no root and change nothing
outside their temporary directory.
"""

import configparser
import os
import pathlib
import pwd
import shutil
import subprocess
import sys

import ddt
import fixtures
from oslo_config import cfg

from blackstor_cinder import backend as backend_conf
from blackstor_cinder.node import config as node_config
from blackstor_cinder.node import lvmfilter
from blackstor_cinder import options
from tests.unit import base

TOP = pathlib.Path(__file__).resolve().parents[2]
DEVSTACK = TOP / 'devstack'
NODE_BIN = '/opt/stack/data/venv/bin/blackstor-node'
DIE_RC = 3

INISET_PY = r'''
import configparser, sys
path, section, option, value = sys.argv[1:5]
parser = configparser.RawConfigParser()
parser.optionxform = str
parser.read(path)
if section != 'DEFAULT' and not parser.has_section(section):
    parser.add_section(section)
parser.set(section, option, value)
with open(path, 'w') as f:
    parser.write(f)
'''

# Stand-ins for the devstack functions plugin.sh and settings use.
STUBS = r'''
function _record {
    printf '%s\n' "$*" >> "$STUB_LOG"
}
function iniset {
    if [[ "$1" == "-sudo" ]]; then
        shift
    fi
    "$STUB_PYTHON" -I -S -c "$INISET_PY" "$@"
}
function is_service_enabled {
    local service
    for service in "$@"; do
        if [[ ",$ENABLED_SERVICES," == *",$service,"* ]]; then
            return 0
        fi
    done
    return 1
}
function enable_service {
    ENABLED_SERVICES+=",$1"
}
function disable_service {
    ENABLED_SERVICES=$(echo ",$ENABLED_SERVICES," | sed "s/,$1,/,/g")
}
function trueorfalse {
    local default=$1
    local value=${!2:-$default}
    case "$value" in
        True|true|1|yes) echo True ;;
        False|false|0|no) echo False ;;
        *) echo "$default" ;;
    esac
}
function define_plugin { _record "define_plugin $*"; }
function echo_summary { _record "echo_summary $*"; }
function setup_develop { _record "setup_develop $*"; }
function install_package { _record "install_package $*"; }
function is_ubuntu { return 0; }
function get_python_exec_prefix { echo /opt/stack/data/venv/bin; }
function die {
    shift
    echo "DIE: $*" >&2
    exit 3
}
function modinfo {
    _record "modinfo $*"
    echo "$STUB_MODINFO"
}
function openstack {
    _record "openstack $*"
    if [[ " $* " == *" volume type show "* ]]; then
        return "${STUB_TYPE_SHOW_RC:-0}"
    fi
}
function sudo {
    _record "sudo $*"
    case "$1" in
        install|rm|chmod|tee|find|grep|awk|cp) "$@" ;;
        env)
            shift
            while [[ "$1" == *=* ]]; do
                _record "env $1"
                shift
            done
            sudo "$@"
            ;;
        lvmconfig) echo "global_filter=${STUB_GLOBAL_FILTER:-[\"a|.*|\"]}" ;;
        losetup)
            if [[ " $* " == *" --show "* ]]; then
                echo /dev/loop7
            fi
            ;;
        vgs|lvs) return "${STUB_LVM_RC:-5}" ;;
        *) return 0 ;;
    esac
}
'''

# The parts of Debian's lvm.conf the plugin reads.
LVM_CONF = """config {
\tcheck_in_kernel = 1
}
devices {
\tdir = "/dev"
\t# global_filter = [ "a|.*|" ]
\tscan_lvs = 0
}
"""


@ddt.ddt
class TestDevstackPlugin(base.TestCase):

    def setUp(self):
        super().setUp()
        self.bash = shutil.which('bash')
        if not self.bash:
            self.skipTest('bash is not installed')
        self.tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.log = self.tmp / 'stub.log'
        self.cinder_conf = self.tmp / 'cinder' / 'cinder.conf'
        self.cinder_conf.parent.mkdir()
        self.host_keys = self.tmp / 'hostkeys'
        self.host_keys.mkdir()
        (self.host_keys / 'ssh_host_ed25519_key.pub').write_text(
            'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyEd root@node-a\n')
        (self.host_keys / 'ssh_host_rsa_key.pub').write_text(
            'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABHostKeyRsa root@node-a\n')
        self.proc_drbd = self.tmp / 'proc_drbd'
        self.lvm_conf = self.tmp / 'lvm' / 'lvm.conf'
        self.lvm_conf.parent.mkdir()
        self.lvm_conf.write_text(LVM_CONF)
        self.env = {
            'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
            'HOME': str(self.tmp),
            'STUB_LOG': str(self.log),
            'STUB_PYTHON': sys.executable,
            'INISET_PY': INISET_PY,
            'STUB_MODINFO': '',
            'DEVSTACK': str(DEVSTACK),
            'ENABLED_SERVICES': 'key,keystone,c-api,c-sch,c-vol',
            'STACK_USER': pwd.getpwuid(os.getuid()).pw_name,
            'DATA_DIR': str(self.tmp / 'data'),
            'CINDER_CONF': str(self.cinder_conf),
            'HOST_IP': '192.0.2.10',
            'REGION_NAME': 'RegionOne',
            'BLACKSTOR_NODE_NAME': 'node-a',
            'BLACKSTOR_POOL_SIZE': '1M',
            'BLACKSTOR_NODE_CONF': str(self.tmp / 'etc-blackstor/node.conf'),
            'BLACKSTOR_RESOURCE_DIR': str(self.tmp / 'drbd.d'),
            'BLACKSTOR_SUDOERS_FILE': str(self.tmp / 'sudoers.d/blackstor'),
            'BLACKSTOR_SSH_USER': 'blackstor-devstack-test-nouser',
            'BLACKSTOR_SSH_HOME': str(self.tmp / 'home'),
            'BLACKSTOR_SSH_KEY': str(self.tmp / 'cinder/blackstor_id'),
            'BLACKSTOR_SSH_KNOWN_HOSTS': str(self.tmp / 'cinder/known_hosts'),
            'BLACKSTOR_SSH_HOST_KEY_DIR': str(self.host_keys),
            '_BLACKSTOR_PROC_DRBD': str(self.proc_drbd),
            'BLACKSTOR_LVM_CONF': str(self.lvm_conf),
        }
        (self.tmp / 'data').mkdir()
        (self.tmp / 'sudoers.d').mkdir()

    def run_plugin(self, script, expect_rc=0, **env):
        """Source the plugin files in bash, then run ``script``."""
        full_env = dict(self.env, **env)
        text = '\n'.join([
            STUBS,
            'source "$DEVSTACK/override-defaults"',
            'source "$DEVSTACK/settings"',
            script,
        ])
        proc = subprocess.run([self.bash, '-c', text], env=full_env,
                              cwd=str(self.tmp), capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(expect_rc, proc.returncode,
                         'stdout:\n%s\nstderr:\n%s' % (proc.stdout,
                                                       proc.stderr))
        return proc

    def calls(self):
        if not self.log.exists():
            return []
        return self.log.read_text().splitlines()

    def read_ini(self, path):
        parser = configparser.RawConfigParser()
        parser.optionxform = str
        self.assertEqual([str(path)], parser.read(str(path)))
        return parser

    def load_backend(self, group):
        """The backend section as the driver's oslo.config options see it."""
        conf = cfg.ConfigOpts()
        conf.register_opts(options.blackstor_opts, group=group)
        conf(args=[], default_config_files=[str(self.cinder_conf)])
        return conf[group]

    # override-defaults and settings

    @ddt.data((None, 'blackstor:blackstor-1'),
              ('lvm:lvmdriver-1', 'lvm:lvmdriver-1'))
    @ddt.unpack
    def test_override_defaults(self, preset, expected):
        env = {} if preset is None else {'CINDER_ENABLED_BACKENDS': preset}
        proc = self.run_plugin('echo "$CINDER_ENABLED_BACKENDS"', **env)
        self.assertEqual(expected, proc.stdout.strip())

    def test_settings_define_plugin_and_defaults(self):
        proc = self.run_plugin(
            'echo "$BLACKSTOR_DIR|$BLACKSTOR_VG/$BLACKSTOR_THINPOOL|'
            '$BLACKSTOR_BACKING_FILE|$ENABLED_SERVICES"')
        bs_dir, pool, backing, services = proc.stdout.strip().split('|')
        self.assertEqual(str(TOP), bs_dir)
        self.assertEqual('blackstor/thinpool', pool)
        self.assertEqual(str(self.tmp / 'data'),
                         os.path.dirname(backing))
        self.assertIn('blackstor-node', services.split(','))
        self.assertIn('define_plugin blackstor', self.calls())

    # configure_cinder_backend_blackstor

    def test_configure_backend_ssh(self):
        self.run_plugin('source "$DEVSTACK/plugin.sh"\n'
                        'configure_cinder_backend_blackstor blackstor-1')
        section = self.read_ini(self.cinder_conf)['blackstor-1']
        self.assertEqual('blackstor-1', section['volume_backend_name'])
        self.assertEqual('blackstor_cinder.driver.BlackStorDriver',
                         section['volume_driver'])
        known = {opt.dest for opt in options.blackstor_opts}
        extra = set(section) - known - {'volume_backend_name',
                                        'volume_driver'}
        self.assertEqual(set(), extra, 'keys that are no driver option')

        backend = self.load_backend('blackstor-1')
        self.assertEqual(['node-a'], backend.blackstor_storage_nodes)
        self.assertEqual(['node-a'], backend.blackstor_client_nodes)
        self.assertEqual({'node-a': '192.0.2.10'},
                         backend.blackstor_ssh_addresses)
        self.assertEqual({'node-a': '192.0.2.10'},
                         backend.blackstor_replication_addresses)
        self.assertEqual('blackstor/thinpool', backend.blackstor_pool)
        self.assertEqual(1, backend.blackstor_replicas)
        self.assertEqual('any', backend.blackstor_zone_policy)
        self.assertEqual('sudo -n ' + NODE_BIN,
                         backend.blackstor_node_command)
        self.assertEqual('sudo -n ' + NODE_BIN,
                         backend.blackstor_local_node_command)
        self.assertEqual(self.env['BLACKSTOR_SSH_KEY'],
                         backend.blackstor_ssh_private_key)
        self.assertEqual(self.env['BLACKSTOR_SSH_KNOWN_HOSTS'],
                         backend.blackstor_ssh_known_hosts)
        self.assertEqual(22, backend.blackstor_ssh_port)
        self.assertEqual('7000-7999', backend.blackstor_port_range)
        self.assertEqual({}, backend.blackstor_node_zones)

    def test_configure_backend_local_transport(self):
        self.run_plugin('source "$DEVSTACK/plugin.sh"\n'
                        'configure_cinder_backend_blackstor bs',
                        BLACKSTOR_TRANSPORT='local',
                        BLACKSTOR_REPLICATION_IP='198.51.100.7')
        backend = self.load_backend('bs')
        self.assertEqual({'node-a': 'local'},
                         backend.blackstor_ssh_addresses)
        self.assertEqual({'node-a': '198.51.100.7'},
                         backend.blackstor_replication_addresses)

    def test_configure_backend_three_nodes(self):
        self.run_plugin(
            'source "$DEVSTACK/plugin.sh"\n'
            'configure_cinder_backend_blackstor bs',
            BLACKSTOR_STORAGE_NODES='sa,sb,sc',
            BLACKSTOR_CLIENT_NODES='hv1,hv2',
            BLACKSTOR_SSH_ADDRESSES='sa:10.0.0.1,sb:10.0.0.2:2222,'
                                    'sc:10.0.0.3',
            BLACKSTOR_REPLICATION_ADDRESSES='sa:10.1.0.1,sb:10.1.0.2,'
                                            'sc:10.1.0.3',
            BLACKSTOR_NODE_ZONES='sa:z1,sb:z2,sc:z3',
            BLACKSTOR_REPLICAS='3', BLACKSTOR_ZONE_POLICY='spread')
        backend = self.load_backend('bs')
        self.assertEqual(['sa', 'sb', 'sc'], backend.blackstor_storage_nodes)
        self.assertEqual(['hv1', 'hv2'], backend.blackstor_client_nodes)
        self.assertEqual('10.0.0.2:2222',
                         backend.blackstor_ssh_addresses['sb'])
        self.assertEqual({'sa': 'z1', 'sb': 'z2', 'sc': 'z3'},
                         backend.blackstor_node_zones)
        self.assertEqual(3, backend.blackstor_replicas)
        self.assertEqual('spread', backend.blackstor_zone_policy)

    def test_backend_names_as_lib_cinder_loops(self):
        # lib/cinder calls configure_cinder_backend_<type> <name> for each
        # type:name; the plugin finds its own backends the same way.
        self.run_plugin(
            'source "$DEVSTACK/plugin.sh"\n'
            'for be in $(_blackstor_backend_names); do\n'
            '    configure_cinder_backend_blackstor "$be"\n'
            'done',
            CINDER_ENABLED_BACKENDS='lvm:lvmdriver-1,blackstor:bs-a,'
                                    'blackstor:bs-b')
        parser = self.read_ini(self.cinder_conf)
        self.assertEqual(['bs-a', 'bs-b'], parser.sections())
        self.assertEqual('bs-b', parser['bs-b']['volume_backend_name'])
        # the same nodes: each backend gets its own slice of the ranges
        self.assertEqual(
            [('1000-10499', '7000-7499'), ('10500-19999', '7500-7999')],
            [(parser[be]['blackstor_minor_range'],
              parser[be]['blackstor_port_range'])
             for be in ('bs-a', 'bs-b')])
        ranges = [backend_conf.BackendRanges.of(be, self.load_backend(be))
                  for be in ('bs-a', 'bs-b')]
        backend_conf.check_disjoint(ranges[0], ranges[1:])

    def test_three_backends_share_an_odd_range(self):
        self.run_plugin(
            'source "$DEVSTACK/plugin.sh"\n'
            'for be in $(_blackstor_backend_names); do\n'
            '    configure_cinder_backend_blackstor "$be"\n'
            'done',
            CINDER_ENABLED_BACKENDS='blackstor:x,blackstor:y,blackstor:z',
            BLACKSTOR_PORT_RANGE='7000-7100')
        parser = self.read_ini(self.cinder_conf)
        self.assertEqual(['7000-7032', '7033-7065', '7066-7100'],
                         [parser[be]['blackstor_port_range']
                          for be in ('x', 'y', 'z')])

    # phases

    def test_install_phase(self):
        self.run_plugin('source "$DEVSTACK/plugin.sh" stack install')
        calls = self.calls()
        self.assertIn('setup_develop %s' % TOP, calls)
        self.assertIn('install_package drbd-utils lvm2', calls)
        self.assertIn('install_package thin-provisioning-tools', calls)
        self.assertIn('install_package openssh-server', calls)
        self.assertFalse([c for c in calls if 'drbd-dkms' in c])

    def test_install_phase_without_node_service(self):
        self.run_plugin('disable_service blackstor-node\n'
                        'source "$DEVSTACK/plugin.sh" stack install')
        calls = [c for c in self.calls() if not c.startswith(
            ('define_plugin', 'echo_summary'))]
        self.assertEqual(['setup_develop %s' % TOP], calls)

    def test_install_phase_linbit_ppa(self):
        self.run_plugin('source "$DEVSTACK/plugin.sh" stack install',
                        BLACKSTOR_DRBD9_PPA='True')
        calls = self.calls()
        self.assertIn('sudo add-apt-repository -y '
                      'ppa:linbit/linbit-drbd9-stack', calls)
        self.assertIn('install_package drbd-dkms', calls)

    def test_post_config_node_conf(self):
        self.run_plugin('source "$DEVSTACK/plugin.sh" stack post-config',
                        BLACKSTOR_TRANSPORT='local')
        node = self.read_ini(self.env['BLACKSTOR_NODE_CONF'])['node']
        self.assertEqual({'node_name': 'node-a',
                          'pools': 'blackstor/thinpool',
                          'resource_dir': self.env['BLACKSTOR_RESOURCE_DIR'],
                          'drbd_config': '/etc/drbd.conf'}, dict(node))
        # ... and the agent reads it as meant.
        loaded = node_config.load([self.env['BLACKSTOR_NODE_CONF']])
        self.assertEqual(['blackstor/thinpool'], loaded.pools)
        self.assertEqual('node-a', loaded.node_name)
        self.assertEqual(self.env['BLACKSTOR_RESOURCE_DIR'],
                         loaded.resource_dir)
        self.assertEqual('', loaded.root_helper)
        # local transport: no key, no SSH account, no sudoers rule
        self.assertFalse(os.path.exists(self.env['BLACKSTOR_SSH_KEY']))
        self.assertFalse(os.path.exists(self.env['BLACKSTOR_SUDOERS_FILE']))
        self.assertFalse([c for c in self.calls() if 'useradd' in c])

    def test_post_config_ssh(self):
        if not shutil.which('ssh-keygen'):
            self.skipTest('ssh-keygen is not installed')
        known_hosts = pathlib.Path(self.env['BLACKSTOR_SSH_KNOWN_HOSTS'])
        known_hosts.write_text('other-node ssh-ed25519 AAAAother\n'
                               '192.0.2.10 ssh-ed25519 AAAAstale\n')
        script = 'source "$DEVSTACK/plugin.sh" stack post-config'
        self.run_plugin(script)
        self.run_plugin(script)     # idempotent

        key = pathlib.Path(self.env['BLACKSTOR_SSH_KEY'])
        self.assertEqual(0o600, key.stat().st_mode & 0o777)
        public = key.with_name(key.name + '.pub').read_text().strip()
        self.assertTrue(public.startswith('ssh-ed25519 '))

        self.assertEqual(
            ['other-node ssh-ed25519 AAAAother',
             '192.0.2.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyEd',
             '192.0.2.10 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABHostKeyRsa'],
            known_hosts.read_text().splitlines())

        auth = self.tmp / 'home/.ssh/authorized_keys'
        self.assertEqual(
            ['restrict,command="sudo -n %s" %s' % (NODE_BIN, public)],
            auth.read_text().splitlines())

        sudoers = pathlib.Path(self.env['BLACKSTOR_SUDOERS_FILE'])
        self.assertIn('blackstor-devstack-test-nouser ALL=(root) '
                      'NOPASSWD: %s ""' % NODE_BIN,
                      sudoers.read_text().splitlines())
        self.assertEqual(0o440, sudoers.stat().st_mode & 0o777)
        calls = self.calls()
        self.assertTrue([c for c in calls if c.startswith(
            'sudo useradd --system') and c.endswith(
            'blackstor-devstack-test-nouser')])
        self.assertTrue([c for c in calls if c.startswith(
            'sudo visudo -c -q -f ')])

    def test_known_hosts_with_port(self):
        if not shutil.which('ssh-keygen'):
            self.skipTest('ssh-keygen is not installed')
        self.run_plugin('source "$DEVSTACK/plugin.sh"\n'
                        'blackstor_setup_ssh_client',
                        BLACKSTOR_SSH_PORT='2222')
        lines = pathlib.Path(
            self.env['BLACKSTOR_SSH_KNOWN_HOSTS']).read_text().splitlines()
        self.assertEqual(['[192.0.2.10]:2222'] * 2,
                         [line.split()[0] for line in lines])

    def test_init_creates_thin_pool_once(self):
        self.proc_drbd.write_text(
            'version: 9.2.18 (api:2/proto:86-122)\nGIT-hash: 0\n')
        self.run_plugin('source "$DEVSTACK/plugin.sh"\n'
                        'init_cinder_backend_blackstor bs-a\n'
                        'init_cinder_backend_blackstor bs-b')
        calls = self.calls()
        self.assertEqual(['sudo vgcreate blackstor /dev/loop7'],
                         [c for c in calls if 'vgcreate' in c])
        self.assertEqual(['sudo lvcreate --yes --type thin-pool --extents '
                          '95%FREE --name thinpool blackstor'],
                         [c for c in calls if 'lvcreate' in c])
        backing = self.tmp / 'data/blackstor-backing'
        self.assertEqual(1024 * 1024, backing.stat().st_size)

    def global_filter(self):
        """The value of the global_filter line LVM would use."""
        lines = [line for line in self.lvm_conf.read_text().splitlines()
                 if line.strip().startswith('global_filter')]
        self.assertEqual(1, len(lines), lines)
        self.assertTrue(lines[0].endswith('  # from blackstor'), lines[0])
        return lines[0].split('=', 1)[1].rsplit('#', 1)[0].strip()

    def patterns(self):
        return [('a' if accepts else 'r') + regex.pattern
                for accepts, regex in lvmfilter.parse_filter(
                    self.global_filter())]

    def assert_keeps_drbd_out(self, value):
        # What the agent checks: LVM must not scan a DRBD device by any
        # of its names.
        self.assertIsNone(lvmfilter.scan_problem(
            {'global_filter': value, 'filter': '["a|.*|"]'},
            lvmfilter.drbd_device_names(1000, 'volume-x',
                                        '/dev/blackstor/volume-x')))

    def test_init_keeps_lvm_off_drbd_devices(self):
        self.proc_drbd.write_text('version: 9.2.18 (api:2/proto:86-122)\n')
        self.run_plugin('source "$DEVSTACK/plugin.sh"\n'
                        'init_cinder_backend_blackstor bs')
        self.assertEqual(['r^/dev/drbd', 'r^/dev/block/147:', 'a.*'],
                         self.patterns())
        self.assert_keeps_drbd_out(self.global_filter())
        # LVM read the file the plugin writes; before the pool is made
        calls = self.calls()
        self.assertIn(f'env LVM_SYSTEM_DIR={self.lvm_conf.parent}', calls)
        self.assertLess(
            calls.index('sudo lvmconfig --typeconfig full '
                        'devices/global_filter'),
            calls.index('sudo vgcreate blackstor /dev/loop7'))
        # the rest of the file as it was, the line in the devices section
        lines = self.lvm_conf.read_text().splitlines()
        self.assertEqual(LVM_CONF.splitlines(),
                         [line for line in lines
                          if not line.endswith('# from blackstor')])
        self.assertEqual('devices {', lines[lines.index(
            next(x for x in lines if x.endswith('# from blackstor'))) - 1])

    def test_lvm_filter_keeps_what_lvm_accepted(self):
        old = '\tglobal_filter = [ "a|^/dev/sda2$|", "r|.*|" ]\n'
        self.lvm_conf.write_text(LVM_CONF.replace('\tscan_lvs', old +
                                                  '\tscan_lvs'))
        original = self.lvm_conf.read_text()
        for _ in range(2):      # again: the same file
            self.run_plugin(
                'source "$DEVSTACK/plugin.sh"\nblackstor_set_lvm_filter',
                STUB_GLOBAL_FILTER='["a|^/dev/sda2$|","r|.*|"]')
            value = self.global_filter()
            self.assertEqual(['r^/dev/drbd', 'r^/dev/block/147:',
                              'a^/dev/sda2$', 'r.*'], self.patterns())
            self.assert_keeps_drbd_out(value)
            patterns = lvmfilter.parse_filter(value)
            self.assertTrue(lvmfilter.passes(patterns, ['/dev/sda2']))
            self.assertFalse(lvmfilter.passes(patterns, ['/dev/sdb']))
            self.assertIn('#blackstor-off# ' + old,
                          self.lvm_conf.read_text())
        self.run_plugin('source "$DEVSTACK/plugin.sh" clean')
        self.assertEqual(original, self.lvm_conf.read_text())

    def test_lvm_filter_without_devices_section(self):
        self.lvm_conf.write_text('global {\n}\n')
        self.run_plugin(
            'source "$DEVSTACK/plugin.sh"\nblackstor_set_lvm_filter')
        self.assert_keeps_drbd_out(self.global_filter())
        self.run_plugin('source "$DEVSTACK/plugin.sh" clean')
        self.assertEqual('global {\n}\n', self.lvm_conf.read_text())

    def test_lvm_filter_refused(self):
        self.lvm_conf.write_text('devices {\n\tglobal_filter = [ "a|x|",\n'
                                 '\t\t"r|.*|" ]\n}\n')
        before = self.lvm_conf.read_text()
        proc = self.run_plugin(
            'source "$DEVSTACK/plugin.sh"\nblackstor_set_lvm_filter',
            expect_rc=DIE_RC, STUB_GLOBAL_FILTER='["a|x|","r|.*|"]')
        self.assertIn('global_filter over several lines', proc.stderr)
        self.assertEqual(before, self.lvm_conf.read_text())
        proc = self.run_plugin(
            'source "$DEVSTACK/plugin.sh"\nblackstor_set_lvm_filter',
            expect_rc=DIE_RC, STUB_GLOBAL_FILTER='3')
        self.assertIn("cannot read devices/global_filter of "
                      f"{self.lvm_conf}: 'global_filter=3'", proc.stderr)

    def test_lvm_filter_off(self):
        self.run_plugin(
            'source "$DEVSTACK/plugin.sh"\nblackstor_set_lvm_filter',
            BLACKSTOR_LVM_FILTER='False')
        self.assertEqual(LVM_CONF, self.lvm_conf.read_text())
        self.assertFalse([c for c in self.calls() if 'lvmconfig' in c])

    def test_init_on_backing_device(self):
        self.proc_drbd.write_text('version: 9.2.18 (api:2/proto:86-122)\n')
        self.run_plugin('source "$DEVSTACK/plugin.sh"\n'
                        'init_cinder_backend_blackstor bs',
                        BLACKSTOR_BACKING_DEVICE='/dev/vdb')
        calls = self.calls()
        self.assertIn('sudo vgcreate blackstor /dev/vdb', calls)
        self.assertFalse([c for c in calls if 'losetup' in c])

    def test_init_existing_pool_left_alone(self):
        self.proc_drbd.write_text('version: 9.2.18 (api:2/proto:86-122)\n')
        self.run_plugin('source "$DEVSTACK/plugin.sh"\n'
                        'init_cinder_backend_blackstor bs', STUB_LVM_RC='0')
        self.assertFalse([c for c in self.calls()
                          if 'vgcreate' in c or 'lvcreate' in c])

    @ddt.data(('version: 8.4.11 (api:1/proto:86-101)\n', ''),
              (None, '8.4.11'),
              ('version: 9.2.13 (api:2/proto:86-122)\n', ''),
              (None, '9.1.22'),
              (None, ''))
    @ddt.unpack
    def test_init_refuses_without_drbd9(self, proc_text, modinfo):
        if proc_text is not None:
            self.proc_drbd.write_text(proc_text)
        proc = self.run_plugin('source "$DEVSTACK/plugin.sh"\n'
                               'init_cinder_backend_blackstor bs',
                               expect_rc=DIE_RC, STUB_MODINFO=modinfo)
        self.assertIn('DRBD 9 kernel module', proc.stderr)
        self.assertFalse([c for c in self.calls() if 'vgcreate' in c])

    def test_init_drbd9_from_modinfo_or_check_off(self):
        self.run_plugin('source "$DEVSTACK/plugin.sh"\n'
                        'init_cinder_backend_blackstor bs',
                        STUB_MODINFO='9.2.14')
        self.run_plugin('source "$DEVSTACK/plugin.sh"\n'
                        'init_cinder_backend_blackstor bs',
                        BLACKSTOR_CHECK_DRBD9='False')
        self.assertEqual(2, len([c for c in self.calls()
                                 if 'vgcreate' in c]))

    @ddt.data((1, True), (0, False))
    @ddt.unpack
    def test_extra_phase_volume_types(self, show_rc, created):
        self.proc_drbd.write_text('version: 9.2.18 (api:2/proto:86-122)\n')
        self.run_plugin('source "$DEVSTACK/plugin.sh" stack extra',
                        STUB_TYPE_SHOW_RC=str(show_rc))
        calls = [c for c in self.calls() if c.startswith('openstack')]
        create = ('openstack --os-region-name=RegionOne volume type create '
                  '--property volume_backend_name=blackstor-1 blackstor-1')
        self.assertEqual(created, create in calls)
        self.assertEqual(
            'openstack --os-region-name=RegionOne volume type set '
            '--property volume_backend_name=blackstor-1 '
            '--property blackstor:replicas=1 --property blackstor:zones=any '
            'blackstor-1', calls[-1])

    def test_clean_phase(self):
        res_dir = pathlib.Path(self.env['BLACKSTOR_RESOURCE_DIR'])
        res_dir.mkdir()
        (res_dir / 'volume-1234.res').write_text(
            '# Written by blackstor-cinder; changes are overwritten.\n'
            'resource volume-1234 {\n}\n')
        (res_dir / 'other.res').write_text('resource other {\n}\n')
        node_conf = pathlib.Path(self.env['BLACKSTOR_NODE_CONF'])
        node_conf.parent.mkdir()
        node_conf.write_text('[node]\n')
        backing = self.tmp / 'data/blackstor-backing'
        backing.write_text('')
        self.run_plugin('source "$DEVSTACK/plugin.sh" clean',
                        STUB_LVM_RC='0')
        calls = self.calls()
        self.assertEqual(
            ['sudo drbdadm -c /etc/drbd.conf down volume-1234'],
            [c for c in calls if 'drbdadm' in c])
        self.assertEqual(['other.res'], os.listdir(res_dir))
        self.assertIn('sudo lvremove -f blackstor', calls)
        self.assertIn('sudo vgremove -f blackstor', calls)
        self.assertFalse(node_conf.exists())
        self.assertFalse(backing.exists())

    def test_unstack_takes_resources_down_only(self):
        res_dir = pathlib.Path(self.env['BLACKSTOR_RESOURCE_DIR'])
        res_dir.mkdir()
        (res_dir / 'volume-9.res').write_text(
            '# Written by blackstor-cinder; changes are overwritten.\n'
            'resource "volume-9" {\n}\n')
        self.run_plugin('source "$DEVSTACK/plugin.sh" unstack',
                        STUB_LVM_RC='0')
        calls = self.calls()
        self.assertIn('sudo drbdadm -c /etc/drbd.conf down volume-9', calls)
        self.assertFalse([c for c in calls if 'lvremove' in c])
        self.assertTrue((res_dir / 'volume-9.res').exists())

    def test_not_enabled_does_nothing(self):
        self.run_plugin('disable_service blackstor-node\n'
                        'source "$DEVSTACK/plugin.sh" stack install',
                        CINDER_ENABLED_BACKENDS='lvm:lvmdriver-1')
        self.assertEqual(['define_plugin blackstor'], self.calls())

    @ddt.data('plugin.sh', 'settings', 'override-defaults')
    def test_bash_syntax(self, name):
        proc = subprocess.run([self.bash, '-n', str(DEVSTACK / name)],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(0, proc.returncode, proc.stderr)
