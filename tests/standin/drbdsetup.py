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
"""``drbdsetup`` stand-in: the commands drbdadm issues, and the reports.

Accepts the argv forms of drbd-utils 9.22's drbdsetup (``--opt=value``
options), keeps what the kernel would keep, and prints ``show``,
``status [--json]`` and ``events2 --now`` in DRBD 9's formats.
"""

import json
import sys

from tests.standin import kernel
from tests.standin import md as mdlib
from tests.standin import state
from tests.standin.kernel import failure
from tests.standin.kernel import state_error
from tests.standin.state import StandinError

UTILS_VERSION = '9.22.0'
QUOTED = ('_name', 'shared-secret', 'cram-hmac-alg', 'verify-alg',
          'csums-alg', 'data-integrity-alg', 'transport')


def parse(argv):
    opts = {}
    pos = []
    for tok in argv:
        if tok.startswith('--'):
            if '=' in tok:
                key, value = tok[2:].split('=', 1)
            else:
                key, value = tok[2:], 'yes'
            opts[key] = value
        else:
            pos.append(tok)
    return opts, pos


def _arg(pos, i, what):
    if len(pos) <= i:
        raise StandinError("Missing argument '%s'" % what, 20)
    return pos[i]


def _minor(text):
    for prefix in ('minor-', '/dev/drbd'):
        if text.startswith(prefix):
            text = text[len(prefix):]
    try:
        return int(text)
    except ValueError:
        raise StandinError('%s: is not a minor number' % text, 20) from None


def _res(sess, node, name):
    res = kernel.resources(sess, node).get(name)
    if res is None:
        raise failure(name, 158)
    return res


def _vol(sess, node, text):
    found = kernel.find_minor(sess, node, _minor(text))
    if found is None:
        raise failure(text, 127)
    return found


def _conn(res, res_name, pid):
    if pid not in res['conns']:
        raise StandinError('%s: Failure: (170) Invalid peer-node-id'
                           % res_name, 10)
    return res['conns'][pid]


def _set_opts(target, opts, drop=()):
    if opts.pop('set-defaults', None):
        target.clear()
    for key, value in opts.items():
        if key not in drop:
            target[key] = value


# --- configuration commands ------------------------------------------------

