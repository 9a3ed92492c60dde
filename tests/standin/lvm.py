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
"""LVM thin emulation: ``lvs``, ``vgs``, ``lvcreate``, ``lvremove``, ...

``lvmconfig`` answers from the node's lvm.conf settings (see
:data:`DEFAULT_CONFIG`; a test changes them with
``Cluster.set_lvm_config``).

Each node has volume groups with one thin pool; thin LVs and thin snapshots
are sparse files (a snapshot is a reflink or sparse copy of its origin, so
the data of the two are independent afterwards: copy-on-write as seen from
outside). Output formats, messages and exit codes follow LVM 2.03.
"""

import json
import os
import re
import sys

from tests.standin import md as mdlib
from tests.standin import state
from tests.standin.state import StandinError

MIB = 1 << 20
DEFAULT_EXTENT = 4 * MIB
POOL_META = 4 * MIB
LVM_VERSION = ('  LVM version:     2.03.16(2) (2022-05-18)\n'
               '  Library version: 1.02.185 (2022-05-18)\n'
               '  Driver version:  4.48.0\n')
NAME_RE = re.compile(r'^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$')
TAG_RE = re.compile(r'^[A-Za-z0-9_+.\-/=!:&#]{1,1024}$')

# option -> (canonical name, takes a value)
OPTIONS = {
    '--yes': ('yes', False), '-y': ('yes', False),
    '--force': ('force', False), '-f': ('force', False),
    '-ff': ('force', False),
    '--type': ('type', True), '-T': ('thin', False), '--thin': ('thin', False),
    '--virtualsize': ('virtualsize', True), '-V': ('virtualsize', True),
    '--size': ('size', True), '-L': ('size', True),
    '--extents': ('extents', True), '-l': ('extents', True),
    '--thinpool': ('thinpool', True),
    '--name': ('name', True), '-n': ('name', True),
    '--addtag': ('addtag', True), '--deltag': ('deltag', True),
    '--snapshot': ('snapshot', False), '-s': ('snapshot', False),
    '--setactivationskip': ('setactivationskip', True),
    '-k': ('setactivationskip', True),
    '--ignoreactivationskip': ('ignoreactivationskip', False),
    '-K': ('ignoreactivationskip', False),
    '--activate': ('activate', True), '-a': ('activate', True),
    '--reportformat': ('reportformat', True),
    '--units': ('units', True), '--nosuffix': ('nosuffix', False),
    '--options': ('options', True), '-o': ('options', True),
    '--noheadings': ('noheadings', False),
    '--separator': ('separator', True),
    '--select': ('select', True), '-S': ('select', True),
    '--all': ('all', False),
    '--resizefs': ('resizefs', False), '-r': ('resizefs', False),
    '--nofsck': ('nofsck', False),
    '--quiet': ('quiet', False), '-q': ('quiet', False),
    '--verbose': ('verbose', False), '-v': ('verbose', False),
    '--zero': ('zero', True), '-Z': ('zero', True),
    '--wipesignatures': ('wipesignatures', True), '-W': ('wipesignatures',
                                                         True),
    '--config': ('config', True), '--nolocking': ('nolocking', False),
    '--typeconfig': ('typeconfig', True),
    '--readonly': ('readonly', False),
    '--ignoreskippedcluster': ('ignoreskippedcluster', False),
    '--columns': ('columns', False), '-C': ('columns', False),
}
MULTI = ('addtag', 'deltag')


def parse_args(argv):
    opts = {'addtag': [], 'deltag': []}
    pos = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok == '--':
            pos.extend(argv[i:])
            break
        if not tok.startswith('-') or tok == '-':
            pos.append(tok)
            continue
        value = None
        name = tok
        if tok.startswith('--') and '=' in tok:
            name, value = tok.split('=', 1)
        elif not tok.startswith('--') and tok not in OPTIONS and len(tok) > 2:
            name, value = tok[:2], tok[2:]
        if name.startswith('--') and name not in OPTIONS:
            name = _long_prefix(name, tok)
        if name not in OPTIONS:
            raise StandinError('%s: unrecognized option \'%s\'\n  Error '
                               'during parsing of command line.'
                               % (_prog(), tok), 3)
        canon, takes = OPTIONS[name]
        if takes and value is None:
            if i >= len(argv):
                raise StandinError('  Option %s requires an argument.' % tok,
                                   3)
            value = argv[i]
            i += 1
        elif not takes:
            value = True
        if canon in MULTI:
            opts[canon].append(value)
        else:
            opts[canon] = value
    return opts, pos


