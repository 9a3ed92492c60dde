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
"""Sample .res texts for the node agent's tests (drbd.conf syntax)."""

from blackstor_cinder import protocol

SECRET = 'Secret_0123456789abcdef'


def res_text(name='r0', minor=1000, port=7000, hosts=None,
             placeholder=True, extra_net='', size=None):
    """A .res text like the controller renders it.

    ``hosts``: [(name, node_id, address, disk or None)]; default: nodea
    diskful on /dev/vg0/<name>, nodeb diskless. ``size``: the device's
    ``disk { size }`` in DRBD's syntax (e.g. '1048576k'), none if None.
    """
    if hosts is None:
        hosts = [('nodea', 0, '10.0.0.1', f'/dev/vg0/{name}'),
                 ('nodeb', 1, '10.0.0.2', None)]
    secret = protocol.SECRET_PLACEHOLDER if placeholder else SECRET
    lines = [f'resource "{name}" {{',
             '    options {', '        quorum majority;',
             '        on-no-quorum io-error;', '        auto-promote yes;',
             '    }',
             '    net {', '        protocol C;',
             '        cram-hmac-alg sha256;',
             f'        shared-secret "{secret}";', extra_net, '    }']
    if size is not None:
        lines += ['    disk {', f'        size {size};', '    }']
    for host, node_id, address, disk in hosts:
        disk_line = f'disk "{disk}";' if disk else 'disk none;'
        lines += [f'    on {host} {{', f'        node-id {node_id};',
                  f'        address ipv4 {address}:{port};',
                  '        volume 0 {', f'            device minor {minor};',
                  f'            {disk_line}',
                  '            meta-disk internal;', '        }', '    }']
    for i, a in enumerate(hosts):
        for b in hosts[i + 1:]:
            if a[3] or b[3]:
                lines += ['    connection {', f'        host {a[0]};',
                          f'        host {b[0]};', '    }']
    lines.append('}')
    return '\n'.join(line for line in lines if line) + '\n'


def spec(minor=1000, port=7000, hosts=None, size=None, **changes):
    """The ``spec`` field of a request, as the controller sends it.

    ``hosts``: [(name, node_id, address, volume group or None)]; default:
    nodea diskful in vg0, nodeb diskless. ``size`` in bytes (none if None).
    """
    if hosts is None:
        hosts = [('nodea', 0, '10.0.0.1', 'vg0'),
                 ('nodeb', 1, '10.0.0.2', None)]
    entries = []
    for host, node_id, address, vg in hosts:
        entry = {'name': host, 'node_id': node_id, 'address': address,
                 'role': 'diskful' if vg else 'diskless'}
        if vg:
            entry['vg'] = vg
        entries.append(entry)
    value = {
        'version': protocol.SPEC_VERSION, 'minor': minor, 'port': port,
        'protocol': 'C', 'quorum': 'majority', 'on_no_quorum': 'io-error',
        'allow_two_primaries': False, 'hosts': entries,
        'connections': [[a[0], b[0]] for i, a in enumerate(hosts)
                        for b in hosts[i + 1:] if a[3] or b[3]]}
    if size is not None:
        value['size'] = size
    value.update(changes)
    return value


def status_entry(name='r0', minor=1000, node_id=0, peers=('nodeb', 'nodec'),
                 port=7000, size_kib=1048576):
    """One ``drbdsetup status --json --statistics`` entry, every field.

    The shape drbd-utils 9.22 prints for DRBD 9.2 (the stand-in's too):
    a diskful, connected, UpToDate replica with its peers.
    """
    def peer_device():
        return {'volume': 0, 'replication-state': 'Established',
                'peer-disk-state': 'UpToDate', 'peer-client': False,
                'resync-suspended': 'no', 'received': 0, 'sent': 0,
                'out-of-sync': 0, 'pending': 0, 'unacked': 0,
                'has-sync-details': False,
                'has-online-verify-details': False,
                'percent-in-sync': 100.0}

    connections = []
    for i, peer in enumerate(peers):
        pid = i + 1 if i >= node_id else i
        connections.append({
            'peer-node-id': pid, 'name': peer,
            'connection-state': 'Connected', 'congested': False,
            'peer-role': 'Secondary', 'tls': False, 'ap-in-flight': 0,
            'rs-in-flight': 0,
            'paths': [{'this_host': {'address': '10.0.0.1', 'port': port,
                                     'family': 'ipv4'},
                       'remote_host': {'address': f'10.0.0.{pid + 1}',
                                       'port': port, 'family': 'ipv4'},
                       'established': True}],
            'peer_devices': [peer_device()]})
    return {
        'name': name, 'node-id': node_id, 'role': 'Secondary',
        'suspended': False, 'suspended-user': False,
        'suspended-no-data': False, 'suspended-fencing': False,
        'suspended-quorum': False, 'force-io-failures': False,
        'write-ordering': 'flush',
        'devices': [{'volume': 0, 'minor': minor, 'disk-state': 'UpToDate',
                     'client': False, 'quorum': True, 'open': False,
                     'size': size_kib, 'read': 0, 'written': 0,
                     'al-writes': 0, 'bm-writes': 0, 'upper-pending': 0,
                     'lower-pending': 0}],
        'connections': connections}
