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
"""Render a DRBD 9 resource file (.res) from a :class:`model.ResourceSpec`.

Plain data in, text out. The text never holds the shared secret, only
:data:`protocol.SECRET_PLACEHOLDER`: the agent puts the secret in when it
writes the file on a node.

Every host gets an ``on`` section; ``connection`` blocks are written
explicitly for every pair of hosts of which at least one is diskful, so two
diskless clients never connect to each other. Hosts are ordered by node-id
and options by name, so the same spec always gives the same text (the agent
skips writing a file that has not changed).

The volume's size goes into the resource's ``disk`` section (``size
1048576k;``): drbdadm hands it to ``drbdsetup attach ... --size=`` and
``drbdsetup resize ... --size=``, so the device is exactly the volume and
not the whole LV below the metadata. Diskless hosts ignore it (drbdadm
9.22's ``adjust`` issues no resize on a diskless volume).

The spec is validated first: DRBD's parser accepts things that are wrong for
us (node-id 32), and option names and values come from cinder.conf but end
up in a configuration file, so they are confined to a safe alphabet.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from typing import Mapping

from blackstor_cinder.cluster import model
from blackstor_cinder import protocol

QUORUM_POLICIES = ('off', 'majority', 'all')
ON_NO_QUORUM_POLICIES = ('io-error', 'suspend-io')

# DRBD option names are lower-case words joined by '-'.
OPTION_NAME_RE = re.compile(r'^[a-z][a-z0-9]*(-[a-z0-9]+)*$')
# Values are written unquoted: numbers with a unit, keywords, algorithm
# names. drbdadm's lexer takes these characters in a bare word; nothing
# here can end a statement or open a block or a string.
OPTION_VALUE_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$')
# A backing device: an absolute path below /dev, conservative alphabet,
# no '.' or '..' components. Written quoted (LVM names may contain '+',
# which drbdadm's lexer refuses in a bare word).
DISK_RE = re.compile(r'^/dev(/[A-Za-z0-9_+.-]+)+$')

#: net options the renderer writes itself; config may not override them.
RESERVED_NET_OPTIONS = frozenset(
    ('protocol', 'cram-hmac-alg', 'shared-secret', 'allow-two-primaries'))
#: disk options the renderer writes itself (``size`` is the volume's).
RESERVED_DISK_OPTIONS = frozenset(('size',))

SECTOR = 512
#: DRBD's largest device (DRBD_DISK_SIZE_MAX: 2**41 sectors, 1 PiB).
SIZE_MAX = (2 << 40) * SECTOR

_INDENT = '    '
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def render(spec: model.ResourceSpec) -> str:
    """Return the .res text of ``spec``; ValueError if the spec is wrong."""
    validate(spec)
    hosts = sorted(spec.hosts, key=lambda h: h.node_id)
    lines = [
        '# Written by blackstor-cinder; changes are overwritten.',
        f'resource "{spec.name}" {{',
    ]
    lines += _section(1, 'options', _options(spec))
    lines += _section(1, 'net', _net(spec))
    disk = dict(spec.disk_options)
    if spec.size is not None:
        disk['size'] = size_option(spec.size)
    if disk:
        lines += _section(1, 'disk', _sorted_options(disk))
    for host in hosts:
        lines += _on_section(spec, host)
    for a, b in itertools.combinations(hosts, 2):
        if a.diskful or b.diskful:
            lines += _section(1, 'connection',
                              [f'host {a.name};', f'host {b.name};'])
    lines.append('}')
    return '\n'.join(lines) + '\n'


def validate_configured_options(net_options: Mapping,
                                disk_options: Mapping) -> None:
    """Refuse configured net/disk options the .res cannot carry.

    So a bad ``blackstor_net_options``/``blackstor_disk_options`` stops the
    backend at start-up, not at the first volume.
    """
    _validate_options('blackstor_net_options', net_options,
                      RESERVED_NET_OPTIONS)
    _validate_options('blackstor_disk_options', disk_options,
                      RESERVED_DISK_OPTIONS)


def validate(spec: model.ResourceSpec) -> None:
    """Raise ValueError naming the first problem found in ``spec``."""
    _check_pattern(spec.name, protocol.NAME_RE, 'name', 'resource name')
    _check(spec.minor, protocol.check_minor, 'minor')
    _check(spec.port, protocol.check_port, 'port')
    _check(spec.max_peers, protocol.check_max_peers, 'max_peers')
    _validate_quorum(spec)
    if not isinstance(spec.allow_two_primaries, bool):
        raise ValueError('allow_two_primaries: must be a boolean')
    _validate_options('net_options', spec.net_options, RESERVED_NET_OPTIONS)
    _validate_options('disk_options', spec.disk_options,
                      RESERVED_DISK_OPTIONS)
    _validate_size(spec.size)
    _validate_hosts(spec)


def size_option(size: int) -> str:
    """DRBD's ``size`` value for ``size`` bytes: KiB, else sectors.

    drbdadm passes it verbatim to ``drbdsetup attach``/``resize --size=``,
    whose default unit is the sector; ``k`` and ``s`` are units both
    accept (drbd-utils' new_strtoll).
    """
    _validate_size(size)
    if size % 1024 == 0:
        return f'{size // 1024}k'
    return f'{size // SECTOR}s'


def _check(value, checker, field: str):
    try:
        return checker(field, value)
    except protocol.ProtocolError as e:
        raise ValueError(str(e)) from None


def _check_pattern(value, regex: re.Pattern, field: str, what: str) -> None:
    # fullmatch: the protocol patterns end in '$', which also matches
    # before a trailing newline.
    if not isinstance(value, str) or not regex.fullmatch(value):
        raise ValueError(f'{field}: {value!r} is not a valid {what}')


def _validate_quorum(spec: model.ResourceSpec) -> None:
    quorum = spec.quorum
    if quorum not in QUORUM_POLICIES:
        # DRBD also takes a fixed number of votes.
        if not (isinstance(quorum, str) and quorum.isdigit()
                and quorum.isascii()
                and 1 <= int(quorum) <= protocol.NODE_ID_MAX + 1):
            raise ValueError(
                f'quorum: {quorum!r} is not one of '
                f'{", ".join(QUORUM_POLICIES)} or a number 1..'
                f'{protocol.NODE_ID_MAX + 1}')
    if spec.on_no_quorum not in ON_NO_QUORUM_POLICIES:
        raise ValueError(
            f'on_no_quorum: {spec.on_no_quorum!r} is not one of '
            f'{", ".join(ON_NO_QUORUM_POLICIES)}')


def _validate_options(field: str, options: Mapping,
                      reserved: frozenset) -> None:
    if not isinstance(options, Mapping):
        raise ValueError(f'{field}: must be a mapping of option to value')
    for name, value in options.items():
        if not isinstance(name, str) or not OPTION_NAME_RE.fullmatch(name):
            raise ValueError(f'{field}: {name!r} is not a DRBD option name')
        if name in reserved:
            raise ValueError(f'{field}: {name} is set by the driver and '
                             'cannot be configured')
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(f'{field}: {name}: {value!r} is not a string '
                             'or a number')
        if not OPTION_VALUE_RE.fullmatch(str(value)):
            raise ValueError(
                f'{field}: {name}: {value!r} is not a safe option value '
                '(letters, digits, ".", "_" and "-" only)')


def _validate_size(size) -> None:
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int) or not (
            0 < size <= SIZE_MAX) or size % SECTOR:
        raise ValueError(f'size: {size!r} is not a device size DRBD takes '
                         f'(a multiple of {SECTOR} bytes, at most '
                         f'{SIZE_MAX})')


def _validate_hosts(spec: model.ResourceSpec) -> None:
    hosts = spec.hosts
    if not hosts:
        raise ValueError('hosts: a resource needs at least one host')
    if len(hosts) > spec.max_peers + 1:
        raise ValueError(
            f'hosts: {len(hosts)} hosts but max_peers {spec.max_peers} '
            f'allows at most {spec.max_peers + 1}')
    names: dict[str, str] = {}
    node_ids: dict[int, str] = {}
    addresses: dict[_IPAddress, str] = {}
    for host in hosts:
        if not isinstance(host, model.ResourceHost):
            raise ValueError(f'hosts: {host!r} is not a ResourceHost')
        _check_pattern(host.name, protocol.HOST_RE, 'hosts.name',
                       'host name')
        # Host names are case-insensitive; DRBD compares them exactly.
        key = host.name.lower()
        if key in names:
            raise ValueError(f'hosts.name: {host.name} appears twice')
        names[key] = host.name
        where = f'hosts[{host.name}]'
        _check(host.node_id, protocol.check_node_id, f'{where}.node_id')
        if host.node_id in node_ids:
            raise ValueError(
                f'{where}.node_id: node-id {host.node_id} is also used by '
                f'{node_ids[host.node_id]}')
        node_ids[host.node_id] = host.name
        address = _address(host, where)
        if address in addresses:
            raise ValueError(
                f'{where}.address: {host.address} is also used by '
                f'{addresses[address]}')
        addresses[address] = host.name
        if host.diskful:
            if not (isinstance(host.disk, str) and DISK_RE.fullmatch(host.disk)
                    and not {'.', '..'} & set(host.disk.split('/'))):
                raise ValueError(
                    f'{where}.disk: {host.disk!r} is not a device path '
                    'below /dev')
        elif host.disk is not None:
            raise ValueError(f'{where}.disk: a diskless host has no disk')
    if not any(h.diskful for h in hosts):
        raise ValueError('hosts: a resource needs at least one diskful host')
    for a, b in itertools.combinations(hosts, 2):
        if ((a.diskful or b.diskful)
                and _address(a, a.name).version
                != _address(b, b.name).version):
            raise ValueError(
                f'hosts: {a.name} ({a.address}) and {b.name} ({b.address}) '
                'must connect but are not of the same IP version')


def _address(host: model.ResourceHost, where: str) -> _IPAddress:
    value = host.address
    if isinstance(value, str) and '%' not in value:
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            pass
    raise ValueError(f'{where}.address: {value!r} is not an IP address')


def _section(depth: int, head: str, body: list[str]) -> list[str]:
    pad = _INDENT * depth
    return ([f'{pad}{head} {{']
            + [f'{pad}{_INDENT}{line}' for line in body]
            + [f'{pad}}}'])


def _sorted_options(options: Mapping) -> list[str]:
    return [f'{name} {options[name]};' for name in sorted(options)]


def _options(spec: model.ResourceSpec) -> list[str]:
    body = []
    if spec.quorum != 'off':
        body += [f'quorum {spec.quorum};',
                 f'on-no-quorum {spec.on_no_quorum};']
    body.append('auto-promote yes;')
    return body


def _net(spec: model.ResourceSpec) -> list[str]:
    body = ['protocol C;',
            'cram-hmac-alg sha256;',
            f'shared-secret "{protocol.SECRET_PLACEHOLDER}";']
    if spec.allow_two_primaries:
        body.append('allow-two-primaries yes;')
    return body + _sorted_options(spec.net_options)


def _on_section(spec: model.ResourceSpec,
                host: model.ResourceHost) -> list[str]:
    address = _address(host, host.name)
    if address.version == 6:
        where = f'ipv6 [{address}]:{spec.port}'
    else:
        where = f'ipv4 {address}:{spec.port}'
    volume = [f'device minor {spec.minor};',
              f'disk "{host.disk}";' if host.diskful else 'disk none;',
              'meta-disk internal;']
    body = [f'node-id {host.node_id};', f'address {where};']
    body += _section(0, f'volume {protocol.VOLUME_NUMBER}', volume)
    return _section(1, f'on {host.name}', body)