def _long_prefix(name, tok):
    """The long option ``name`` abbreviates, as getopt_long takes it.

    LVM parses with getopt_long, which accepts any unambiguous prefix of
    a long option: ``--unit=g`` (what Cinder's brick.local_dev.lvm
    sends) is ``--units=g``.
    """
    found = {o for o in OPTIONS if o.startswith('--') and o.startswith(name)}
    if len({OPTIONS[o] for o in found}) > 1:
        raise StandinError('%s: option \'%s\' is ambiguous; possibilities:'
                           ' %s\n  Error during parsing of command line.'
                           % (_prog(), tok, ' '.join(sorted(found))), 3)
    return found.pop() if found else name


_PROG = ['lvm']


def _prog():
    return _PROG[0]


def parse_size(text, default_unit='m'):
    m = re.match(r'^([+-]?)(\d+(?:\.\d+)?)([bBsSkKmMgGtTpPeE]?)$', text)
    if not m:
        raise StandinError('  Invalid argument for --size: %s\n  Error '
                           'during parsing of command line.' % text, 3)
    sign, number, unit = m.groups()
    unit = (unit or default_unit).lower()
    mult = {'b': 1, 's': 512, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30,
            't': 1 << 40, 'p': 1 << 50, 'e': 1 << 60}[unit]
    return sign, int(float(number) * mult)


def _human(n):
    for unit, mult in (('TiB', 1 << 40), ('GiB', 1 << 30), ('MiB', 1 << 20),
                       ('KiB', 1 << 10)):
        if n >= mult:
            return '%.2f %s' % (n / mult, unit)
    return '%d B' % n


