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
"""``drbdmeta`` stand-in for v09 internal meta data in an LV file.

``drbdmeta [options] <minor> v09 <disk> internal <command> [args]``, with
the commands drbdadm uses (create-md, wipe-md, apply-al, read-dev-uuid,
write-dev-uuid, check-resize) and the inspection ones (get-gi, show-gi,
dump-md, dstate), their messages, confirmations and exit codes.
"""

import sys
import time

from tests.standin import kernel
from tests.standin import md as mdlib
from tests.standin import state
from tests.standin.state import StandinError

# name -> (needs node-id, modifies md)
COMMANDS = {
    'get-gi': (True, False), 'show-gi': (True, False),
    'dump-md': (False, False), 'apply-al': (False, True),
    'wipe-md': (False, True), 'outdate': (False, True),
    'invalidate': (False, True), 'dstate': (False, False),
    'read-dev-uuid': (False, False), 'write-dev-uuid': (False, True),
    'set-gi': (True, True), 'check-resize': (False, True),
    'create-md': (False, True), 'forget-peer': (True, True),
}


def gi_line(md, node_id):
    p = md['peers'].get(str(node_id), {})
    hist = (md['history'] + [0, 0])[:2]
    f = md['flags']
    pf = p.get('flags', 0)
    bits = [f & mdlib.MDF_CONSISTENT, f & mdlib.MDF_WAS_UP_TO_DATE,
            f & mdlib.MDF_PRIMARY_IND, f & mdlib.MDF_CRASHED_PRIMARY,
            f & mdlib.MDF_AL_CLEAN, f & mdlib.MDF_AL_DISABLED,
            f & mdlib.MDF_PRIMARY_LOST_QUORUM,
            pf & mdlib.MDF_PEER_CONNECTED, pf & mdlib.MDF_PEER_OUTDATED,
            pf & mdlib.MDF_PEER_FENCING, pf & mdlib.MDF_PEER_FULL_SYNC,
            pf & mdlib.MDF_PEER_DEVICE_SEEN]
    return '%016X:%016X:%016X:%016X:%s\n' % (
        md['current_uuid'], p.get('bitmap_uuid', 0), hist[0], hist[1],
        ':'.join('1' if b else '0' for b in bits))


def show_gi(md, node_id):
    line = gi_line(md, node_id)
    f = md['flags']
    state_text = ('UpToDate' if f & mdlib.MDF_WAS_UP_TO_DATE else
                  'Outdated') if f & mdlib.MDF_CONSISTENT else 'Inconsistent'
    return ('\n       +--<  Current data generation UUID  >-\n'
            '       |               +--<  Bitmap\'s base data generation '
            'UUID  >-\n'
            '       |               |                 +--<  younger history '
            'UUID  >-\n'
            '       |               |                 |         +-<  older '
            'history  >-\n'
            '       V               V                 V         V\n'
            + line + '\nmeta-data: %s, disk %s\n'
            % ('clean' if f & mdlib.MDF_AL_CLEAN else 'need apply-al',
               state_text))


