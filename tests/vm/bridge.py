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
"""The emulated DRBD 9 kernel of all test VMs, on the host.

The VMs' own kernel has DRBD 8.4 only, so ``drbdsetup`` inside a VM is the
forwarder ``tests/vm/guest/bin/drbdsetup``: it sends each call here over
the VM's user-mode network (host = 10.0.2.2). This server runs the
stand-in's ``drbdsetup`` (tests/standin) for the calling node against one
state directory shared by every VM, so connections between VMs, quorum
and disk states are evaluated across them. One call at a time (a lock),
as the stand-in's state is one document.

The stand-in keeps its own view of each backing LV (a "shadow": a sparse
file of the real LV's size holding the stand-in's meta data). It is kept
in step with the real LVs:

* sizes: every call carries the real sizes of the caller's LVs; a resize
  also asks the peers (``peer_lv_size`` callback, over SSH);
* meta data in: on ``attach`` the REAL meta data (``drbdmeta dump-md``)
  becomes the shadow's (generation identifiers, flags, peer slots);
* meta data out: whenever the emulated kernel changed a shadow's
  generation identifiers or flags, the reply tells the forwarder to write
  them to the real meta data with the real ``drbdmeta set-gi``; after a
  resize it runs the real ``drbdmeta check-resize`` first (the kernel
  moves internal meta data to the new end).

So the real ``drbdmeta dump-md`` of an LV shows what DRBD 9 would have
written there; no data goes through DRBD in this tier.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import threading
import time
from typing import Callable

from tests.standin import cli as standin_cli
from tests.standin import cluster as standin
from tests.standin import drbdsetup
from tests.standin import kernel
from tests.standin import md as mdlib
from tests.standin import state

_HEX = r'0x([0-9A-Fa-f]+)'


def parse_dump_md(text: str | None) -> dict | None:
    """The stand-in meta data dict for a real ``dump-md`` output."""
    if not text:
        return None
    m = re.search(r'^max-peers (\d+);', text, re.M)
    if not m:
        return None
    md = mdlib.new_md(int(m.group(1)))
    head = text.split('peer[', 1)[0]
    md['current_uuid'] = int(re.search(r'current-uuid ' + _HEX, head)[1],
                             16)
    md['flags'] = int(re.search(r'^flags ' + _HEX, head, re.M)[1], 16)
    for idx, body in re.findall(r'peer\[(\d+)\] \{(.*?)\}', text, re.S):
        bm = int(re.search(r'bitmap-uuid ' + _HEX, body)[1], 16)
        flags = int(re.search(r'flags ' + _HEX, body)[1], 16)
        index = int(re.search(r'bitmap-index (-?\d+)', body)[1])
        if bm or flags or index != -1:
            md['peers'][idx] = {'bitmap_uuid': bm, 'flags': flags,
                                'ranges': [], 'bitmap_index': index}
    hist = re.search(r'history-uuids \{(.*?)\}', text, re.S)
    if hist:
        md['history'] = [int(h, 16) for h in re.findall(_HEX, hist[1])
                         if int(h, 16)]
    la = re.search(r'^la-size-sect (\d+);', text, re.M)
    md['la_size'] = int(la[1]) * 512 if la else 0
    dev = re.search(r'^device-uuid ' + _HEX, text, re.M)
    md['device_uuid'] = int(dev[1], 16) if dev else 0
    return md


def gi_strings(md: dict) -> list[tuple[int, str]]:
    """(node-id, ``set-gi`` argument) per peer slot of stand-in meta data.

    The flag order is drbdmeta's show-gi legend.
    """
    f = md['flags']
    own = [f & mdlib.MDF_CONSISTENT, f & mdlib.MDF_WAS_UP_TO_DATE,
           f & mdlib.MDF_PRIMARY_IND, f & mdlib.MDF_CRASHED_PRIMARY,
           f & mdlib.MDF_AL_CLEAN, f & mdlib.MDF_AL_DISABLED,
           f & mdlib.MDF_PRIMARY_LOST_QUORUM]
    hist = (md['history'] + [0, 0])[:2]
    out = []
    for node_id, peer in sorted(md['peers'].items(), key=lambda p: p[0]):
        p = peer.get('flags', 0)
        bits = own + [p & mdlib.MDF_PEER_CONNECTED,
                      p & mdlib.MDF_PEER_OUTDATED,
                      p & mdlib.MDF_PEER_FENCING,
                      p & mdlib.MDF_PEER_FULL_SYNC,
                      p & mdlib.MDF_PEER_DEVICE_SEEN]
        text = ':'.join(['%016X' % md['current_uuid'],
                         '%016X' % peer.get('bitmap_uuid', 0),
                         '%016X' % hist[0], '%016X' % hist[1]] +
                        ['1' if b else '0' for b in bits])
        out.append((int(node_id), text))
    if not out:
        out.append((0, ':'.join(
            ['%016X' % md['current_uuid'], '0' * 16, '%016X' % hist[0],
             '%016X' % hist[1]] + ['1' if b else '0' for b in own] +
            ['0'] * 5)))
    return out


def parse_request(text: str) -> dict:
    """The forwarder's request lines as a dict (node, argv, lvs, md).

    ``node N``, one ``arg A`` per argument, ``lv NAME BYTES`` per LV,
    ``md BASE64`` (the real dump-md, on attach), ``end``.
    """
    req: dict = {'node': None, 'argv': [], 'lvs': {}, 'md': None}
    for line in text.split('\n'):
        key, _, value = line.partition(' ')
        if key == 'node':
            req['node'] = value
        elif key == 'arg':
            req['argv'].append(value)
        elif key == 'lv':
            name, size = value.split()
            req['lvs'][name] = int(size)
        elif key == 'md':
            req['md'] = base64.b64decode(value).decode()
    if not req['node']:
        raise ValueError('no node in the request')
    return req


def format_reply(reply: dict) -> str:
    """Answer lines: meta data to write first, then output, then rc."""
    lines = []
    for item in reply.get('writeback', []):
        if item.get('move'):
            lines.append(f'move {item["minor"]} {item["disk"]}')
        for node_id, gi in item.get('gis', []):
            lines.append(f'gi {item["minor"]} {item["disk"]} {node_id} {gi}')
    for key, stream in (('out', 'stdout'), ('err', 'stderr')):
        if reply.get(stream):
            lines.append(f'{key} ' + base64.b64encode(
                reply[stream].encode()).decode())
    lines.append(f'rc {reply["rc"]}')
    return '\n'.join(lines) + '\n'


class DrbdBridge:
    """TCP server: request lines in, answer lines out, per drbdsetup."""

    def __init__(self, root: str, nodes: list[str], vg: str, pool: str,
                 peer_lv_size: Callable[[str, str], int | None],
                 pool_size: int = 1 << 40) -> None:
        self.root = root
        self.vg = vg
        self.pool = pool
        self.peer_lv_size = peer_lv_size
        self.cluster = standin.Cluster(root, fuse=False)
        for node in nodes:
            self.cluster.add_node(node, vg=vg, pool=pool, size=pool_size)
        self._lock = threading.Lock()
        self._sent: dict[tuple[str, str], list] = {}
        self._minor: dict[tuple[str, str], int] = {}
        self._move: set[tuple[str, str]] = set()
        self.calls: list[tuple[str, list[str], int]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(('127.0.0.1', 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name='drbd-bridge')
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self.cluster.close()

    # -- server -------------------------------------------------------------

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,),
                             daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            data = b''
            while not (data == b'end\n' or data.endswith(b'\nend\n')):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            try:
                reply = self.handle(parse_request(data.decode()))
            except Exception as exc:  # report, never kill the server
                reply = {'rc': 20, 'stdout': '',
                         'stderr': f'vm bridge: {exc!r}\n'}
            conn.sendall(format_reply(reply).encode())

    # -- one call -----------------------------------------------------------

    def handle(self, req: dict) -> dict:
        node, argv = req['node'], list(req['argv'])
        with self._lock:
            self._sync_shadows(node, req.get('lvs', {}))
            if argv and argv[0] == 'attach' and len(argv) >= 3:
                self._import_md(node, int(argv[1]), argv[2], req.get('md'))
            if argv and argv[0] == 'resize' and len(argv) >= 2:
                self._sync_peers_for_resize(node, int(argv[1]))
            before = self._attached(node)
            # In this process: a Python start per call would cost more
            # than the call (the stand-in's own executable does the same).
            rc, out, err = drbdsetup.run(argv, root=self.root, node=node)
            self.calls.append((node, argv, rc))
            self._log(node, argv, rc)
            if argv and argv[0] == 'resize' and rc == 0 and len(argv) >= 2:
                self._mark_moved(node, int(argv[1]))
            after = self._attached(node)
            writeback = self._writeback(node, {**before, **after})
        return {'rc': rc, 'stdout': out, 'stderr': err,
                'writeback': writeback}

    def _log(self, node: str, argv: list[str], rc: int) -> None:
        """calls.log, as the stand-in's executables write it."""
        with open(os.path.join(self.root, standin_cli.CALL_LOG), 'a') as f:
            f.write('%.3f %s drbdsetup %s rc=%d\n' % (
                time.time(), node, ' '.join(argv), rc))

    def _lv_of(self, disk: str) -> str | None:
        prefix = f'/dev/{self.vg}/'
        return disk[len(prefix):] if disk.startswith(prefix) else None

    def _attached(self, node: str) -> dict[str, int]:
        """LV name -> minor of this node's attached volumes."""
        out = {}
        with state.locked(self.root) as sess:
            for res in kernel.resources(sess, node).values():
                for vol in res['vols'].values():
                    lv = self._lv_of(vol.get('disk') or '')
                    if lv:
                        out[lv] = vol['minor']
        return out

    def _sync_shadows(self, node: str, sizes: dict[str, int]) -> None:
        attached = self._attached(node)
        with state.locked(self.root) as sess:
            vgrec = sess.node(node)['vgs'][self.vg]
            for lv, size in sizes.items():
                self._set_size(sess, node, vgrec, lv, size)
            for lv in list(vgrec['lvs']):
                if lv not in sizes and lv not in attached:
                    path = sess.lv_file(node, self.vg, lv)
                    if os.path.exists(path):
                        os.unlink(path)
                    del vgrec['lvs'][lv]
                    self._sent.pop((node, lv), None)

    def _set_size(self, sess, node, vgrec, lv, size) -> None:
        path = sess.lv_file(node, self.vg, lv)
        rec = vgrec['lvs'].get(lv)
        if rec is None or not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                f.truncate(size)
            vgrec['lvs'][lv] = {'size': size, 'tags': [], 'origin': '',
                                'active': True, 'skip': False,
                                'pool': self.pool}
            return
        if rec['size'] == size:
            return
        # Grown (or replaced) LV: the meta data moves to the new end, as
        # the kernel does on resize.
        meta = mdlib.read_md(path)
        with open(path, 'r+b') as f:
            f.truncate(size)
        rec['size'] = size
        if meta is not None:
            mdlib.write_md(path, meta)

    def _import_md(self, node: str, minor: int, disk: str,
                   text: str | None) -> None:
        lv = self._lv_of(disk)
        if lv is None:
            return
        meta = parse_dump_md(text)
        path = state.lv_file(self.root, node, self.vg, lv)
        if not os.path.exists(path):
            return
        if meta is None:
            mdlib.wipe_md(path)
            self._sent.pop((node, lv), None)
            return
        mdlib.write_md(path, meta)
        self._sent[(node, lv)] = gi_strings(meta)
        self._minor[(node, lv)] = minor

    def _sync_peers_for_resize(self, node: str, minor: int) -> None:
        with state.locked(self.root) as sess:
            found = kernel.find_minor(sess, node, minor)
            if not found:
                return
            res_name = found[0]
            peers = []
            for other in sess.nodes:
                if other == node:
                    continue
                res = kernel.resources(sess, other).get(res_name)
                for vol in (res or {}).get('vols', {}).values():
                    lv = self._lv_of(vol.get('disk') or '')
                    if lv:
                        peers.append((other, lv))
        for other, lv in peers:
            size = self.peer_lv_size(other, lv)
            if size:
                with state.locked(self.root) as sess:
                    vgrec = sess.node(other)['vgs'][self.vg]
                    self._set_size(sess, other, vgrec, lv, size)

    def _mark_moved(self, node: str, minor: int) -> None:
        with state.locked(self.root) as sess:
            found = kernel.find_minor(sess, node, minor)
            if not found:
                return
            for other in sess.nodes:
                res = kernel.resources(sess, other).get(found[0])
                for vol in (res or {}).get('vols', {}).values():
                    lv = self._lv_of(vol.get('disk') or '')
                    if lv:
                        self._move.add((other, lv))

    def _writeback(self, node: str, lvs: dict[str, int]) -> list[dict]:
        out = []
        for lv, minor in sorted(lvs.items()):
            self._minor[(node, lv)] = minor
            path = state.lv_file(self.root, node, self.vg, lv)
            meta = mdlib.read_md(path)
            if meta is None:
                continue
            gis = gi_strings(meta)
            move = (node, lv) in self._move
            if gis == self._sent.get((node, lv)) and not move:
                continue
            self._sent[(node, lv)] = gis
            self._move.discard((node, lv))
            out.append({'disk': f'/dev/{self.vg}/{lv}', 'minor': minor,
                        'move': move, 'gis': gis})
        return out