def _units(n, units, nosuffix):
    if units in (None, 'h', 'H'):
        for suffix, mult in (('t', 1 << 40), ('g', 1 << 30), ('m', 1 << 20),
                             ('k', 1 << 10)):
            if n >= mult:
                return '%.2f%s' % (n / mult, suffix)
        return '0 ' if n == 0 else '%dB' % n
    mult = {'b': 1, 's': 512, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30,
            't': 1 << 40}[units.lower()]
    if mult == 1 or units.lower() == 's':
        text = '%d' % (n // mult)
    else:
        text = '%.2f' % (n / mult)
    if nosuffix:
        return text
    return text + (units.upper() if units.lower() in 'bs' else units)


def _round_extent(n, extent):
    return (n + extent - 1) // extent * extent


def _get_vg(node, vg):
    vgs = node.get('vgs', {})
    if vg not in vgs:
        raise StandinError('  Volume group "%s" not found\n'
                           '  Cannot process volume group %s' % (vg, vg), 5)
    return vgs[vg]


def _split_lv(arg):
    if '/' not in arg:
        raise StandinError('  Path required for Logical Volume "%s".\n'
                           '  Please provide a volume group name' % arg, 3)
    arg = arg[len('/dev/'):] if arg.startswith('/dev/') else arg
    vg, lv = arg.split('/', 1)
    return vg, lv


def _get_lv(vgrec, vg, lv):
    if lv not in vgrec['lvs']:
        raise StandinError('  Failed to find logical volume "%s/%s"'
                           % (vg, lv), 5)
    return vgrec['lvs'][lv]


def lv_is_open(sess, node_name, vg, lv):
    """True while a DRBD resource of the node has the LV attached."""
    from tests.standin import kernel
    target = sess.lv_file(node_name, vg, lv)
    node = sess.nodes[node_name]
    for res in node.get('drbd', {}).values():
        for vol in res.get('vols', {}).values():
            if vol.get('disk') and kernel.disk_to_file(
                    sess, node_name, vol['disk']) == target:
                return True
    return False


def pool_used(sess, node_name, vg, vgrec):
    return sum(mdlib.allocated_bytes(sess.lv_file(node_name, vg, lv))
               for lv in vgrec['lvs'])


def _check_tags(tags):
    for tag in tags:
        if not TAG_RE.match(tag):
            raise StandinError('  Invalid argument for --addtag: %s' % tag, 3)


def _check_name(name):
    if (not NAME_RE.match(name) or len(name) > 127
            or name in ('.', '..') or name.startswith('snapshot')
            or name.startswith('pvmove')):
        raise StandinError('  Logical volume name "%s" is invalid.' % name, 3)


# --- commands --------------------------------------------------------------

def cmd_lvcreate(sess, node_name, opts, pos):
    node = sess.node(node_name)
    out = []
    if opts.get('snapshot'):
        if len(pos) != 1:
            raise StandinError('  Please specify a logical volume to act as '
                               'the snapshot origin.', 3)
        vg, origin = _split_lv(pos[0])
        vgrec = _get_vg(node, vg)
        orec = _get_lv(vgrec, vg, origin)
        name = opts.get('name')
        if not name:
            raise StandinError('  Please specify a name for the snapshot.', 3)
        _check_name(name)
        if opts.get('size'):
            raise StandinError('  Snapshots with --size are old-style '
                               'snapshots; the stand-in only does thin '
                               'snapshots.', 3)
        if name in vgrec['lvs']:
            raise StandinError('  Logical Volume "%s" already exists in '
                               'volume group "%s"' % (name, vg), 5)
        _check_tags(opts['addtag'])
        _check_pool_room(sess, node_name, vg, vgrec)
        mdlib.sparse_copy(sess.lv_file(node_name, vg, origin),
                          sess.lv_file(node_name, vg, name))
        skip = opts.get('setactivationskip', 'y') not in ('n', 'no')
        activate = opts.get('activate', 'y') in ('y', 'ay', 'yes')
        active = activate and (not skip or bool(
            opts.get('ignoreactivationskip')))
        vgrec['lvs'][name] = {
            'size': orec['size'], 'tags': sorted(set(opts['addtag'])),
            'origin': origin, 'active': active, 'skip': skip,
            'pool': orec.get('pool', vgrec['pool'])}
        out.append('  Logical volume "%s" created.' % name)
        return 0, '\n'.join(out) + '\n'
    if len(pos) != 1:
        raise StandinError('  Please specify a volume group.', 3)
    vg = pos[0]
    if '/' in vg:
        vg, pool = vg.split('/', 1)
        opts.setdefault('thinpool', pool)
    vgrec = _get_vg(node, vg)
    if opts.get('type') not in (None, 'thin') and not opts.get('thin'):
        raise StandinError('  The stand-in only creates thin volumes '
                           '(--type thin).', 3)
    if not opts.get('virtualsize'):
        raise StandinError('  Thin volumes need --virtualsize.', 3)
    pool = opts.get('thinpool') or vgrec['pool']
    if pool != vgrec['pool']:
        raise StandinError('  Failed to find logical volume "%s/%s"'
                           % (vg, pool), 5)
    name = opts.get('name')
    if not name:
        raise StandinError('  The stand-in needs --name.', 3)
    _check_name(name)
    if name in vgrec['lvs'] or name == pool:
        raise StandinError('  Logical Volume "%s" already exists in volume '
                           'group "%s"' % (name, vg), 5)
    _check_tags(opts['addtag'])
    sign, size = parse_size(opts['virtualsize'])
    if sign or size <= 0:
        raise StandinError('  Size must be positive.', 3)
    rounded = _round_extent(size, vgrec['extent_size'])
    msgs = []
    if rounded != size:
        msgs.append('  Rounding up size to full physical extent %s.'
                    % _human(rounded))
    _check_pool_room(sess, node_name, vg, vgrec)
    path = sess.lv_file(node_name, vg, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'xb') as f:
        f.truncate(rounded)
    vgrec['lvs'][name] = {'size': rounded, 'tags': sorted(set(opts['addtag'])),
                          'origin': '', 'active': True, 'skip': False,
                          'pool': pool}
    if msgs:
        sys.stderr.write('\n'.join(msgs) + '\n')
    return 0, '  Logical volume "%s" created.\n' % name


def _check_pool_room(sess, node_name, vg, vgrec):
    if pool_used(sess, node_name, vg, vgrec) >= vgrec['pool_size']:
        raise StandinError(
            '  Cannot create new thin volume, free space in thin pool '
            '%s/%s reached threshold.' % (vg, vgrec['pool']), 5)


def cmd_lvremove(sess, node_name, opts, pos):
    node = sess.node(node_name)
    if not pos:
        raise StandinError('  No logical volume specified.', 3)
    out = []
    rc = 0
    for arg in pos:
        vg, lv = _split_lv(arg)
        vgrec = _get_vg(node, vg)
        if lv == vgrec['pool']:
            raise StandinError('  The stand-in does not remove thin pools.',
                               5)
        _get_lv(vgrec, vg, lv)
        if lv_is_open(sess, node_name, vg, lv):
            sys.stderr.write('  Logical volume %s/%s in use.\n' % (vg, lv))
            rc = 5
            continue
        try:
            os.unlink(sess.lv_file(node_name, vg, lv))
        except FileNotFoundError:
            pass
        del vgrec['lvs'][lv]
        out.append('  Logical volume "%s" successfully removed.' % lv)
    return rc, ''.join(line + '\n' for line in out)


def _resize(sess, node_name, opts, pos, grow_only):
    node = sess.node(node_name)
    if len(pos) != 1:
        raise StandinError('  Please specify a logical volume path.', 3)
    vg, lv = _split_lv(pos[0])
    vgrec = _get_vg(node, vg)
    rec = _get_lv(vgrec, vg, lv)
    extent = vgrec['extent_size']
    if opts.get('size'):
        sign, size = parse_size(opts['size'])
    elif opts.get('extents'):
        m = re.match(r'^([+-]?)(\d+)$', opts['extents'])
        if not m:
            raise StandinError('  Invalid argument for --extents: %s'
                               % opts['extents'], 3)
        sign, size = m.group(1), int(m.group(2)) * extent
    else:
        raise StandinError('  Please specify either size or extents.', 3)
    old = rec['size']
    if sign == '+':
        new = old + size
    elif sign == '-':
        new = old - size
    else:
        new = size
    new = _round_extent(new, extent)
    if new == old:
        raise StandinError('  New size (%d extents) matches existing size '
                           '(%d extents).' % (new // extent, old // extent), 5)
    if new < old and grow_only:
        raise StandinError('  New size given (%d extents) not larger than '
                           'existing size (%d extents)'
                           % (new // extent, old // extent), 5)
    if new <= 0:
        raise StandinError('  Size must be positive.', 3)
    path = sess.lv_file(node_name, vg, lv)
    meta = mdlib.read_md(path)
    fd = os.open(path, os.O_RDWR)
    try:
        if new > old and meta is not None:
            # DRBD (drbdadm resize / drbdmeta check-resize) moves internal
            # meta data to the new end of a grown device; the stand-in does
            # it here, and leaves the old area zeroed.
            area = meta['_area']
            os.ftruncate(fd, new)
            mdlib.write_md(path, meta)
            mdlib.punch_hole(fd, old - area, area)
        else:
            os.ftruncate(fd, new)
    finally:
        os.close(fd)
    rec['size'] = new
    return 0, ('  Size of logical volume %s/%s changed from %s (%d extents) '
               'to %s (%d extents).\n  Logical volume %s/%s successfully '
               'resized.\n' % (vg, lv, _human(old), old // extent,
                               _human(new), new // extent, vg, lv))


def cmd_lvextend(sess, node_name, opts, pos):
    return _resize(sess, node_name, opts, pos, grow_only=True)


def cmd_lvresize(sess, node_name, opts, pos):
    return _resize(sess, node_name, opts, pos, grow_only=False)


def cmd_lvrename(sess, node_name, opts, pos):
    node = sess.node(node_name)
    if len(pos) == 3:
        vg, old, new = pos
    elif len(pos) == 2:
        vg, old = _split_lv(pos[0])
        new = pos[1].split('/', 1)[1] if '/' in pos[1] else pos[1]
    else:
        raise StandinError('  Old and new logical volume names required', 3)
    vgrec = _get_vg(node, vg)
    rec = _get_lv(vgrec, vg, old)
    _check_name(new)
    if new in vgrec['lvs']:
        raise StandinError('  Logical Volume "%s" already exists in volume '
                           'group "%s"' % (new, vg), 5)
    if lv_is_open(sess, node_name, vg, old):
        raise StandinError('  Cannot rename %s/%s while it is in use.'
                           % (vg, old), 5)
    os.rename(sess.lv_file(node_name, vg, old),
              sess.lv_file(node_name, vg, new))
    vgrec['lvs'][new] = rec
    del vgrec['lvs'][old]
    for other in vgrec['lvs'].values():
        if other.get('origin') == old:
            other['origin'] = new
    return 0, '  Renamed "%s" to "%s" in volume group "%s"\n' % (old, new, vg)


def cmd_lvchange(sess, node_name, opts, pos):
    node = sess.node(node_name)
    if not pos:
        raise StandinError('  Please give logical volume path(s)', 3)
    out = []
    for arg in pos:
        vg, lv = _split_lv(arg)
        vgrec = _get_vg(node, vg)
        if lv == vgrec['pool'] and set(opts) <= {
                'activate', 'yes', 'ignoreactivationskip', 'addtag',
                'deltag'} and not opts['addtag'] and not opts['deltag'] and (
                opts.get('activate') in (None, 'y', 'ay', 'yes')):
            # The thin pool is always active (Cinder's brick activates
            # it before each create): nothing to change.
            out.append('  Logical volume %s/%s changed.' % (vg, lv))
            continue
        rec = _get_lv(vgrec, vg, lv)
        _check_tags(opts['addtag'])
        tags = set(rec['tags']) | set(opts['addtag'])
        tags -= set(opts['deltag'])
        rec['tags'] = sorted(tags)
        if 'setactivationskip' in opts:
            rec['skip'] = opts['setactivationskip'] not in ('n', 'no')
        if 'activate' in opts:
            want = opts['activate'] in ('y', 'ay', 'yes')
            if want and rec.get('skip') and not opts.get(
                    'ignoreactivationskip'):
                pass
            elif not want and lv_is_open(sess, node_name, vg, lv):
                raise StandinError('  Logical volume %s/%s in use.'
                                   % (vg, lv), 5)
            else:
                rec['active'] = want
        out.append('  Logical volume %s/%s changed.' % (vg, lv))
    return 0, ''.join(line + '\n' for line in out)


# --- lvm.conf ----------------------------------------------------------------

#: What every node's lvm.conf sets: LVM sees only the PVs, as NODE-SETUP.md
#: asks (the stand-in's VGs stand for VGs on loop devices), never DRBD.
DEFAULT_CONFIG = {'devices/global_filter': ['a|^/dev/loop[0-9]+$|', 'r|.*|']}
#: LVM 2.03's defaults of the settings lvm.conf does not set.
LVM_DEFAULTS = {'devices/global_filter': ['a|.*|'],
                'devices/filter': ['a|.*|']}


def config_value(value):
    """A setting as lvmconfig prints it; a str is printed as it is."""
    if isinstance(value, str):
        return value
    return '[%s]' % ','.join(
        '"%s"' % v.replace('\\', '\\\\').replace('"', '\\"')
        for v in value)


def lvmconfig(settings, opts, keys):
    """(rc, stdout, stderr) of lvmconfig over lvm.conf's ``settings``.

    ``settings``: {'devices/filter': value} as lvm.conf sets them on top
    of :data:`DEFAULT_CONFIG` (None: not set).
    """
    settings = {k: v for k, v in dict(DEFAULT_CONFIG, **settings).items()
                if v is not None}
    typeconfig = opts.get('typeconfig') or opts.get('type') or 'current'
    if typeconfig not in ('current', 'full'):
        raise StandinError('  stand-in: lvmconfig --typeconfig %s is not '
                           'emulated' % typeconfig, 3)
    if typeconfig == 'full':
        settings = dict(LVM_DEFAULTS, **settings)
    out = []
    for key in keys:
        if key not in settings:
            return (5, ''.join(out),
                    '  Configuration node %s not found\n' % key)
        name = key.rpartition('/')[2]
        out.append('%s=%s\n' % (name, config_value(settings[key])))
    return 0, ''.join(out), ''


def cmd_lvmconfig(sess, node_name, opts, pos):
    """``lvmconfig [--typeconfig current|full] section/name...``."""
    rc, out, err = lvmconfig(sess.node(node_name).get('lvm_conf', {}), opts,
                             pos)
    sys.stderr.write(err)
    return rc, out


# --- reports ---------------------------------------------------------------

LV_DEFAULT = ['lv_name', 'vg_name', 'lv_attr', 'lv_size', 'pool_lv',
              'origin', 'data_percent', 'metadata_percent', 'move_pv',
              'mirror_log', 'copy_percent', 'convert_lv']
VG_DEFAULT = ['vg_name', 'pv_count', 'lv_count', 'snap_count', 'vg_attr',
              'vg_size', 'vg_free']
HEADINGS = {
    'lv_name': 'LV', 'vg_name': 'VG', 'lv_attr': 'Attr', 'lv_size': 'LSize',
    'pool_lv': 'Pool', 'origin': 'Origin', 'data_percent': 'Data%',
    'metadata_percent': 'Meta%', 'move_pv': 'Move', 'mirror_log': 'Log',
    'copy_percent': 'Cpy%Sync', 'convert_lv': 'Convert', 'lv_tags': 'LV Tags',
    'lv_path': 'Path', 'lv_active': 'Active', 'lv_dm_path': 'DMPath',
    'pv_count': '#PV', 'lv_count': '#LV', 'snap_count': '#SN',
    'vg_attr': 'Attr', 'vg_size': 'VSize', 'vg_free': 'VFree',
    'vg_extent_size': 'Ext', 'vg_tags': 'VG Tags', 'lv_uuid': 'LV UUID',
    'vg_uuid': 'VG UUID', 'segtype': 'Type', 'lv_layout': 'Layout',
    'zero': 'Zero', 'pv_name': 'PV', 'pv_size': 'PSize', 'pv_free': 'PFree',
}
SIZE_FIELDS = ('lv_size', 'vg_size', 'vg_free', 'vg_extent_size',
               'pv_size', 'pv_free')
PV_DEFAULT = ['pv_name', 'vg_name', 'pv_size', 'pv_free']


def _fields(opts, default, prefix):
    spec = opts.get('options')
    if not spec:
        return list(default)
    fields = []
    if spec.startswith('+'):
        fields = list(default)
        spec = spec[1:]
    for name in spec.split(','):
        name = name.strip().lower()     # LVM's field names ignore case
        if not name:
            continue
        if name not in HEADINGS and prefix + name in HEADINGS:
            name = prefix + name
        if name not in HEADINGS:
            raise StandinError('  Unrecognised field: %s' % name, 3)
        fields.append(name)
    return fields


def _lv_rows(sess, node_name, vg, vgrec, only=None):
    rows = []
    pool = vgrec['pool']
    used = pool_used(sess, node_name, vg, vgrec)
    any_thin = bool(vgrec['lvs'])
    pool_row = {
        'lv_name': pool, 'vg_name': vg,
        'lv_attr': 'twi-a%stz--' % ('o' if any_thin else '-'),
        'lv_size': vgrec['pool_size'], 'pool_lv': '', 'origin': '',
        'data_percent': '%.2f' % (100.0 * used / vgrec['pool_size']),
        'metadata_percent': '%.2f' % min(
            100.0, 1.0 + len(vgrec['lvs']) * 0.05),
        'lv_tags': '', 'lv_path': '', 'lv_active': 'active',
        'lv_dm_path': '/dev/mapper/%s-%s' % (vg, pool), 'segtype':
            'thin-pool', 'lv_layout': 'thin,pool',
        # LVM's thin_pool_zero = 1 by default; "zero" or "" as lvs prints
        # it without --binary.
        'zero': 'zero' if vgrec.get('pool_zero', True) else '',
    }
    if only in (None, pool):
        rows.append(pool_row)
    for name in sorted(vgrec['lvs']):
        if only not in (None, name):
            continue
        rec = vgrec['lvs'][name]
        path = sess.lv_file(node_name, vg, name)
        active = rec.get('active', True)
        opened = lv_is_open(sess, node_name, vg, name)
        attr = 'Vwi-%s%stz-%s' % ('a' if active else '-',
                                  'o' if opened else '-',
                                  'k' if rec.get('skip') else '-')
        alloc = mdlib.allocated_bytes(path)
        rows.append({
            'lv_name': name, 'vg_name': vg, 'lv_attr': attr,
            'lv_size': rec['size'], 'pool_lv': rec.get('pool', pool),
            'origin': rec.get('origin', ''),
            'data_percent': '%.2f' % min(100.0, 100.0 * alloc / rec['size'])
            if active else '',
            'metadata_percent': '', 'lv_tags': ','.join(rec['tags']),
            'lv_path': '/dev/%s/%s' % (vg, name),
            'lv_active': 'active' if active else '',
            'lv_dm_path': '/dev/mapper/%s-%s' % (vg, name),
            'segtype': 'thin', 'lv_layout': 'thin',
            'zero': 'zero' if vgrec.get('pool_zero', True) else '',
        })
    return rows


def _vg_row(vg, vgrec):
    snaps = sum(1 for r in vgrec['lvs'].values() if r.get('origin'))
    return {
        'vg_name': vg, 'pv_count': '1', 'lv_count': str(len(vgrec['lvs']) + 1),
        'snap_count': str(snaps), 'vg_attr': 'wz--n-',
        'vg_size': vgrec['size'], 'vg_free': vgrec['size'] - vgrec[
            'pool_size'] - 2 * POOL_META,
        'vg_extent_size': vgrec['extent_size'], 'vg_tags': '',
    }


def _render(rows, fields, opts, kind):
    units = opts.get('units')
    nosuffix = bool(opts.get('nosuffix'))

    def value(row, field):
        v = row.get(field, '')
        if field in SIZE_FIELDS and isinstance(v, int):
            return _units(v, units, nosuffix)
        return str(v)

    if opts.get('reportformat') in ('json', 'json_std'):
        items = [{f: value(r, f) for f in fields} for r in rows]
        # one line: the C encoder (see drbdsetup.status_json)
        return json.dumps({'report': [{kind: items}]}) + '\n'
    table = [[value(r, f) for f in fields] for r in rows]
    sep = opts.get('separator')
    lines = []
    if sep is not None:
        if not opts.get('noheadings'):
            lines.append(sep.join(HEADINGS[f] for f in fields))
        lines += [sep.join(row) for row in table]
        return ''.join('  ' + line + '\n' for line in lines)
    widths = [max([len(HEADINGS[f])] + [len(r[i]) for r in table])
              for i, f in enumerate(fields)]
    if not opts.get('noheadings'):
        lines.append(' '.join(HEADINGS[f].ljust(w)
                              for f, w in zip(fields, widths)).rstrip())
    for row in table:
        lines.append(' '.join(c.ljust(w) for c, w in zip(row, widths))
                     .rstrip())
    return ''.join('  ' + line + '\n' for line in lines)


def cmd_lvs(sess, node_name, opts, pos):
    node = sess.node(node_name)
    fields = _fields(opts, LV_DEFAULT, 'lv_')
    rows = []
    rc = 0
    targets = pos or sorted(node.get('vgs', {}))
    for arg in targets:
        arg = arg[len('/dev/'):] if arg.startswith('/dev/') else arg
        if '/' in arg:
            vg, lv = arg.split('/', 1)
            vgrec = _get_vg(node, vg)
            if lv not in vgrec['lvs'] and lv != vgrec['pool']:
                sys.stderr.write('  Failed to find logical volume "%s/%s"\n'
                                 % (vg, lv))
                rc = 5
                continue
            rows += _lv_rows(sess, node_name, vg, vgrec, only=lv)
        else:
            if arg not in node.get('vgs', {}):
                sys.stderr.write('  Volume group "%s" not found\n'
                                 '  Cannot process volume group %s\n'
                                 % (arg, arg))
                rc = 5
                continue
            rows += _lv_rows(sess, node_name, arg, node['vgs'][arg])
    if rc and not rows and opts.get('reportformat') != 'json':
        return rc, ''
    return rc, _render(rows, fields, opts, 'lv')


def cmd_vgs(sess, node_name, opts, pos):
    node = sess.node(node_name)
    fields = _fields(opts, VG_DEFAULT, 'vg_')
    rows = []
    rc = 0
    for vg in pos or sorted(node.get('vgs', {})):
        if vg not in node.get('vgs', {}):
            sys.stderr.write('  Volume group "%s" not found\n'
                             '  Cannot process volume group %s\n' % (vg, vg))
            rc = 5
            continue
        rows.append(_vg_row(vg, node['vgs'][vg]))
    if rc and not rows and opts.get('reportformat') != 'json':
        return rc, ''
    return rc, _render(rows, fields, opts, 'vg')


def cmd_pvs(sess, node_name, opts, pos):
    """One PV per VG, ``/dev/loopN`` (what the nodes' lvm.conf accepts)."""
    node = sess.node(node_name)
    fields = _fields(opts, PV_DEFAULT, 'pv_')
    rows = []
    for index, vg in enumerate(sorted(node.get('vgs', {}))):
        row = _vg_row(vg, node['vgs'][vg])
        name = '/dev/loop%d' % index
        if pos and name not in pos:
            continue
        rows.append({'pv_name': name, 'vg_name': vg,
                     'pv_size': row['vg_size'], 'pv_free': row['vg_free']})
    return 0, _render(rows, fields, opts, 'pv')


def cmd_lvdisplay(sess, node_name, opts, pos):
    """``lvdisplay -C`` is ``lvs`` (the only form the stand-in has)."""
    if not opts.get('columns'):
        raise StandinError('  stand-in: lvdisplay without -C (--columns) '
                           'is not emulated', 3)
    return cmd_lvs(sess, node_name, opts, pos)


COMMANDS = {
    'lvs': cmd_lvs, 'vgs': cmd_vgs, 'pvs': cmd_pvs,
    'lvdisplay': cmd_lvdisplay, 'lvcreate': cmd_lvcreate,
    'lvremove': cmd_lvremove, 'lvextend': cmd_lvextend,
    'lvresize': cmd_lvresize, 'lvrename': cmd_lvrename,
    'lvchange': cmd_lvchange, 'lvmconfig': cmd_lvmconfig,
}


def main(prog, argv):
    if prog == 'lvm':
        if not argv or argv[0] in ('help', '--help'):
            sys.stdout.write('  Available lvm commands: %s, version\n'
                             % ', '.join(sorted(COMMANDS)))
            return 0
        if argv[0] == 'version':
            sys.stdout.write(LVM_VERSION)
            return 0
        prog, argv = argv[0], argv[1:]
    if prog not in COMMANDS:
        raise StandinError('  No such command \'%s\'.  Try \'help\'.' % prog,
                           3)
    _PROG[0] = prog
    if '--version' in argv:
        sys.stdout.write(LVM_VERSION)
        return 0
    opts, pos = parse_args(argv)
    node_name = state.current_node()
    with state.locked() as sess:
        if not sess.running(node_name):
            raise StandinError('  stand-in: node %s is not running'
                               % node_name, 5)
        rc, out = COMMANDS[prog](sess, node_name, opts, pos)
    sys.stdout.write(out)
    return rc
