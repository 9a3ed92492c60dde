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
"""A fake node at the argv boundary: LVM and DRBD with a little state.

:class:`FakeNode` is an ``execute`` callable (processutils' signature). It
records every argv and answers like the real tools would, from a small
state: volume groups, LVs, running DRBD resources, devices holding DRBD
metadata. Parsing and validation of .res files (``drbdadm dump``,
``sh-ll-dev``, ``--config-to-test ... sh-nop``) go to the REAL drbdadm, so
the agent's tests also check what it writes.

Failures are injected with :meth:`FakeNode.fail` (a command exits non-zero)
and :meth:`FakeNode.crash` (the agent "dies": :class:`Crash`, a
BaseException, comes out of the command and out of the agent).
"""

import copy
import json
import os
import subprocess

from oslo_concurrency import processutils

from blackstor_cinder.node import drbd
from blackstor_cinder.node import drbdconf
from blackstor_cinder.node import executor
from blackstor_cinder.node import sizing
from tests.standin import lvm as standin_lvm

GiB = 1 << 30
MiB = 1 << 20

# drbdadm subcommands that only read and go to the real drbdadm.
_REAL_DRBDADM = ('dump', 'sh-ll-dev', 'sh-nop', 'sh-minor', '--version')


class Crash(BaseException):
    """The agent process died at this command."""


