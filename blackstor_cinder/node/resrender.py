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
"""Render a DRBD 9 resource file (.res) from the protocol's ``spec``.

The one renderer: the agent writes every .res with it, from a request's
``spec`` (checked by :func:`protocol.check_spec` first), so what a file can
hold is what the spec can express; no text of a request reaches it. The
controller never renders (it sends the fields); tests render with it too.

The text never holds the shared secret, only
:data:`protocol.SECRET_PLACEHOLDER`: :class:`resfiles.ResFileStore` puts
the secret in when it writes the file (mode 0600).

Every host gets an ``on`` section with volume :data:`protocol.VOLUME_NUMBER`
only and internal metadata; a diskful host's disk is
``<lv_root>/<vg>/<resource>``. Hosts are ordered by node-id, connections by
their hosts' node-ids and options by name, so the same spec always gives
the same text (the agent skips writing a file that has not changed).

The volume's size goes into the resource's ``disk`` section (``size
1048576k;``): drbdadm hands it to ``drbdsetup attach ... --size=`` and
``drbdsetup resize ... --size=``, so the device is exactly the volume and
not the whole LV below the metadata. Diskless hosts ignore it.

A tiebreaker (a diskless host that is not a client: the third vote of a
two-replica volume) is an ordinary intentional-diskless peer to DRBD,
which has no word for the role: the role is written as a comment line
(``# blackstor-tiebreaker <host>``) that drbdadm ignores and
:func:`tiebreakers` reads back, so it lives on the nodes with the rest.
The volume's zone policy (the spec's ``zones``) is kept the same way
(``# blackstor-zones spread``, read back by :func:`zones`): a heal or an
evacuation places new replicas by it without Cinder's database.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from blackstor_cinder import protocol

#: auto-promote-timeout, in tenths of a second (DRBD allows 0..600).
AUTO_PROMOTE_TIMEOUT = 100

_INDENT = '    '
_TIEBREAKER = '# blackstor-tiebreaker '
_TIEBREAKER_RE = re.compile(r'^# blackstor-tiebreaker (\S+)$', re.MULTILINE)
_ZONES = '# blackstor-zones '
_ZONES_RE = re.compile(r'^# blackstor-zones (\S+)$', re.MULTILINE)


def render(resource: str, spec: dict, lv_root: str = '/dev') -> str:
    """The .res text of ``spec``; ProtocolError if the spec is wrong."""
    protocol.check_name('resource', resource)
    protocol.check_spec('spec', spec)
    hosts = sorted(spec['hosts'], key=lambda h: h['node_id'])
    lines = [
        '# Written by blackstor-cinder; changes are overwritten.',
    ]
    lines += [_TIEBREAKER + h['name'] for h in hosts if h.get('tiebreaker')]
    if spec.get('zones') is not None:
        lines.append(_ZONES + spec['zones'])
    lines.append(f'resource "{resource}" {{')
    lines += _section(1, 'options', _options(spec))
    lines += _section(1, 'net', _net(spec))
    disk = dict(spec.get('disk') or {})
    if spec.get('size') is not None:
        disk['size'] = size_option(spec['size'])
    if disk:
        lines += _section(1, 'disk', _sorted_options(disk))
    for host in hosts:
        lines += _on_section(resource, spec, host, lv_root)
    node_id = {h['name'].lower(): h['node_id'] for h in hosts}
    by_id = {h['node_id']: h['name'] for h in hosts}
    pairs = sorted(tuple(sorted((node_id[a.lower()], node_id[b.lower()])))
                   for a, b in spec['connections'])
    for a, b in pairs:
        lines += _section(1, 'connection',
                          [f'host {by_id[a]};', f'host {by_id[b]};'])
    lines.append('}')
    return '\n'.join(lines) + '\n'


def tiebreakers(text: str) -> set[str]:
    """The hosts :func:`render` marked as tiebreakers in ``text``."""
    return set(_TIEBREAKER_RE.findall(text))


def zones(text: str) -> str | None:
    """The zone policy :func:`render` recorded in ``text``, or None.

    None when there is none (a .res written before it was recorded) and
    when the line is not exactly one of ``protocol.ZONE_POLICIES`` (a
    file edited by hand is not trusted).
    """
    found = _ZONES_RE.findall(text)
    if len(found) != 1 or found[0] not in protocol.ZONE_POLICIES:
        return None
    return found[0]


def disk_path(resource: str, host: dict, lv_root: str = '/dev'
              ) -> str | None:
    """The backing disk :func:`render` gives ``host``; None if diskless."""
    if host['role'] != protocol.ROLE_DISKFUL:
        return None
    return f'{lv_root.rstrip("/")}/{host["vg"]}/{resource}'


def size_option(size: int) -> str:
    """DRBD's ``size`` value for ``size`` bytes: KiB, else sectors.

    drbdadm passes it verbatim to ``drbdsetup attach``/``resize --size=``,
    whose default unit is the sector; ``k`` and ``s`` are units both
    accept (drbd-utils' new_strtoll).
    """
    protocol.check_device_size('size', size)
    if size % 1024 == 0:
        return f'{size // 1024}k'
    return f'{size // protocol.SECTOR}s'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    return str(value)


def _section(depth: int, head: str, body: list[str]) -> list[str]:
    pad = _INDENT * depth
    return ([f'{pad}{head} {{']
            + [f'{pad}{_INDENT}{line}' for line in body]
            + [f'{pad}}}'])


def _sorted_options(options: dict) -> list[str]:
    return [f'{name} {_value(options[name])};' for name in sorted(options)]


def _options(spec: dict) -> list[str]:
    body = []
    if spec['quorum'] != 'off':
        body += [f'quorum {spec["quorum"]};',
                 f'on-no-quorum {spec["on_no_quorum"]};']
    # DRBD's 2 s default is short for a promote that must first wait out
    # a peer's connection handshake (a busy or slow host): a write open
    # then fails with EROFS.
    body += ['auto-promote yes;',
             f'auto-promote-timeout {AUTO_PROMOTE_TIMEOUT};']
    return body


def _net(spec: dict) -> list[str]:
    body = [f'protocol {spec["protocol"]};',
            'cram-hmac-alg sha256;',
            f'shared-secret "{protocol.SECRET_PLACEHOLDER}";']
    if spec['allow_two_primaries']:
        body.append('allow-two-primaries yes;')
    return body + _sorted_options(spec.get('net') or {})


def _on_section(resource: str, spec: dict, host: dict,
                lv_root: str) -> list[str]:
    address = ipaddress.ip_address(host['address'])
    if address.version == 6:
        where = f'ipv6 [{address}]:{spec["port"]}'
    else:
        where = f'ipv4 {address}:{spec["port"]}'
    disk = disk_path(resource, host, lv_root)
    volume = [f'device minor {spec["minor"]};',
              f'disk "{disk}";' if disk else 'disk none;',
              'meta-disk internal;']
    body = [f'node-id {host["node_id"]};', f'address {where};']
    body += _section(0, f'volume {protocol.VOLUME_NUMBER}', volume)
    return _section(1, f'on {host["name"]}', body)
