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
"""The emulated DRBD 9 kernel module.

Runtime state lives in the shared state document, per node and resource::

    nodes[<node>]['drbd'][<res>] = {
        'node_id', 'opts' (resource options), 'role', 'auto_promoted',
        'susp_user', 'quorum',
        'vols': {'<vnr>': {'minor', 'diskless' (intentional), 'dev_opts',
                           'disk' (/dev path or None), 'meta_disk',
                           'disk_opts', 'dstate', 'size', 'agen',
                           'open_rw', 'open_ro', 'read', 'written'}},
        'conns': {'<peer node-id>': {'name', 'net', 'paths', 'connect',
                                      'pd', 'cstate', 'hs', 'graceful',
                                      'peer_diskless', 'split_brain'}},
    }

Nothing runs in the background: :func:`evaluate` derives connections,
handshakes (resync), sizes and quorum from the shared state whenever a
command runs, under the state lock.
"""

import errno
import os

from tests.standin import md as mdlib
from tests.standin.state import StandinError

DISK_ATTACHED = ('Inconsistent', 'Outdated', 'Consistent', 'UpToDate')

# drbd_set_st_err_str() and error_messages[] of drbd-utils
SS = {
    -1: 'Multiple primaries not allowed by config',
    -2: 'Need access to UpToDate data',
    -11: 'Device is diskless, the requested operation requires a disk',
    -12: 'Device is held open by someone',
    -13: 'Have no net/connection configuration',
    -15: 'Need a connection to start verify or resync',
    -23: 'No quorum',
}
ERR = {
    104: 'Can not open backing device.',
    111: 'Low.dev. smaller than requested DRBD-dev. size.',
    114: ('Lower device is already claimed. This usually means it is '
          'mounted.'),
    119: ("No valid meta-data signature found.\n\n\t==> Use 'drbdadm "
          "create-md res' to initialize meta-data area. <==\n"),
    124: 'Device is attached to a disk (use detach first)',
    127: 'Device minor not allocated',
    158: 'Unknown resource',
    159: 'Resource still in use (delete all minors first)',
    160: 'Minor still configured (down it first)',
    161: 'Minor or volume exists already (delete it first)',
    164: ('Can not clear allow_two_primaries as long as\nthere a primaries '
          'on both sides'),
    170: 'Invalid peer-node-id\n',
    173: 'Already exists\n',
}


def state_error(objname, code):
    rc = {-2: 17}.get(code, 11)
    return StandinError('%s: State change failed: (%d) %s'
                        % (objname, code, SS[code]), rc)


def failure(objname, code):
    return StandinError('%s: Failure: (%d) %s' % (objname, code, ERR[code]),
                        10)


def yes(value):
    return str(value).lower() in ('yes', 'true', '1', 'on')


# drbdsetup's numbers (drbd-utils' new_strtoll): unit K/k, M/m, G/g or s;
# none = the option's default unit, the sector for ``size``.
_SIZE_UNITS = {'': 512, 's': 512, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}
#: DRBD_DISK_SIZE_MAX: 2**41 sectors.
SIZE_MAX = (2 << 40) * 512