def c_new_resource(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    node_id = int(_arg(pos, 1, 'node_id'))
    res_map = kernel.resources(sess, node)
    if name in res_map:
        raise failure(name, 173)
    opts.pop('set-defaults', None)
    res_map[name] = {'node_id': node_id, 'opts': opts, 'role': 'Secondary',
                     'auto_promoted': False, 'susp_user': False,
                     'quorum': True, 'vols': {}, 'conns': {}}


def c_resource_options(sess, node, opts, pos):
    res = _res(sess, node, _arg(pos, 0, 'resource'))
    _set_opts(res['opts'], opts)


def c_new_minor(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    minor = _minor(_arg(pos, 1, 'minor'))
    vnr = str(int(_arg(pos, 2, 'volume')))
    res = _res(sess, node, name)
    if kernel.find_minor(sess, node, minor) or vnr in res['vols']:
        raise failure(name, 161)
    diskless = kernel.yes(opts.pop('diskless', 'no'))
    opts.pop('set-defaults', None)
    res['vols'][vnr] = {'minor': minor, 'diskless': diskless,
                        'dev_opts': opts, 'disk': None, 'meta_disk': None,
                        'disk_opts': {}, 'dstate': 'Diskless', 'size': 0,
                        'agen': 0, 'open_rw': 0, 'open_ro': 0, 'read': 0,
                        'written': 0}


def c_del_minor(sess, node, opts, pos):
    res_name, res, vnr, vol = _vol(sess, node, _arg(pos, 0, 'minor'))
    if vol['disk']:
        raise failure(pos[0], 160)
    if vol.get('open_rw') or vol.get('open_ro'):
        raise state_error(pos[0], -12)
    del res['vols'][vnr]


def c_del_resource(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    res = _res(sess, node, name)
    if res['vols']:
        raise failure(name, 159)
    _leave(sess, node, name, res)
    del kernel.resources(sess, node)[name]


def c_new_peer(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    pid = str(int(_arg(pos, 1, 'peer_node_id')))
    res = _res(sess, node, name)
    if pid in res['conns']:
        raise failure(name, 173)
    if int(pid) == res['node_id'] or not 0 <= int(pid) < 32:
        raise failure(name, 170)
    opts.pop('set-defaults', None)
    res['conns'][pid] = {'name': opts.get('_name', ''), 'net': opts,
                         'paths': [], 'connect': False, 'pd': {},
                         'cstate': 'StandAlone', 'hs': '',
                         'graceful': False, 'peer_diskless': False,
                         'split_brain': False}


def c_del_peer(sess, node, opts, pos):
    res = _res(sess, node, _arg(pos, 0, 'resource'))
    _conn(res, pos[0], str(int(_arg(pos, 1, 'peer_node_id'))))
    del res['conns'][str(int(pos[1]))]


def c_new_path(sess, node, opts, pos):
    res = _res(sess, node, _arg(pos, 0, 'resource'))
    conn = _conn(res, pos[0], str(int(_arg(pos, 1, 'peer_node_id'))))
    path = [_arg(pos, 2, 'local-addr'), _arg(pos, 3, 'remote-addr')]
    if path in conn['paths']:
        raise failure(pos[0], 173)
    conn['paths'].append(path)


def c_del_path(sess, node, opts, pos):
    res = _res(sess, node, _arg(pos, 0, 'resource'))
    conn = _conn(res, pos[0], str(int(_arg(pos, 1, 'peer_node_id'))))
    path = [_arg(pos, 2, 'local-addr'), _arg(pos, 3, 'remote-addr')]
    if path in conn['paths']:
        conn['paths'].remove(path)


def c_net_options(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    res = _res(sess, node, name)
    conn = _conn(res, name, str(int(_arg(pos, 1, 'peer_node_id'))))
    new = dict(conn['net']) if 'set-defaults' not in opts else {}
    opts.pop('set-defaults', None)
    new.update(opts)
    if (kernel.yes(conn['net'].get('allow-two-primaries', 'no'))
            and not kernel.yes(new.get('allow-two-primaries', 'no'))
            and res['role'] == 'Primary' and conn['cstate'] == 'Connected'):
        peer = kernel.resources(sess, conn['name']).get(name)
        if peer and peer['role'] == 'Primary':
            raise failure(name, 164)
    new.setdefault('_name', conn['name'])
    conn['net'] = new


def c_peer_device_options(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    res = _res(sess, node, name)
    conn = _conn(res, name, str(int(_arg(pos, 1, 'peer_node_id'))))
    vnr = str(int(_arg(pos, 2, 'volume')))
    _set_opts(conn['pd'].setdefault(vnr, {}), opts)


def c_connect(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    res = _res(sess, node, name)
    conn = _conn(res, name, str(int(_arg(pos, 1, 'peer_node_id'))))
    if opts.get('tentative') or opts.get('dry-run'):
        return
    conn['connect'] = True
    conn['split_brain'] = False


def c_disconnect(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    res = _res(sess, node, name)
    conn = _conn(res, name, str(int(_arg(pos, 1, 'peer_node_id'))))
    conn['connect'] = False


def c_attach(sess, node, opts, pos):
    text = _arg(pos, 0, 'minor')
    res_name, res, vnr, vol = _vol(sess, node, text)
    lower = _arg(pos, 1, 'lower_dev')
    meta = _arg(pos, 2, 'meta_data_dev')
    index = _arg(pos, 3, 'meta_data_index')
    if vol['disk']:
        raise failure(text, 124)
    if meta != lower or index not in ('internal', 'flexible', '-1'):
        raise StandinError('%s: the stand-in only does internal meta data'
                           % text, 10)
    path = kernel.disk_to_file(sess, node, lower)
    if path is None:
        raise failure(text, 104)
    for other in kernel.resources(sess, node).values():
        for v in other['vols'].values():
            if v['disk'] == lower:
                raise failure(text, 114)
    meta_data = mdlib.read_md(path)
    if meta_data is None:
        raise failure(text, 119)
    usable = mdlib.usable_size(mdlib.file_size(path), meta_data['max_peers'])
    # The device: a user size (disk { size }) exactly, smaller than the
    # last agreed size too ("truncating a consistent device during
    # attach"); else the last agreed size (DRBD does not grow on attach),
    # else all the backing device below the meta data. It must fit:
    # ERR_DISK_TOO_SMALL otherwise.
    wanted = kernel.size_bytes(opts['size']) if opts.get('size') else 0
    size = wanted or meta_data.get('la_size') or usable
    if size > usable:
        raise failure(text, 111)
    if wanted:
        opts['size'] = kernel.size_text(wanted)
    else:
        opts.pop('size', None)
    meta_data['node_id'] = res['node_id']
    meta_data['la_size'] = size
    meta_data['flags'] &= ~mdlib.MDF_AL_CLEAN
    for pid in res['conns']:
        p = mdlib.peer(meta_data, pid)
        p['flags'] |= mdlib.MDF_PEER_DEVICE_SEEN
        if p.get('bitmap_index', -1) < 0:
            used = {q.get('bitmap_index') for q in meta_data['peers'].values()}
            p['bitmap_index'] = min(i for i in range(32) if i not in used)
    mdlib.write_md(path, meta_data)
    flags = meta_data['flags']
    if not flags & mdlib.MDF_CONSISTENT:
        dstate = 'Inconsistent'
    elif not flags & mdlib.MDF_WAS_UP_TO_DATE:
        dstate = 'Outdated'
    else:
        dstate = 'Consistent'
    opts.pop('set-defaults', None)
    vol.update(disk=lower, meta_disk='internal', disk_opts=opts,
               dstate=dstate, size=size, agen=vol.get('agen', 0) + 1,
               diskless=False)


def c_disk_options(sess, node, opts, pos):
    res_name, res, vnr, vol = _vol(sess, node, _arg(pos, 0, 'minor'))
    if not vol['disk']:
        raise state_error(pos[0], -11)
    _set_opts(vol['disk_opts'], opts)


def c_detach(sess, node, opts, pos):
    res_name, res, vnr, vol = _vol(sess, node, _arg(pos, 0, 'minor'))
    if not vol['disk']:
        return
    if res['role'] == 'Primary' and not any(
            (rb['vols'].get(vnr) or {}).get('dstate') == 'UpToDate'
            for _, rb, _ in kernel.connected_peers(sess, res_name, node,
                                                   res)):
        raise state_error(pos[0], -2)
    _close_md(sess, node, vol)
    vol.update(disk=None, meta_disk=None, disk_opts={}, dstate='Diskless',
               agen=vol.get('agen', 0) + 1,
               diskless=kernel.yes(opts.get('diskless', 'no')))


def _close_md(sess, node, vol):
    path = kernel.disk_to_file(sess, node, vol['disk'])
    meta_data = mdlib.read_md(path) if path else None
    if meta_data is not None:
        meta_data['flags'] |= mdlib.MDF_AL_CLEAN
        if vol['dstate'] == 'UpToDate':
            meta_data['flags'] |= (mdlib.MDF_CONSISTENT
                                   | mdlib.MDF_WAS_UP_TO_DATE)
        mdlib.write_md(path, meta_data)


def _leave(sess, node, res_name, res):
    """Peers connected now see this node leave gracefully."""
    for b, rb, conn in kernel.connected_peers(sess, res_name, node, res):
        back = rb['conns'].get(str(res['node_id']))
        if back is not None:
            back['graceful'] = True


def c_down(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    names = sorted(kernel.resources(sess, node)) if name == 'all' else [name]
    for res_name in names:
        res = kernel.resources(sess, node).get(res_name)
        if res is None:
            continue
        if any(v.get('open_rw') or v.get('open_ro')
               for v in res['vols'].values()):
            raise state_error(res_name, -12)
        _leave(sess, node, res_name, res)
        for vol in res['vols'].values():
            if vol['disk']:
                _close_md(sess, node, vol)
        del kernel.resources(sess, node)[res_name]


def c_primary(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    _res(sess, node, name)
    kernel.promote(sess, name, node,
                   force=kernel.yes(opts.get('force', 'no'))
                   or kernel.yes(opts.get('overwrite-data-of-peer', 'no')))
    kernel.resources(sess, node)[name]['auto_promoted'] = False


def c_secondary(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    _res(sess, node, name)
    kernel.demote(sess, name, node)


def c_suspend_io(sess, node, opts, pos):
    res_name, res, vnr, vol = _vol(sess, node, _arg(pos, 0, 'minor'))
    res['susp_user'] = True


def c_resume_io(sess, node, opts, pos):
    res_name, res, vnr, vol = _vol(sess, node, _arg(pos, 0, 'minor'))
    res['susp_user'] = False


def c_new_current_uuid(sess, node, opts, pos):
    text = _arg(pos, 0, 'minor')
    res_name, res, vnr, vol = _vol(sess, node, text)
    if not vol['disk']:
        raise state_error(text, -11)
    path = kernel.disk_to_file(sess, node, vol['disk'])
    meta_data = mdlib.read_md(path)
    old = meta_data['current_uuid']
    new = mdlib.new_uuid()
    clear = kernel.yes(opts.get('clear-bitmap', 'no'))
    mdlib.rotate_uuid(meta_data, new)
    if clear:
        meta_data['flags'] |= mdlib.MDF_CONSISTENT | mdlib.MDF_WAS_UP_TO_DATE
        vol['dstate'] = 'UpToDate'
    for b, rb, conn in kernel.connected_peers(sess, res_name, node, res):
        vb = rb['vols'].get(vnr)
        if vb is None or not vb['disk']:
            continue
        bpath = kernel.disk_to_file(sess, b, vb['disk'])
        bmd = mdlib.read_md(bpath)
        if bmd is None or not (clear or bmd['current_uuid'] == old):
            continue
        bmd['current_uuid'] = new
        bmd['history'] = list(meta_data['history'])
        if clear:
            bmd['flags'] |= mdlib.MDF_CONSISTENT | mdlib.MDF_WAS_UP_TO_DATE
            vb['dstate'] = 'UpToDate'
            mdlib.peer(bmd, res['node_id']).update(bitmap_uuid=0, ranges=[])
            mdlib.peer(meta_data, rb['node_id']).update(
                bitmap_uuid=0, ranges=[])
        mdlib.write_md(bpath, bmd)
    mdlib.write_md(path, meta_data)


def c_resize(sess, node, opts, pos):
    text = _arg(pos, 0, 'minor')
    res_name, res, vnr, vol = _vol(sess, node, text)
    members = [(node, res, vol)] if vol['disk'] else []
    for b, rb, conn in kernel.connected_peers(sess, res_name, node, res):
        vb = rb['vols'].get(vnr)
        if vb is not None and vb['disk']:
            members.append((b, rb, vb))
    if not members:
        raise state_error(text, -11)
    sizes = []
    for m_node, m_res, m_vol in members:
        path = kernel.disk_to_file(sess, m_node, m_vol['disk'])
        meta_data = mdlib.read_md(path)
        sizes.append(mdlib.usable_size(mdlib.file_size(path),
                                       meta_data['max_peers']))
    new = min(sizes)
    # --size is the new user size, also when absent (0: none, the device
    # takes all the backing devices allow); the kernel passes it to every
    # connected peer. Too large for a replica: ERR_DISK_TOO_SMALL.
    wanted = kernel.size_bytes(opts['size']) if opts.get('size') else 0
    if wanted > new:
        raise failure(text, 111)
    new = wanted or new
    for m_node, m_res, m_vol in members:
        path = kernel.disk_to_file(sess, m_node, m_vol['disk'])
        meta_data = mdlib.read_md(path)
        meta_data['la_size'] = new
        mdlib.write_md(path, meta_data)
        m_vol['size'] = new
        kernel.set_user_size(m_vol, wanted)


def c_check_resize(sess, node, opts, pos):
    _vol(sess, node, _arg(pos, 0, 'minor'))


def c_outdate(sess, node, opts, pos):
    res_name, res, vnr, vol = _vol(sess, node, _arg(pos, 0, 'minor'))
    if not vol['disk']:
        raise state_error(pos[0], -11)
    if res['role'] == 'Primary':
        raise StandinError('%s: State change failed: (-7) Refusing to be '
                           'Outdated while Primary' % pos[0], 11)
    path = kernel.disk_to_file(sess, node, vol['disk'])
    meta_data = mdlib.read_md(path)
    meta_data['flags'] &= ~mdlib.MDF_WAS_UP_TO_DATE
    mdlib.write_md(path, meta_data)
    if vol['dstate'] in ('UpToDate', 'Consistent'):
        vol['dstate'] = 'Outdated'


def c_forget_peer(sess, node, opts, pos):
    res = _res(sess, node, _arg(pos, 0, 'resource'))
    pid = str(int(_arg(pos, 1, 'peer_node_id')))
    if pid in res['conns']:
        raise StandinError('%s: Failure: (173) peer still configured'
                           % pos[0], 10)


def c_wait(sess, node, opts, pos):
    _res(sess, node, _arg(pos, 0, 'resource'))


# --- reports ---------------------------------------------------------------

def _addr_show(text):
    text = kernel.norm_addr(text)
    return text.replace(':', ' ', 1)


def _opt_lines(indent, section, opts):
    if not opts:
        return []
    pad = ' ' * indent
    lines = [pad + section + ' {']
    for key, value in opts.items():
        if key in QUOTED:
            value = '"%s"' % value
        lines.append('%s    %-16s\t%s;' % (pad, key, value))
    lines.append(pad + '}')
    return lines


def show_text(sess, node, name):
    out = []
    for res_name in sorted(kernel.resources(sess, node)):
        if name not in ('all', res_name):
            continue
        res = kernel.resources(sess, node)[res_name]
        out.append('resource "%s" {' % res_name)
        out += _opt_lines(4, 'options', res['opts'])
        out.append('    _this_host {')
        out.append('        node-id\t\t\t%d;' % res['node_id'])
        for vnr in sorted(res['vols'], key=int):
            vol = res['vols'][vnr]
            out.append('        volume %s {' % vnr)
            out.append('            device\t\t\tminor %d;' % vol['minor'])
            if vol['disk']:
                out.append('            disk\t\t\t"%s";' % vol['disk'])
                out.append('            meta-disk\t\t\tinternal;')
            elif vol.get('diskless'):
                out.append('            disk\t\t\tnone;')
            out += _opt_lines(12, 'disk', dict(vol['disk_opts'],
                                               **vol['dev_opts']))
            out.append('        }')
        out.append('    }')
        for pid in sorted(res['conns'], key=int):
            conn = res['conns'][pid]
            out.append('    connection {')
            out.append('        _peer_node_id %s;' % pid)
            for local, remote in conn['paths']:
                out.append('        path {')
                out.append('            _this_host %s;' % _addr_show(local))
                out.append('            _remote_host %s;'
                           % _addr_show(remote))
                out.append('        }')
            if conn['cstate'] == 'StandAlone':
                out.append('        _is_standalone;')
            out += _opt_lines(8, 'net', conn['net'])
            for vnr in sorted(conn['pd'], key=int):
                if conn['pd'][vnr]:
                    out.append('        volume %s {' % vnr)
                    out += _opt_lines(12, 'disk', conn['pd'][vnr])
                    out.append('        }')
            out.append('    }')
        out.append('}')
        out.append('')
    return ''.join(line + '\n' for line in out)


def _peer_view(sess, res_name, res, pid, vnr):
    """(replication, peer disk, peer client, peer role) of a peer device."""
    conn = res['conns'][pid]
    if conn['cstate'] != 'Connected':
        return 'Off', 'DUnknown', False, 'Unknown'
    rb = kernel.resources(sess, conn['name']).get(res_name)
    vb = rb['vols'].get(vnr) if rb else None
    if vb is None:
        return 'Off', 'DUnknown', False, rb['role'] if rb else 'Unknown'
    return 'Established', vb['dstate'], bool(vb.get('diskless')), rb['role']


def _out_of_sync(sess, node, res, vol, pid):
    """KiB the local bitmap marks out of sync for the peer."""
    if not vol['disk']:
        return 0
    path = kernel.disk_to_file(sess, node, vol['disk'])
    meta_data = mdlib.read_md(path) if path else None
    if meta_data is None:
        return 0
    ranges = meta_data['peers'].get(pid, {}).get('ranges', [])
    if ranges == mdlib.FULL:
        return vol['size'] // 1024
    return sum(e - s for s, e in ranges) // 1024


def _suspended_quorum(res):
    return (not res.get('quorum', True)
            and res['opts'].get('on-no-quorum', 'suspend-io') != 'io-error')


def status_json(sess, node, name):
    items = []
    for res_name in sorted(kernel.resources(sess, node)):
        if name not in ('all', res_name):
            continue
        res = kernel.resources(sess, node)[res_name]
        devices = []
        for vnr in sorted(res['vols'], key=int):
            vol = res['vols'][vnr]
            devices.append({
                'volume': int(vnr), 'minor': vol['minor'],
                'disk-state': vol['dstate'],
                'client': bool(vol.get('diskless')),
                'open': bool(vol.get('open_rw') or vol.get('open_ro')),
                'quorum': bool(res.get('quorum', True)),
                'size': vol['size'] // 1024, 'read': vol.get('read', 0),
                'written': vol.get('written', 0), 'al-writes': 0,
                'bm-writes': 0, 'upper-pending': 0, 'lower-pending': 0})
        conns = []
        for pid in sorted(res['conns'], key=int):
            conn = res['conns'][pid]
            peer_devices = []
            role = 'Unknown'
            for vnr in sorted(res['vols'], key=int):
                repl, pdisk, pclient, role = _peer_view(sess, res_name, res,
                                                        pid, vnr)
                oos = _out_of_sync(sess, node, res, res['vols'][vnr], pid)
                size = res['vols'][vnr]['size'] // 1024
                peer_devices.append({
                    'volume': int(vnr), 'replication-state': repl,
                    'peer-disk-state': pdisk, 'peer-client': pclient,
                    'resync-suspended': 'no', 'received': 0, 'sent': 0,
                    'out-of-sync': oos, 'pending': 0, 'unacked': 0,
                    'has-sync-details': False,
                    'has-online-verify-details': False,
                    'percent-in-sync': round(
                        100.0 * (1 - oos / size) if size else 0.0, 2)})
            paths = []
            for local, remote in conn['paths']:
                paths.append({
                    'this_host': _addr_json(local),
                    'remote_host': _addr_json(remote),
                    'established': conn['cstate'] == 'Connected'})
            conns.append({
                'peer-node-id': int(pid), 'name': conn['name'],
                'connection-state': conn['cstate'], 'congested': False,
                'peer-role': role, 'tls': False, 'ap-in-flight': 0,
                'rs-in-flight': 0, 'paths': paths,
                'peer_devices': peer_devices})
        susp_q = _suspended_quorum(res)
        items.append({
            'name': res_name, 'node-id': res['node_id'], 'role': res['role'],
            'suspended': bool(res.get('susp_user') or susp_q),
            'suspended-user': bool(res.get('susp_user')),
            'suspended-no-data': False, 'suspended-fencing': False,
            'suspended-quorum': susp_q, 'force-io-failures': bool(
                not res.get('quorum', True) and not susp_q),
            'write-ordering': 'flush', 'devices': devices,
            'connections': conns})
    # One line: the C encoder (indent takes the pure-Python one, seconds
    # for 1,000 resources); a JSON reader sees the same document.
    return json.dumps(items) + '\n'


def _addr_json(text):
    af, rest = kernel.norm_addr(text).split(':', 1)
    host, port = rest.rsplit(':', 1)
    return {'address': host.strip('[]'), 'port': int(port), 'family': af}


def status_text(sess, node, name, verbose=False):
    out = []
    for res_name in sorted(kernel.resources(sess, node)):
        if name not in ('all', res_name):
            continue
        res = kernel.resources(sess, node)[res_name]
        line = res_name
        if verbose:
            line += ' node-id:%d' % res['node_id']
        line += ' role:%s' % res['role']
        susp = []
        if res.get('susp_user'):
            susp.append('user')
        if _suspended_quorum(res):
            susp.append('quorum')
        if susp or verbose:
            line += ' suspended:%s' % (','.join(susp) or 'no')
        out.append(line)
        single = len(res['vols']) == 1
        for vnr in sorted(res['vols'], key=int):
            vol = res['vols'][vnr]
            line = '  '
            if verbose or not (single and vnr == '0'):
                line += 'volume:%s' % vnr
            line += ' disk:%s' % vol['dstate'] if line.strip() else \
                'disk:%s' % vol['dstate']
            if vol['dstate'] == 'Diskless':
                line += ' client:%s' % ('yes' if vol.get('diskless')
                                        else 'no')
            if not res.get('quorum', True) or verbose:
                line += ' quorum:%s' % ('yes' if res.get('quorum', True)
                                        else 'no')
            line += ' open:%s' % ('yes' if vol.get('open_rw')
                                  or vol.get('open_ro') else 'no')
            out.append(line)
        for pid in sorted(res['conns'], key=int):
            conn = res['conns'][pid]
            line = '  %s' % conn['name']
            if verbose:
                line += ' node-id:%s' % pid
            if conn['cstate'] != 'Connected' or verbose:
                line += ' connection:%s' % conn['cstate']
            if conn['cstate'] == 'Connected':
                line += ' role:%s' % _peer_view(sess, res_name, res, pid,
                                                '0')[3]
            out.append(line)
            if conn['cstate'] != 'Connected':
                continue
            for vnr in sorted(res['vols'], key=int):
                repl, pdisk, pclient, role = _peer_view(sess, res_name, res,
                                                        pid, vnr)
                line = '    '
                if verbose or not (single and vnr == '0'):
                    line += 'volume:%s ' % vnr
                if verbose:
                    line += 'replication:%s ' % repl
                line += 'peer-disk:%s' % pdisk
                if pdisk == 'Diskless':
                    line += ' peer-client:%s' % ('yes' if pclient else 'no')
                out.append(line)
        out.append('')
    return ''.join(line + '\n' for line in out)


def events2_now(sess, node, name):
    out = []
    for res_name in sorted(kernel.resources(sess, node)):
        if name not in ('all', res_name):
            continue
        res = kernel.resources(sess, node)[res_name]
        susp = []
        if res.get('susp_user'):
            susp.append('user')
        if _suspended_quorum(res):
            susp.append('quorum')
        may = (res['role'] != 'Primary' and kernel.has_uptodate_access(
            sess, res_name, node, res) and res.get('quorum', True))
        out.append('exists resource name:%s role:%s suspended:%s '
                   'force-io-failures:no may_promote:%s promotion_score:%d'
                   % (res_name, res['role'], ','.join(susp) or 'no',
                      'yes' if may else 'no', 10101 if may else 0))
        for pid in sorted(res['conns'], key=int):
            conn = res['conns'][pid]
            role = _peer_view(sess, res_name, res, pid, '0')[3]
            out.append('exists connection name:%s peer-node-id:%s '
                       'conn-name:%s connection:%s role:%s'
                       % (res_name, pid, conn['name'], conn['cstate'], role))
        for vnr in sorted(res['vols'], key=int):
            vol = res['vols'][vnr]
            out.append('exists device name:%s volume:%s minor:%d '
                       'backing_dev:%s disk:%s client:%s open:%s quorum:%s'
                       % (res_name, vnr, vol['minor'], vol['disk'] or 'none',
                          vol['dstate'],
                          'yes' if vol.get('diskless') else 'no',
                          'yes' if vol.get('open_rw') or vol.get('open_ro')
                          else 'no',
                          'yes' if res.get('quorum', True) else 'no'))
        for pid in sorted(res['conns'], key=int):
            conn = res['conns'][pid]
            for vnr in sorted(res['vols'], key=int):
                repl, pdisk, pclient, role = _peer_view(sess, res_name, res,
                                                        pid, vnr)
                out.append('exists peer-device name:%s peer-node-id:%s '
                           'conn-name:%s volume:%s replication:%s '
                           'peer-disk:%s peer-client:%s resync-suspended:no'
                           % (res_name, pid, conn['name'], vnr, repl, pdisk,
                              'yes' if pclient else 'no'))
            for local, remote in conn['paths']:
                out.append('exists path name:%s peer-node-id:%s conn-name:%s '
                           'local:%s peer:%s established:%s'
                           % (res_name, pid, conn['name'],
                              kernel.norm_addr(local),
                              kernel.norm_addr(remote),
                              'yes' if conn['cstate'] == 'Connected'
                              else 'no'))
    out.append('exists -')
    return ''.join(line + '\n' for line in out)


def r_show(sess, node, opts, pos):
    return 0, show_text(sess, node, pos[0] if pos else 'all'), ''


def r_status(sess, node, opts, pos):
    name = pos[0] if pos else 'all'
    if name != 'all' and name not in kernel.resources(sess, node):
        if 'json' in opts:
            return 10, '[\n]\n\n', '%s: No such resource\n' % name
        return 10, '', '%s: No such resource\n' % name
    if 'json' in opts:
        return 0, status_json(sess, node, name), ''
    if not kernel.resources(sess, node):
        return 0, '# No currently configured DRBD found.\n', ''
    return 0, status_text(sess, node, name, 'verbose' in opts), ''


def r_events2(sess, node, opts, pos):
    if 'now' not in opts:
        # The real one streams until interrupted; a snapshot is all a
        # stand-in without a daemon can honestly give.
        pass
    return 0, events2_now(sess, node, pos[0] if pos else 'all'), ''


def r_role(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    res = kernel.resources(sess, node).get(name)
    if res is None:
        return 10, '', '%s: Unknown resource\n' % name
    return 0, res['role'] + '\n', ''


def r_cstate(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    res = kernel.resources(sess, node).get(name)
    pid = str(int(_arg(pos, 1, 'peer_node_id')))
    if res is None or pid not in res['conns']:
        return 10, '', '%s: No such connection\n' % name
    return 0, res['conns'][pid]['cstate'] + '\n', ''


def r_dstate(sess, node, opts, pos):
    text = _arg(pos, 0, 'minor')
    found = kernel.find_minor(sess, node, _minor(text))
    if found is None:
        return 10, '', '%s: No such device\n' % text
    res_name, res, vnr, vol = found
    parts = [vol['dstate']]
    for pid in sorted(res['conns'], key=int):
        parts.append(_peer_view(sess, res_name, res, pid, vnr)[1])
    return 0, '/'.join(parts) + '\n', ''


def r_get_gi(sess, node, opts, pos):
    name = _arg(pos, 0, 'resource')
    res = _res(sess, node, name)
    pid = str(int(_arg(pos, 1, 'peer_node_id')))
    vnr = str(int(_arg(pos, 2, 'volume')))
    vol = res['vols'].get(vnr)
    if vol is None or not vol['disk']:
        raise state_error(name, -11)
    meta_data = mdlib.read_md(kernel.disk_to_file(sess, node, vol['disk']))
    from tests.standin import drbdmeta
    return 0, drbdmeta.gi_line(meta_data, int(pid)), ''


CONFIG = {
    'new-resource': c_new_resource, 'resource-options': c_resource_options,
    'new-minor': c_new_minor, 'del-minor': c_del_minor,
    'del-resource': c_del_resource, 'new-peer': c_new_peer,
    'del-peer': c_del_peer, 'new-path': c_new_path, 'del-path': c_del_path,
    'net-options': c_net_options,
    'peer-device-options': c_peer_device_options, 'connect': c_connect,
    'disconnect': c_disconnect, 'attach': c_attach,
    'disk-options': c_disk_options, 'detach': c_detach, 'down': c_down,
    'primary': c_primary, 'secondary': c_secondary,
    'suspend-io': c_suspend_io, 'resume-io': c_resume_io,
    'new-current-uuid': c_new_current_uuid, 'resize': c_resize,
    'check-resize': c_check_resize, 'outdate': c_outdate,
    'forget-peer': c_forget_peer,
    'wait-connect-resource': c_wait, 'wait-sync-resource': c_wait,
    'wait-connect-volume': c_wait, 'wait-sync-volume': c_wait,
    'wait-connect-connection': c_wait, 'wait-sync-connection': c_wait,
}
REPORTS = {
    'show': r_show, 'status': r_status, 'events2': r_events2,
    'role': r_role, 'cstate': r_cstate, 'dstate': r_dstate,
    'get-gi': r_get_gi, 'show-gi': r_get_gi,
}


def version_text(kernel_version):
    parts = [int(p) for p in (kernel_version.split('.') + ['0', '0'])[:3]]
    code = '0x%02x%02x%02x' % tuple(parts)
    return ('DRBDADM_BUILDTAG=stand-in\nDRBDADM_API_VERSION=2\n'
            'DRBD_KERNEL_VERSION_CODE=%s\nDRBD_KERNEL_VERSION=%s\n'
            'DRBDADM_VERSION_CODE=0x091600\nDRBDADM_VERSION=%s\n'
            % (code, kernel_version, UTILS_VERSION))


def run(argv, root=None, node=None):
    """Run one drbdsetup command; returns (rc, stdout, stderr)."""
    if not argv:
        return 20, '', 'USAGE: drbdsetup command {arguments} [options]\n'
    if argv[0] in ('--version', '-V'):
        node = node or state.current_node()
        with state.locked(root) as sess:
            version = sess.node(node).get('kernel_version')
        return 0, version_text(version or state.DEFAULT_KERNEL_VERSION), ''
    cmd, rest = argv[0], argv[1:]
    if cmd.isdigit() and rest:  # legacy "drbdsetup <minor> <cmd>"
        cmd, rest = rest[0], [cmd] + rest[1:]
    if cmd not in CONFIG and cmd not in REPORTS:
        return 20, '', "drbdsetup: unknown command '%s'\n" % cmd
    opts, pos = parse(rest)
    node = node or state.current_node()
    with state.locked(root) as sess:
        sess.node(node)
        if not sess.running(node):
            return 20, '', ('stand-in: node %s is down (no DRBD module '
                            'loaded)\n' % node)
        kernel.evaluate(sess)
        try:
            if cmd in REPORTS:
                return REPORTS[cmd](sess, node, opts, pos)
            CONFIG[cmd](sess, node, opts, pos)
        except StandinError as e:
            kernel.evaluate(sess)
            return e.rc, '', e.message + '\n'
        kernel.evaluate(sess)
    return 0, '', ''


def main(argv):
    rc, out, err = run(argv)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