class FakeNode:

    def __init__(self, node_name, resource_dir, vgs=None):
        self.node_name = node_name
        self.resource_dir = resource_dir
        #: vg -> {'size', 'extent'}
        self.vgs = vgs if vgs is not None else {
            'vg0': {'size': 100 * GiB, 'extent': 4 * MiB}}
        #: (vg, name) -> dict(size, attr, pool_lv, origin, tags, percent)
        self.lvs = {}
        for vg in self.vgs:
            self.lvs[(vg, 'thin')] = dict(
                size=50 * GiB, attr='twi-aotz--', pool_lv='', origin='',
                tags=[], percent=10.0)
        #: lvm.conf settings over the stand-in's default (LVM sees only
        #: the PVs): {'devices/global_filter': [...]}
        self.lvm_conf = {}
        #: resource -> status entry
        self.running = {}
        #: devices (/dev/vg/lv) with DRBD metadata -> max_peers
        self.metadata = {}
        #: devices -> current UUID, when not just created (4)
        self.uuids = {}
        self.calls = []
        self.envs = []
        #: (argv, the timeout it was given), never cleared
        self.timed_calls = []
        self._failures = []
        self._hangs = []
        self._crash = None

    # -- test helpers ------------------------------------------------------

    def add_lv(self, vg, name, size, tags=('blackstor',), origin='',
               pool='thin'):
        self.lvs[(vg, name)] = dict(size=size, attr='Vwi-a-tz--',
                                    pool_lv=pool, origin=origin,
                                    tags=list(tags), percent=0.0)

    def fail(self, *words, rc=1, stderr='injected failure', times=None):
        """Commands whose argv contains all ``words`` exit with ``rc``."""
        self._failures.append([words, rc, stderr, times])

    def hang(self, *words, take_effect=True):
        """Commands with all ``words`` outlive their timeout.

        With ``take_effect`` the command did its work before it was
        killed (a kernel request that completed late).
        """
        self._hangs.append((words, take_effect))

    def crash(self, *words, after=False):
        """The agent dies at the first command with all ``words``."""
        self._crash = (words, after)

    def snapshot(self):
        """The state, to compare before/after."""
        files = {}
        for name in sorted(os.listdir(self.resource_dir)):
            with open(os.path.join(self.resource_dir, name)) as f:
                files[name] = f.read()
        return copy.deepcopy({'lvs': self.lvs, 'running': self.running,
                              'metadata': self.metadata, 'uuids': self.uuids,
                              'files': files})

    def changes(self):
        """The argv of every command that changes something."""
        return [c for c in self.calls if _changes(c)]

    def count(self, command):
        """How many times ``command`` (argv[0]) ran."""
        return sum(1 for c in self.calls if c[0] == command)

    # -- execute -----------------------------------------------------------

    def __call__(self, *cmd, **kwargs):
        cmd = list(cmd)
        env = dict(kwargs.get('env_variables') or {})
        if cmd[0] == 'env':
            cmd.pop(0)
            while '=' in cmd[0]:
                key, _, value = cmd.pop(0).partition('=')
                env[key] = value
        self.calls.append(cmd)
        self.envs.append(env)
        self.timed_calls.append((cmd, kwargs.get('timeout')))
        for words, take_effect in self._hangs:
            if all(w in cmd for w in words):
                if take_effect:
                    getattr(self, '_' + cmd[0])(cmd[1:], kwargs)
                raise subprocess.TimeoutExpired(cmd, kwargs.get('timeout'))
        if self._crash and all(w in cmd for w in self._crash[0]) \
                and not self._crash[1]:
            self._crash = None
            raise Crash(' '.join(cmd))
        for failure in self._failures:
            words, rc, stderr, times = failure
            if all(w in cmd for w in words) and times != 0:
                if times is not None:
                    failure[3] = times - 1
                raise processutils.ProcessExecutionError(
                    exit_code=rc, stdout='', stderr=stderr,
                    cmd=' '.join(cmd))
        handler = getattr(self, '_' + cmd[0], None)
        if handler is None:
            raise OSError(2, 'No such file or directory', cmd[0])
        rc, out, err = handler(cmd[1:], kwargs)
        if self._crash and all(w in cmd for w in self._crash[0]):
            self._crash = None
            raise Crash(' '.join(cmd))
        if rc != 0:
            raise processutils.ProcessExecutionError(
                exit_code=rc, stdout=out, stderr=err, cmd=' '.join(cmd))
        return out, err

    # -- LVM ---------------------------------------------------------------

    def _vgs(self, args, kwargs):
        vg = args[-1]
        if vg not in self.vgs:
            return 5, '', f'  Volume group "{vg}" not found\n'
        info = self.vgs[vg]
        used = sum(lv['size'] for (v, _), lv in self.lvs.items()
                   if v == vg and not lv['pool_lv'])
        row = {'vg_name': vg, 'vg_size': str(info['size']),
               'vg_free': str(info['size'] - used),
               'vg_extent_size': str(info['extent'])}
        return 0, json.dumps({'report': [{'vg': [row]}]}), ''

    def _lvs(self, args, kwargs):
        vg = args[-1]
        if vg not in self.vgs:
            return 5, '', f'  Volume group "{vg}" not found\n'
        rows = [{'lv_name': name, 'vg_name': v, 'lv_size': str(lv['size']),
                 'lv_attr': lv['attr'], 'pool_lv': lv['pool_lv'],
                 'origin': lv['origin'],
                 'data_percent': f'{lv["percent"]:.2f}',
                 'lv_tags': ','.join(lv['tags']),
                 'zero': ('zero' if lv.get('zero', True) else '')
                 if lv['attr'].startswith('t') else ''}
                for (v, name), lv in sorted(self.lvs.items()) if v == vg]
        return 0, json.dumps({'report': [{'lv': rows}]}), ''

    def _lvcreate(self, args, kwargs):
        opts = _options(args, ('--virtualsize', '--thinpool', '--name',
                               '--addtag', '--setactivationskip',
                               '--activate', '--type'))
        name = opts['--name'][0]
        tags = opts.get('--addtag', [])
        target = args[-1]
        if '--snapshot' in args:
            vg, origin = target.split('/')
            if (vg, origin) not in self.lvs:
                return 5, '', f'  Failed to find logical volume "{target}"'
            src = self.lvs[(vg, origin)]
            if (vg, name) in self.lvs:
                return 5, '', f'  Logical Volume "{name}" already exists'
            self.add_lv(vg, name, src['size'], tags, origin=origin,
                        pool=src['pool_lv'])
            dev = f'/dev/{vg}/{origin}'
            if dev in self.metadata:
                self.metadata[f'/dev/{vg}/{name}'] = self.metadata[dev]
            if dev in self.uuids:
                self.uuids[f'/dev/{vg}/{name}'] = self.uuids[dev]
            return 0, '', ''
        vg = target
        if (vg, name) in self.lvs:
            return 5, '', f'  Logical Volume "{name}" already exists'
        size = int(opts['--virtualsize'][0].rstrip('b'))
        assert size % self.vgs[vg]['extent'] == 0, size
        self.add_lv(vg, name, size, tags, pool=opts['--thinpool'][0])
        return 0, '', ''

    def _lvmconfig(self, args, kwargs):
        opts = _options(args, ('--typeconfig',))
        keys = [a for a in args if '/' in a]
        return standin_lvm.lvmconfig(
            self.lvm_conf, {'typeconfig': (opts.get('--typeconfig')
                                           or [None])[0]}, keys)

    def _lvremove(self, args, kwargs):
        vg, name = args[-1].split('/')
        if self.lvs.pop((vg, name), None) is None:
            return 5, '', (f'  Failed to find logical volume '
                           f'"{vg}/{name}"\n')
        self.metadata.pop(f'/dev/{vg}/{name}', None)
        self.uuids.pop(f'/dev/{vg}/{name}', None)
        return 0, '', ''

    def _lvextend(self, args, kwargs):
        vg, name = args[-1].split('/')
        size = int(args[args.index('--size') + 1].rstrip('b'))
        lv = self.lvs[(vg, name)]
        if size < lv['size']:
            return 5, '', 'New size smaller than current'
        lv['size'] = size
        return 0, '', ''

    def _lvrename(self, args, kwargs):
        vg, old, new = args
        if (vg, new) in self.lvs:
            return 5, '', f'Logical Volume "{new}" already exists'
        self.lvs[(vg, new)] = self.lvs.pop((vg, old))
        dev = f'/dev/{vg}/{old}'
        if dev in self.metadata:
            self.metadata[f'/dev/{vg}/{new}'] = self.metadata.pop(dev)
        if dev in self.uuids:
            self.uuids[f'/dev/{vg}/{new}'] = self.uuids.pop(dev)
        return 0, '', ''

    def _lvchange(self, args, kwargs):
        vg, name = args[-1].split('/')
        lv = self.lvs[(vg, name)]
        if args[0] == '--addtag':
            lv['tags'].append(args[1])
        elif args[0] == '--deltag' and args[1] in lv['tags']:
            lv['tags'].remove(args[1])
        return 0, '', ''

    # -- DRBD --------------------------------------------------------------

    def _definition(self, resource):
        path = os.path.join(self.resource_dir, f'{resource}.res')
        if not os.path.exists(path):
            return None
        with open(path) as f:
            defs = drbdconf.resources(f.read())
        d = defs[resource]
        me = [h for h in d['hosts'] if h['name'] == self.node_name][0]
        return dict(d, me=me)

    def _device_kib(self, d):
        """The device's size in KiB as drbdsetup status reports it."""
        if d['disk'].get('size'):
            return drbd.size_bytes(d['disk']['size']) // 1024
        disk = d['me']['disk']
        vg, _, name = (disk or '').rpartition('/')
        lv = self.lvs.get((vg.rpartition('/')[2], name))
        if lv is None or disk not in self.metadata:
            return 0
        return sizing.usable_size_of(lv['size'], self.metadata[disk]) // 1024

    def _drbdadm(self, args, kwargs):
        words = [a for a in args[2:] if a != '--' and not a.startswith('--')
                 or a in ('--config-to-test', '--version')]
        if args[0] == '--version' or any(w in args for w in _REAL_DRBDADM):
            return _real(['drbdadm', *args], kwargs)
        sub, target = words[0], words[-1]
        resource = target.split('/')[0]
        d = self._definition(resource)
        if d is None:
            return 10, '', f"'{resource}' not defined in your config."
        disk = d['me']['disk']
        if sub == 'up' or sub == 'adjust':
            if resource not in self.running:
                if disk and disk not in self.metadata:
                    return 10, '', 'No valid meta data found'
                self.running[resource] = {
                    'name': resource, 'node-id': d['me']['node_id'],
                    'role': 'Secondary', 'suspended': False,
                    'suspended-user': False,
                    'devices': [{'volume': 0, 'minor': d['minor'],
                                 'disk-state': 'Inconsistent' if disk
                                 else 'Diskless',
                                 'size': self._device_kib(d)}],
                    'connections': []}
                return 0, '', ''
            device = self.running[resource]['devices'][0]
            if disk and device['disk-state'] == 'Diskless':
                # a diskless peer given a disk: adjust attaches it
                if disk not in self.metadata:
                    return 10, '', 'No valid meta data found'
                device['disk-state'] = 'Inconsistent'
                device['size'] = self._device_kib(d)
            return 0, '', ''
        if sub == 'down':
            self.running.pop(resource, None)
            return 0, '', ''
        if sub == 'create-md':
            device = (self.running.get(resource) or {}).get(
                'devices', [{}])[0]
            if device.get('disk-state', 'Diskless') != 'Diskless':
                # drbdmeta: only an attached minor is refused
                return 20, '', f"Device '{d['minor']}' is configured!"
            peers = [a for a in args if a.startswith('--max-peers=')]
            self.metadata[disk] = int(peers[0].split('=')[1])
            self.uuids.pop(disk, None)
            return 0, '', ''
        if sub == 'wipe-md':
            self.metadata.pop(disk, None)
            self.uuids.pop(disk, None)
            return 0, '', ''
        if resource not in self.running:
            return 10, '', f'{resource}: No such resource'
        if sub == 'resize':
            self.running[resource]['devices'][0]['size'] = \
                self._device_kib(d)
        if sub == 'new-current-uuid' and disk:
            self.uuids[disk] = 0x5EED0000CAFE0000 + len(self.calls) * 2
        if sub == 'suspend-io':
            self.running[resource]['suspended-user'] = True
        elif sub == 'resume-io':
            self.running[resource]['suspended-user'] = False
        return 0, '', ''

    def _drbdsetup(self, args, kwargs):
        if args[0] == 'status':
            names = [a for a in args[1:] if not a.startswith('--')]
            if names:
                if names[0] not in self.running:
                    return 10, '', f'{names[0]}: No such resource\n'
                return 0, json.dumps([self.running[names[0]]]), ''
            return 0, json.dumps(list(self.running.values())), ''
        if args[0] == 'down':
            self.running.pop(args[1], None)
            return 0, '', ''
        if args[0] in ('suspend-io', 'resume-io'):
            for res in self.running.values():
                if any(str(d.get('minor')) == args[1]
                       for d in res['devices']):
                    res['suspended-user'] = args[0] == 'suspend-io'
                    return 0, '', ''
            return 10, '', f'Device minor {args[1]} not found\n'
        return 0, '', ''

    def _drbdmeta(self, args, kwargs):
        disk = args[2]
        if 'get-gi' in args:
            assert '--node-id' in args
            if disk in self.metadata:
                # drbdmeta 9.22's format: 4 UUIDs, 7 + 5 flags.
                uuid = self.uuids.get(disk, 4)
                return 0, (f'{uuid:016X}:0000000000000000:0000000000000000'
                           ':0000000000000000:0:0:0:0:1:0:0:0:0:0:0:0\n'), ''
            return 255, '', ''
        return 0, '', ''


def _options(args, names):
    opts = {}
    it = iter(args)
    for arg in it:
        if arg in names:
            opts.setdefault(arg, []).append(next(it))
    return opts


def _real(argv, kwargs):
    try:
        out, err = executor.default_execute(*argv, **kwargs)
        return 0, out, err
    except (processutils.ProcessExecutionError,
            executor.ProcessFailed) as e:
        return e.exit_code, e.stdout, e.stderr


def _changes(argv):
    if argv[0] in ('vgs', 'lvs', 'lvmconfig'):
        return False
    if argv[0] == 'drbdsetup' and argv[1] == 'status':
        return False
    if argv[0] == 'drbdmeta' and 'get-gi' in argv:
        return False
    if argv[0] == 'drbdadm' and any(w in argv for w in _REAL_DRBDADM):
        return False
    return True


def strip_config(argv):
    """argv without ``-c <file>``, for comparing drbdadm calls."""
    if argv[:2] == ['drbdadm', '-c']:
        return ['drbdadm'] + argv[3:]
    return argv