def size_bytes(text):
    """Bytes of a ``--size=`` value; StandinError like drbdsetup's."""
    digits = text.rstrip('sSkKmMgG')
    unit = text[len(digits):]
    if not digits.isdigit() or len(unit) > 1:
        raise StandinError("%s: '%s' is not a valid number"
                           % ('--size', text), 20)
    size = int(digits) * _SIZE_UNITS[unit.lower()]
    if size > SIZE_MAX:
        raise StandinError('--size: %s is too big (max %d sectors)'
                           % (text, SIZE_MAX // 512), 20)
    return size


def size_text(size):
    """A user size as ``drbdsetup show`` prints it (sectors, "s")."""
    return '%ds' % (size // 512)


def user_size(vol):
    """The device's user-set size (``disk { size }``) in bytes, 0 if none.

    The kernel keeps it in the volume's disk configuration; peers that
    connect agree on the smaller one set, and a resize passes a new one
    to every connected peer ("Peer sets u_size").
    """
    text = (vol.get('disk_opts') or {}).get('size')
    return size_bytes(text) if text else 0


def set_user_size(vol, size):
    if size:
        vol['disk_opts']['size'] = size_text(size)
    else:
        vol['disk_opts'].pop('size', None)


# --- lookups ---------------------------------------------------------------

def resources(sess, node):
    return sess.nodes[node].setdefault('drbd', {})


def find_minor(sess, node, minor):
    for name, res in resources(sess, node).items():
        for vnr, vol in res['vols'].items():
            if vol['minor'] == minor:
                return name, res, vnr, vol
    return None


def disk_to_file(sess, node, path):
    """The LV file behind ``/dev/<vg>/<lv>`` on ``node``, or None.

    ``<dir>/<node>/dev/<vg>/<lv>`` (the node's device root in the harness)
    names the same LV.
    """
    if not path:
        return None
    own_root = os.path.join(sess.root, node, 'dev') + '/'
    if path.startswith(own_root):
        path = '/dev/' + path[len(own_root):]
    parts = path.split('/')
    vg = lv = None
    if len(parts) == 4 and parts[1] == 'dev' and parts[2] != 'mapper':
        vg, lv = parts[2], parts[3]
    elif len(parts) == 4 and parts[2] == 'mapper':
        dm = parts[3].replace('--', '\0')
        if dm.count('-') == 1:
            vg, lv = (x.replace('\0', '-') for x in dm.split('-'))
    if vg is None:
        return None
    vgrec = sess.nodes[node].get('vgs', {}).get(vg)
    if not vgrec or lv not in vgrec['lvs']:
        return None
    if not vgrec['lvs'][lv].get('active', True):
        return None
    return sess.lv_file(node, vg, lv)


def norm_addr(text):
    for prefix in ('local:', 'peer:'):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if not text.split(':', 1)[0] in ('ipv4', 'ipv6', 'sdp', 'ssocks'):
        text = 'ipv4:' + text
    return text


# --- connections -----------------------------------------------------------

def peer_node(sess, res_name, a, ra, pid):
    """Name of the node the connection (a -> pid) is established with."""
    conn = ra['conns'][pid]
    b = conn.get('name')
    if not conn.get('connect') or not b or b == a:
        return None
    if not sess.running(b) or sess.link_cut(a, b):
        return None
    rb = resources(sess, b).get(res_name)
    if rb is None or rb['node_id'] != int(pid):
        return None
    cb = rb['conns'].get(str(ra['node_id']))
    if cb is None or not cb.get('connect') or cb.get('name') != a:
        return None
    mine = {(norm_addr(p[0]), norm_addr(p[1])) for p in conn['paths']}
    theirs = {(norm_addr(p[1]), norm_addr(p[0])) for p in cb['paths']}
    if not mine & theirs:
        return None
    for key in ('shared-secret', 'cram-hmac-alg'):
        if conn['net'].get(key) != cb['net'].get(key):
            return None
    if (ra['role'] == 'Primary' and rb['role'] == 'Primary'
            and not (yes(conn['net'].get('allow-two-primaries', 'no'))
                     and yes(cb['net'].get('allow-two-primaries', 'no')))):
        return None
    return b


def _attached(vol):
    return vol is not None and vol.get('dstate') in DISK_ATTACHED


class MdCache:
    """Meta data read once per evaluation and written back when changed."""

    def __init__(self, sess):
        self.sess = sess
        self.cache = {}

    def get(self, node, vol):
        path = disk_to_file(self.sess, node, vol['disk'])
        if path not in self.cache:
            self.cache[path] = [mdlib.read_md(path), False]
        return self.cache[path][0], path

    def dirty(self, path):
        self.cache[path][1] = True

    def flush(self):
        for path, (md, dirty) in self.cache.items():
            if dirty and md is not None:
                mdlib.write_md(path, md)


def evaluate(sess):
    """Bring every resource's derived state up to date."""
    names = set()
    for node in sess.nodes:
        if sess.running(node):
            names.update(resources(sess, node))
    cache = MdCache(sess)
    for res_name in sorted(names):
        _evaluate_resource(sess, res_name, cache)
    cache.flush()


def _evaluate_resource(sess, res_name, cache):
    up = {n: resources(sess, n)[res_name] for n in sorted(sess.nodes)
          if sess.running(n) and res_name in resources(sess, n)}
    links = {}
    for a, ra in up.items():
        for pid, conn in ra['conns'].items():
            b = peer_node(sess, res_name, a, ra, pid)
            links[(a, pid)] = b
            if b is not None:
                new = 'Connected'
            elif conn.get('connect'):
                new = 'Connecting'
            else:
                new = 'StandAlone'
            if new != 'Connected':
                conn['hs'] = ''
            else:
                conn['graceful'] = False
                rb = up[b]
                conn['peer_diskless'] = all(
                    v.get('diskless') for v in rb['vols'].values()) and bool(
                    rb['vols'])
            conn['cstate'] = new
    # handshakes: once per pair and attach generation
    for a, ra in up.items():
        for pid, conn in ra['conns'].items():
            b = links.get((a, pid))
            if b is None or b < a:
                continue
            rb = up[b]
            cb = rb['conns'][str(ra['node_id'])]
            for vnr, va in ra['vols'].items():
                vb = rb['vols'].get(vnr)
                if vb is None:
                    continue
                key = '%s:%s:%s' % (vnr, va.get('agen', 0), vb.get('agen', 0))
                if key in conn['hs'].split(',') and key in cb['hs'].split(
                        ','):
                    continue
                _handshake(sess, cache, res_name, a, ra, va, b, rb, vb)
                for c in (conn, cb):
                    keys = [k for k in c['hs'].split(',')
                            if k and not k.startswith(vnr + ':')]
                    c['hs'] = ','.join(keys + [key])
                if conn.get('split_brain'):
                    break
    # diskless sizes, single node UpToDate, quorum
    for a, ra in up.items():
        for vnr, va in ra['vols'].items():
            if not _attached(va):
                sizes = []
                for pid, conn in ra['conns'].items():
                    b = links.get((a, pid))
                    vb = up[b]['vols'].get(vnr) if b else None
                    if _attached(vb):
                        sizes.append(vb['size'])
                va['size'] = min(sizes) if sizes else 0
            elif va['dstate'] == 'Consistent' and not any(
                    not c.get('peer_diskless') and not _bitmap_no(c)
                    for c in ra['conns'].values()):
                va['dstate'] = 'UpToDate'
    for a, ra in up.items():
        ra['quorum'] = _has_quorum(ra, up, links, a, first_pass=True)
    for a, ra in up.items():
        if _is_diskless(ra):
            ra['quorum'] = _client_quorum(ra, up, links, a)


def _bitmap_no(conn):
    return any(str(pd.get('bitmap', 'yes')).lower() in ('no', 'false')
               for pd in conn.get('pd', {}).values())


def _is_diskless(res):
    return not any(v.get('disk') for v in res['vols'].values())


def _peer_is_diskful(conn):
    return not conn.get('peer_diskless') and not _bitmap_no(conn)


def _voters(ra):
    voters = 1 if not _is_diskless(ra) else 0
    for conn in ra['conns'].values():
        if _peer_is_diskful(conn) and not conn.get('graceful'):
            voters += 1
    return voters


def _present(ra, up, links, a):
    present = 1 if any(_attached(v) for v in ra['vols'].values()) else 0
    for pid, conn in ra['conns'].items():
        b = links.get((a, pid))
        if b and _peer_is_diskful(conn) and any(
                _attached(v) for v in up[b]['vols'].values()):
            present += 1
    return present


def _quorum_rule(ra, present, voters, tiebreak):
    policy = str(ra['opts'].get('quorum', 'off'))
    if policy == 'off':
        return True
    if policy == 'all':
        return present >= voters
    if policy.isdigit():
        return present >= int(policy)
    # majority
    return present * 2 > voters or (present * 2 == voters and tiebreak)


def _has_quorum(ra, up, links, a, first_pass):
    if _is_diskless(ra):
        return False
    present = _present(ra, up, links, a)
    voters = _voters(ra)
    # Tiebreaker: with exactly half of the diskful voters, a partition that
    # holds every diskless peer of this node keeps quorum.
    diskless = [pid for pid, c in ra['conns'].items()
                if not _peer_is_diskful(c)]
    tiebreak = bool(diskless) and all(links.get((a, pid))
                                      for pid in diskless)
    return _quorum_rule(ra, present, voters, tiebreak)


def _client_quorum(ra, up, links, a):
    present = 0
    voters = 0
    peer_has = False
    for pid, conn in ra['conns'].items():
        if not _peer_is_diskful(conn):
            continue
        if not conn.get('graceful'):
            voters += 1
        b = links.get((a, pid))
        if b and any(_attached(v) for v in up[b]['vols'].values()):
            present += 1
            peer_has = peer_has or up[b].get('quorum', False)
    return _quorum_rule(ra, present, voters, peer_has)


# --- handshake and resync --------------------------------------------------

def _handshake(sess, cache, res_name, a, ra, va, b, rb, vb):
    if not (_attached(va) and _attached(vb)):
        return
    mda, pa = cache.get(a, va)
    mdb, pb = cache.get(b, vb)
    if mda is None or mdb is None:
        return
    ida, idb = ra['node_id'], rb['node_id']
    ca = mda['flags'] & mdlib.MDF_CONSISTENT
    cb = mdb['flags'] & mdlib.MDF_CONSISTENT
    # The user sizes first (min_not_zero, as DRBD's first size exchange).
    usizes = [u for u in (user_size(va), user_size(vb)) if u]
    if usizes:
        for v in (va, vb):
            set_user_size(v, min(usizes))
            v['size'] = min(v['size'], min(usizes))
    size = min(va['size'], vb['size'])
    va['size'] = vb['size'] = size
    if not ca and not cb:
        return
    if ca and not cb:
        _sync(cache, pa, mda, va, ida, pb, mdb, vb, idb, size, full=True)
        return
    if cb and not ca:
        _sync(cache, pb, mdb, vb, idb, pa, mda, va, ida, size, full=True)
        return
    if mda['current_uuid'] == mdb['current_uuid']:
        for md, path, other in ((mda, pa, idb), (mdb, pb, ida)):
            p = mdlib.peer(md, other)
            p.update(bitmap_uuid=0, ranges=[])
            cache.dirty(path)
        for v in (va, vb):
            v['dstate'] = 'UpToDate'
        return
    a_newer = _is_ancestor(mda, idb, mdb['current_uuid'])
    b_newer = _is_ancestor(mdb, ida, mda['current_uuid'])
    if a_newer and not b_newer:
        _sync(cache, pa, mda, va, ida, pb, mdb, vb, idb, size)
    elif b_newer and not a_newer:
        _sync(cache, pb, mdb, vb, idb, pa, mda, va, ida, size)
    else:
        for res, peer_id in ((ra, idb), (rb, ida)):
            conn = res['conns'][str(peer_id)]
            conn['connect'] = False
            conn['cstate'] = 'StandAlone'
            conn['split_brain'] = True


def _is_ancestor(md, peer_id, uuid):
    p = md['peers'].get(str(peer_id), {})
    return p.get('bitmap_uuid') == uuid or uuid in md['history']


def _sync(cache, spath, smd, svol, sid, dpath, dmd, dvol, did, size,
          full=False):
    """Resync dst from src (done at once: the stand-in is lazy but fast)."""
    p = mdlib.peer(smd, did)
    if full or p.get('bitmap_uuid') != dmd['current_uuid']:
        ranges = [[0, size]]
    elif p.get('ranges') == mdlib.FULL:
        ranges = [[0, size]]
    else:
        ranges = p.get('ranges', [])
    sfd = os.open(spath, os.O_RDONLY)
    dfd = os.open(dpath, os.O_RDWR)
    try:
        for start, end in ranges:
            end = min(end, size)
            if start < end:
                mdlib.copy_range(sfd, dfd, start, end)
    finally:
        os.close(sfd)
        os.close(dfd)
    p.update(bitmap_uuid=0, ranges=[])
    dmd['current_uuid'] = smd['current_uuid']
    dmd['history'] = list(smd['history'])
    dmd['flags'] |= mdlib.MDF_CONSISTENT | mdlib.MDF_WAS_UP_TO_DATE
    mdlib.peer(dmd, sid).update(bitmap_uuid=0, ranges=[])
    dmd['la_size'] = size
    cache.dirty(spath)
    cache.dirty(dpath)
    if svol['dstate'] in ('Consistent', 'Outdated'):
        svol['dstate'] = 'UpToDate'
    dvol['dstate'] = 'UpToDate'


# --- roles -----------------------------------------------------------------

def connected_peers(sess, res_name, node, res):
    """[(peer node, peer res, conn)] of the established connections."""
    out = []
    for pid, conn in res['conns'].items():
        if conn.get('cstate') == 'Connected':
            b = conn['name']
            rb = resources(sess, b).get(res_name)
            if rb is not None:
                out.append((b, rb, conn))
    return out


def has_uptodate_access(sess, res_name, node, res):
    for vol in res['vols'].values():
        if vol['dstate'] == 'UpToDate':
            continue
        ok = False
        for b, rb, conn in connected_peers(sess, res_name, node, res):
            for vnr, vb in rb['vols'].items():
                if vb['minor'] == vol['minor'] or vnr in res['vols']:
                    ok = ok or vb['dstate'] == 'UpToDate'
        if not ok:
            return False
    return bool(res['vols'])


def promote(sess, res_name, node, force=False):
    """Become Primary or raise the state error DRBD would give."""
    res = resources(sess, node)[res_name]
    if res['role'] == 'Primary':
        return
    for b, rb, conn in connected_peers(sess, res_name, node, res):
        if rb['role'] == 'Primary' and not yes(
                conn['net'].get('allow-two-primaries', 'no')):
            raise state_error(res_name, -1)
    if force:
        for vol in res['vols'].values():
            if _attached(vol) and vol['dstate'] != 'UpToDate':
                _force_uptodate(sess, res_name, node, res, vol)
    if not has_uptodate_access(sess, res_name, node, res):
        raise state_error(res_name, -2)
    if not res.get('quorum', True):
        raise state_error(res_name, -23)
    res['role'] = 'Primary'


def _force_uptodate(sess, res_name, node, res, vol):
    """``primary --force`` of a disk that is not UpToDate (DRBD 9).

    The disk becomes UpToDate with a new current UUID (written to its meta
    data at once, as DRBD does), and the connected peers handshake again:
    an Inconsistent peer then takes a full sync from it.
    """
    path = disk_to_file(sess, node, vol['disk'])
    md = mdlib.read_md(path) if path else None
    if md is not None:
        mdlib.rotate_uuid(md, mdlib.new_uuid())
        md['flags'] |= mdlib.MDF_CONSISTENT | mdlib.MDF_WAS_UP_TO_DATE
        mdlib.write_md(path, md)
    vol['dstate'] = 'UpToDate'
    for b, rb, conn in connected_peers(sess, res_name, node, res):
        conn['hs'] = ''
        back = rb['conns'].get(str(res['node_id']))
        if back is not None:
            back['hs'] = ''


def demote(sess, res_name, node):
    res = resources(sess, node)[res_name]
    if any(v.get('open_rw') for v in res['vols'].values()):
        raise state_error(res_name, -12)
    res['role'] = 'Secondary'
    res['auto_promoted'] = False


# --- data path -------------------------------------------------------------

class Wait(Exception):
    """I/O is suspended: retry later."""


def _io_targets(sess, res_name, node, res, vnr):
    targets = []
    vol = res['vols'][vnr]
    if _attached(vol):
        targets.append((node, res, vol))
    for b, rb, conn in connected_peers(sess, res_name, node, res):
        vb = rb['vols'].get(vnr)
        if _attached(vb):
            targets.append((b, rb, vb))
    return targets


def _io_checks(res):
    if res.get('susp_user'):
        raise Wait()
    if not res.get('quorum', True):
        if res['opts'].get('on-no-quorum', 'suspend-io') == 'io-error':
            raise OSError(errno.EIO, 'no quorum')
        raise Wait()


def do_write(sess, res_name, node, vnr, offset, data):
    res = resources(sess, node).get(res_name)
    if res is None or vnr not in res['vols']:
        raise OSError(errno.ENODEV, 'no such device')
    vol = res['vols'][vnr]
    if res['role'] != 'Primary':
        raise OSError(errno.EROFS, 'not primary')
    _io_checks(res)
    if offset + len(data) > vol['size']:
        raise OSError(errno.ENOSPC, 'beyond the end of the device')
    targets = _io_targets(sess, res_name, node, res, vnr)
    if not any(v['dstate'] == 'UpToDate' for _, _, v in targets):
        raise OSError(errno.EIO, 'no access to UpToDate data')
    ids = {r['node_id'] for _, r, _ in targets}
    missing = {}
    for t_node, t_res, t_vol in targets:
        gone = {int(pid) for pid, c in t_res['conns'].items()
                if _peer_is_diskful(c)} - ids
        if gone:
            missing[t_node] = gone
    if missing:
        cache = MdCache(sess)
        mds = {t: cache.get(t, v) for t, _, v in targets}
        rotate = any(
            mdlib.peer(mds[t][0], m)['bitmap_uuid'] == 0
            for t, gone in missing.items() for m in gone
            if mds[t][0] is not None)
        new = mdlib.new_uuid() if rotate else None
        for t_node, (md, path) in mds.items():
            if md is None:
                continue
            if rotate:
                old = md['current_uuid']
                for m in missing.get(t_node, ()):
                    p = mdlib.peer(md, m)
                    if p['bitmap_uuid'] == 0:
                        p['bitmap_uuid'] = old
                mdlib.rotate_uuid(md, new)
            for m in missing.get(t_node, ()):
                mdlib.add_range(md, m, offset, offset + len(data))
            cache.dirty(path)
        cache.flush()
    for t_node, t_res, t_vol in targets:
        path = disk_to_file(sess, t_node, t_vol['disk'])
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)
    vol['written'] = vol.get('written', 0) + len(data) // 1024
    return len(data)


def do_read(sess, res_name, node, vnr, offset, size):
    res = resources(sess, node).get(res_name)
    if res is None or vnr not in res['vols']:
        raise OSError(errno.ENODEV, 'no such device')
    vol = res['vols'][vnr]
    _io_checks(res)
    size = max(0, min(size, vol['size'] - offset))
    source = None
    if vol['dstate'] == 'UpToDate':
        source = (node, vol)
    else:
        for b, rb, conn in connected_peers(sess, res_name, node, res):
            vb = rb['vols'].get(vnr)
            if vb is not None and vb['dstate'] == 'UpToDate':
                source = (b, vb)
                break
    if source is None:
        raise OSError(errno.EIO, 'no access to UpToDate data')
    if size == 0:
        return b''
    path = disk_to_file(sess, source[0], source[1]['disk'])
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    vol['read'] = vol.get('read', 0) + len(data) // 1024
    return data


def open_device(sess, res_name, node, vnr, write):
    res = resources(sess, node).get(res_name)
    if res is None or vnr not in res['vols']:
        raise OSError(errno.ENODEV, 'no such device')
    vol = res['vols'][vnr]
    if write:
        if res['role'] != 'Primary':
            if not yes(res['opts'].get('auto-promote', 'yes')):
                raise OSError(errno.EROFS, 'not primary')
            try:
                promote(sess, res_name, node)
            except StandinError:
                raise OSError(errno.EROFS, 'auto-promote failed') from None
            res['auto_promoted'] = True
        vol['open_rw'] = vol.get('open_rw', 0) + 1
    else:
        if not has_uptodate_access(sess, res_name, node, res):
            raise OSError(errno.EMEDIUMTYPE, 'no access to UpToDate data')
        vol['open_ro'] = vol.get('open_ro', 0) + 1


def close_device(sess, res_name, node, vnr, write):
    res = resources(sess, node).get(res_name)
    if res is None or vnr not in res['vols']:
        return
    vol = res['vols'][vnr]
    key = 'open_rw' if write else 'open_ro'
    vol[key] = max(0, vol.get(key, 0) - 1)
    if (write and res.get('auto_promoted') and res['role'] == 'Primary'
            and not any(v.get('open_rw') for v in res['vols'].values())):
        res['role'] = 'Secondary'
        res['auto_promoted'] = False