def dump_md(md, argv, size):
    out = ['# DRBD meta data dump',
           '# %s' % time.strftime('%Y-%m-%d %H:%M:%S %z'),
           '# %s> %s' % (state.current_node(), ' '.join(argv)), '#', '',
           'version "v09";', '', 'max-peers %d;' % md['max_peers'],
           '# md_size_sect %d' % (md['_area'] // 512),
           '# md_offset %d' % (size - mdlib.SB_SIZE),
           '# al_offset %d' % (size - mdlib.SB_SIZE - mdlib.AL_SIZE),
           '# bm_offset %d' % (size - md['_area']), '',
           'node-id %d;' % md['node_id'],
           'current-uuid 0x%016X;' % md['current_uuid'],
           'flags 0x%08X;' % md['flags']]
    for i in range(mdlib.DRBD_NODE_ID_MAX):
        p = md['peers'].get(str(i), {})
        out += ['peer[%d] {' % i,
                '    bitmap-index %d;' % p.get('bitmap_index', -1),
                '    bitmap-uuid 0x%016X;' % p.get('bitmap_uuid', 0),
                '    bitmap-dagtag 0x%016X;' % 0,
                '    flags 0x%08X;' % p.get('flags', 0), '}']
    hist = (md['history'] + [0] * mdlib.HISTORY_UUIDS)[:mdlib.HISTORY_UUIDS]
    line = 'history-uuids {'
    for i, h in enumerate(hist):
        line += ('\n        ' if i % 4 == 0 else ' ') + '0x%016X;' % h
    out += [line, '}', '# al-extents 1237;',
            'la-size-sect %d;' % (md['la_size'] // 512),
            'bm-byte-per-bit 4096;',
            'device-uuid 0x%016X;' % md['device_uuid'],
            'la-peer-max-bio-size 0;', 'al-stripes 1;',
            'al-stripe-size-4k 8;']
    for i in range(md['max_peers']):
        owner = [k for k, p in md['peers'].items()
                 if p.get('bitmap_index') == i]
        ranges = md['peers'][owner[0]].get('ranges', []) if owner else []
        oos = (md['la_size'] if ranges == mdlib.FULL
               else sum(e - s for s, e in ranges))
        out += ['bitmap[%d] {' % i,
                '   # stand-in: %d KiB out of sync' % (oos // 1024), '}']
    out.append('# bits-set 0;')
    return ''.join(line + '\n' for line in out)


def confirmed(text, force):
    sys.stderr.write('\n%s\n' % text)
    if force:
        sys.stderr.write('*** confirmation forced via --force option ***\n')
        return True
    sys.stderr.write("[need to type 'yes' to confirm] ")
    answer = sys.stdin.readline()
    sys.stderr.write('\n')
    return answer.strip() == 'yes'


def parse(argv):
    opts = {'force': False, 'node_id': None}
    pos = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok in ('--force', '-f'):
            opts['force'] = True
        elif tok in ('-v', '--verbose', '--ignore-sanity-checks',
                     '--dry-run'):
            opts[tok.lstrip('-')] = True
        elif tok.startswith('--node-id') or tok == '-i':
            if '=' in tok:
                value = tok.split('=', 1)[1]
            else:
                value = argv[i]
                i += 1
            opts['node_id'] = int(value)
            if not 0 <= opts['node_id'] <= 31:
                raise StandinError('node-id out of range (0...31)', 10)
        elif tok.startswith('--') and tok[2:].split('=')[0] in (
                'peer-max-bio-size', 'al-stripes', 'al-stripe-size-kB'):
            if '=' not in tok:
                i += 1
        elif tok.startswith('-') and len(tok) > 1 and not tok[1:].isdigit():
            raise StandinError("drbdmeta: unrecognized option '%s'" % tok,
                               20)
        else:
            pos.append(tok)
    return opts, pos


def run(argv, root=None, node=None):
    """Run one drbdmeta command; returns (rc, stdout, stderr)."""
    try:
        opts, pos = parse(argv)
    except StandinError as e:
        return e.rc, '', e.message + '\n'
    if len(pos) < 5:
        return 20, '', ('\nUSAGE: drbdmeta [--force] DEVICE FORMAT [FORMAT '
                        'ARGS...] COMMAND [CMD ARGS...]\n')
    device, fmt, disk, index, cmd = pos[:5]
    args = pos[5:]
    if fmt != 'v09':
        return 20, '', ("stand-in drbdmeta only knows v09 meta data, not "
                        "'%s'\n" % fmt)
    if index not in ('internal', 'flex-internal', '-1'):
        return 20, '', 'stand-in drbdmeta only does internal meta data\n'
    if cmd not in COMMANDS:
        return 20, '', "Unknown command '%s'.\n" % cmd
    needs_id, modifies = COMMANDS[cmd]
    if opts['node_id'] is not None and not needs_id:
        return 10, '', ('The %s command does not accept the --node-id '
                        'option\n' % cmd)
    if needs_id and opts['node_id'] is None:
        return 10, '', 'The %s command requires the --node-id option\n' % cmd
    try:
        minor = int(device[len('/dev/drbd'):] if device.startswith(
            '/dev/drbd') else device.replace('minor-', ''))
    except ValueError:
        return 20, '', ("Cannot determine minor device number of drbd "
                        "device '%s'" % device)
    node = node or state.current_node()
    err = []
    with state.locked(root) as sess:
        sess.node(node)
        if not sess.running(node):
            return 20, '', 'stand-in: node %s is down\n' % node
        kernel.evaluate(sess)
        found = kernel.find_minor(sess, node, minor)
        attached = bool(found and found[3]['disk'])
        if attached and modifies:
            return 20, '', "Device '%s' is configured!\n" % device
        path = kernel.disk_to_file(sess, node, disk)
        if path is None:
            return 20, '', ('open(%s) failed: No such file or directory\n'
                            % disk)
        rc, out, e = _command(cmd, args, opts, path, argv)
        err.append(e)
    if attached:
        err.append('# Output might be stale, since minor %d is attached\n'
                   % minor)
    return rc, out, ''.join(err)


def _command(cmd, args, opts, path, argv):
    md = mdlib.read_md(path)
    size = mdlib.file_size(path)
    force = opts['force']
    if cmd == 'create-md':
        if not args:
            return 20, '', 'create-md: max_peers argument missing\n'
        max_peers = int(args[0])
        if not 1 <= max_peers <= 31:
            return 10, '', 'MAX_PEERS argument not in allowed range 1 .. 31.\n'
        if mdlib.md_size(size, max_peers) + mdlib.SB_SIZE > size:
            return 10, '', 'Device too small for meta data\n'
        if md is not None and not confirmed(
                'You want me to create a v09 style flexible-size internal '
                'meta data block.\nThere appears to be a v09 flexible-size '
                'internal meta data block\nalready in place on %s at byte '
                'offset %d\n\nDo you really want to overwrite the existing '
                'meta-data?' % (argv[argv.index('v09') + 1],
                                size - mdlib.SB_SIZE), force):
            return 20, 'Operation canceled.\n', ''
        new = mdlib.new_md(max_peers)
        if md is not None:
            new['device_uuid'] = md['device_uuid']
        if md is not None and md['_area'] != mdlib.md_size(size, max_peers):
            wipe_area = md['_area']
        else:
            wipe_area = 0
        mdlib.write_md(path, new)
        if wipe_area:
            import os
            fd = os.open(path, os.O_RDWR)
            try:
                start = size - max(wipe_area, new['_area'])
                mdlib.punch_hole(fd, start, size - new['_area'] - start)
            finally:
                os.close(fd)
        bm_kb = (new['_area'] - mdlib.SB_SIZE - mdlib.AL_SIZE) // 1024
        return 0, ('initializing activity log\ninitializing bitmap (%d KB) '
                   'to all zero\nWriting meta data...\nNew drbd meta data '
                   'block successfully created.\n' % bm_kb), ''
    if cmd == 'wipe-md':
        if md is None:
            return 0, '', ('There appears to be no drbd meta data to wipe '
                           'out?\n')
        if not confirmed('Do you really want to wipe out the DRBD meta data?',
                         force):
            return 1, 'Operation cancelled.\n', ''
        mdlib.wipe_md(path)
        return 0, ('Wiping meta data...\nDRBD meta data block successfully '
                   'wiped out.\n'), ''
    if md is None:
        if cmd == 'check-resize':
            return 255, '', 'no suitable meta data found :(\n'
        if cmd in ('dump-md', 'apply-al', 'dstate'):
            return 255, '', 'No valid meta data found\n'
        # get-gi, show-gi, read-dev-uuid, ...: the real one says nothing
        return 255, '', ''
    if cmd == 'get-gi':
        return 0, gi_line(md, opts['node_id']), ''
    if cmd == 'show-gi':
        text = show_gi(md, opts['node_id'])
        if md['la_size']:
            text += ('last agreed size: %d KiB (%d sectors)\nlast agreed max '
                     'bio size: 0 Byte\n' % (md['la_size'] // 1024,
                                             md['la_size'] // 512))
        else:
            text += 'zero size device -- never seen peer yet?\n'
        return 0, text, ''
    if cmd == 'dump-md':
        if not md['flags'] & mdlib.MDF_AL_CLEAN and not force:
            return 255, '', ('Found meta data is "unclean", please apply-al '
                             'first\n')
        return 0, dump_md(md, ['drbdmeta'] + argv, size), ''
    if cmd == 'apply-al':
        md['flags'] |= mdlib.MDF_AL_CLEAN
        mdlib.write_md(path, md)
        return 0, '', ''
    if cmd == 'read-dev-uuid':
        return 0, '%016X\n' % md['device_uuid'], ''
    if cmd == 'write-dev-uuid':
        if not args:
            return 10, '', 'Required Argument missing\n'
        md['device_uuid'] = int(args[0], 16)
        mdlib.write_md(path, md)
        return 0, '', ''
    if cmd == 'check-resize':
        return 0, '', ''
    if cmd == 'dstate':
        f = md['flags']
        text = ('Consistent' if f & mdlib.MDF_WAS_UP_TO_DATE else
                'Outdated') if f & mdlib.MDF_CONSISTENT else 'Inconsistent'
        return 0, text + '\n', ''
    if cmd == 'outdate':
        if not md['flags'] & mdlib.MDF_CONSISTENT:
            return 5, '', 'Device is inconsistent.\n'
        md['flags'] &= ~mdlib.MDF_WAS_UP_TO_DATE
        mdlib.write_md(path, md)
        return 0, '', ''
    if cmd == 'invalidate':
        md['flags'] &= ~(mdlib.MDF_CONSISTENT | mdlib.MDF_WAS_UP_TO_DATE)
        mdlib.write_md(path, md)
        return 0, '', ''
    if cmd == 'forget-peer':
        md['peers'].pop(str(opts['node_id']), None)
        mdlib.write_md(path, md)
        return 0, '', ''
    if cmd == 'set-gi':
        if not args:
            return 10, '', 'Required Argument missing\n'
        fields = args[0].split(':')
        p = mdlib.peer(md, opts['node_id'])
        if fields and fields[0]:
            md['current_uuid'] = int(fields[0], 16)
        if len(fields) > 1 and fields[1]:
            p['bitmap_uuid'] = int(fields[1], 16)
        hist = list(md['history']) + [0, 0]
        for i in (0, 1):
            if len(fields) > 2 + i and fields[2 + i]:
                hist[i] = int(fields[2 + i], 16)
        md['history'] = [h for h in hist[:2] if h] + md['history'][2:]
        for i, flag in enumerate((mdlib.MDF_CONSISTENT,
                                  mdlib.MDF_WAS_UP_TO_DATE)):
            if len(fields) > 4 + i and fields[4 + i] in ('0', '1'):
                if fields[4 + i] == '1':
                    md['flags'] |= flag
                else:
                    md['flags'] &= ~flag
        mdlib.write_md(path, md)
        return 0, '', ''
    return 20, '', 'not implemented in the stand-in: %s\n' % cmd


def main(argv):
    rc, out, err = run(argv)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
