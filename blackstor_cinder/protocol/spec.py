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
"""The resource as fields (``spec``): its schema and DRBD options.

A resource travels as fields, ``spec`` (:func:`check_spec`, schema
:data:`SPEC_VERSION`), never as .res text: the agent renders the .res itself
(``blackstor_cinder.node.resrender``), puts ``secret`` in and writes it with
mode 0600, so the secret exists in that file only. A field outside the
schema is refused (invalid-input) with ``field`` naming it, e.g.
``spec.handlers`` or ``spec.net.no-such-option``; ``res_text`` (version 1)
is refused by name. ``spec``::

    {version*: 1, minor*, port*, size (bytes, whole sectors; none: the
     device is all the LV below the metadata), protocol* (A | B | C),
     quorum* (off | majority | all | 1..32), on_no_quorum* (io-error |
     suspend-io), allow_two_primaries* (bool),
     hosts* [{name*, node_id* (0..31), address* (IP literal),
              role* (diskful | diskless), vg (diskful only: the disk is
              /dev/<vg>/<resource>), tiebreaker (bool, diskless only:
              not a client but the third vote of two replicas)}]
              (1..32, names, node-ids and
              addresses unique, one diskful at least),
     connections* [[host, host]] (pairs of hosts, one diskful at least,
              same IP version),
     net {option: value} (NET_OPTIONS), disk {option: value}
     (DISK_OPTIONS), zones (ZONE_POLICIES: the zone policy the volume's
     replicas are placed by, kept in the .res for heal and evacuate)}

Option values are typed (JSON integers in DRBD's unit, booleans, names
from a list) and range-checked with DRBD's limits (drbd_limits.h). What
cannot be said: handlers, startup, proxy, include, a second volume, an
external meta-disk, a second resource, another disk than the resource's
own LV.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Mapping

from blackstor_cinder.protocol.fields import (
    check_address,
    _check_bool,
    _check_choice,
    check_device_size,
    _check_int,
    check_minor,
    check_port,
    _check_re,
    HOST_RE,
    LVM_NAME_RE,
    NODE_ID_MAX,
    NODE_ID_MIN,
    ProtocolError,
    SECTOR,
)

#: Version of the ``spec`` schema (its ``version`` field).
SPEC_VERSION = 1
#: Token in a rendered .res that the agent replaces with the secret.
SECRET_PLACEHOLDER = '@BLACKSTOR_SHARED_SECRET@'
#: DRBD volume number used for every resource (one volume per resource).
VOLUME_NUMBER = 0

# -- the resource as fields (``spec``) ------------------------------------
#
# What a .res may say is exactly what these fields can express: one
# resource, one volume (VOLUME_NUMBER, internal metadata), its hosts and
# connections, and the net/disk options of NET_OPTIONS/DISK_OPTIONS with
# typed values in DRBD's ranges (drbd-headers' linux/drbd_limits.h). No
# handlers, startup, proxy, include, second volume or external meta-disk:
# the agent renders the text itself, so none can be written.

#: Hosts of one resource: one per node-id.
MAX_HOSTS = NODE_ID_MAX - NODE_ID_MIN + 1
REPLICATION_PROTOCOLS = ('A', 'B', 'C')
QUORUM_POLICIES = ('off', 'majority', 'all')
ON_NO_QUORUM_POLICIES = ('io-error', 'suspend-io')
ROLE_DISKFUL, ROLE_DISKLESS = 'diskful', 'diskless'
ROLES = (ROLE_DISKFUL, ROLE_DISKLESS)
#: How a volume's replicas use the nodes' zones (the type's
#: ``blackstor:zones``): ``any`` node, or ``spread`` (no two replicas in
#: one zone). The agent keeps it in the .res (a comment line, as the
#: tiebreaker's role), so a heal run without Cinder places by it.
ZONE_ANY, ZONE_SPREAD = 'any', 'spread'
ZONE_POLICIES = (ZONE_ANY, ZONE_SPREAD)
# A kernel crypto algorithm name (crc32c, sha256, ...): a bare word.
ALGORITHM_RE = re.compile(r'^[a-z0-9][a-z0-9-]{0,62}\Z')
# Numbers in cinder.conf may carry DRBD's unit suffixes.
_NUMBER_RE = re.compile(r'^([0-9]{1,20})([kKmMgG]?)\Z')
_SUFFIX = {'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}
#: What a bare number means, per DRBD's *_SCALE: bytes, KiB, sectors.
_UNIT = {'1': 1, 'k': 1 << 10, 's': SECTOR}


class Option:
    """One net or disk option: its type and, for numbers, DRBD's range.

    ``kind`` is ``int`` (a JSON integer in ``unit``: '1' for a plain
    number or bytes, 'k' KiB, 's' sectors; ``suffixes``: cinder.conf may
    say 750M), ``bool`` (rendered yes/no), ``choice`` or ``algorithm``.
    """

    def __init__(self, kind: str, low: int = 0, high: int = 0,
                 unit: str = '1', suffixes: bool = False,
                 choices: tuple[str, ...] = ()) -> None:
        self.kind, self.low, self.high = kind, low, high
        self.unit, self.suffixes, self.choices = unit, suffixes, choices

    def check(self, field: str, value: Any) -> Any:
        if self.kind == 'int':
            return _check_int(self.low, self.high)(field, value)
        if self.kind == 'bool':
            return _check_bool(field, value)
        if self.kind == 'choice':
            return _check_choice(self.choices)(field, value)
        return _check_re(ALGORITHM_RE, 'algorithm name')(field, value)

    def parse(self, field: str, text: Any) -> Any:
        """The typed value of ``text`` as written in cinder.conf."""
        if not isinstance(text, str):
            return self.check(field, text)
        if self.kind == 'bool':
            if text.lower() not in ('yes', 'no', 'true', 'false'):
                raise ProtocolError(f'{field}: {text!r} is not yes or no',
                                    field)
            return text.lower() in ('yes', 'true')
        if self.kind != 'int':
            return self.check(field, text)
        match = _NUMBER_RE.fullmatch(text)
        if not match or (match.group(2) and not self.suffixes):
            units = ' (k, M or G allowed)' if self.suffixes else ''
            raise ProtocolError(f'{field}: {text!r} is not a number{units}',
                                field)
        number, suffix = int(match.group(1)), match.group(2).lower()
        if not suffix:
            # A bare number is in the option's unit, as drbdadm reads it.
            return self.check(field, number)
        size, unit = number * _SUFFIX[suffix], _UNIT[self.unit]
        if size % unit:
            raise ProtocolError(f'{field}: {text!r} is not a whole number '
                                f'of {unit} bytes', field)
        return self.check(field, size // unit)


def _int(low: int, high: int, unit: str = '1',
         suffixes: bool = False) -> Option:
    return Option('int', low, high, unit, suffixes)


_BOOL = Option('bool')
_ALGORITHM = Option('algorithm')

#: Net options a spec may set (the renderer writes protocol, cram-hmac-alg,
#: shared-secret and allow-two-primaries itself). Timeouts in tenths of a
#: second, intervals in seconds, as DRBD counts them.
NET_OPTIONS: dict[str, Option] = {
    'verify-alg': _ALGORITHM,
    'csums-alg': _ALGORITHM,
    'csums-after-crash-only': _BOOL,
    'max-buffers': _int(32, 131072),
    'max-epoch-size': _int(1, 20000),
    # 10 MiB: drbd-utils 9.22's limit (drbd-headers raised it to 128 MiB
    # in 2024, commit 40911d1; the agent's drbdadm must take the file).
    'sndbuf-size': _int(0, 10 << 20, suffixes=True),
    'rcvbuf-size': _int(0, 10 << 20, suffixes=True),
    'ko-count': _int(0, 200),
    'timeout': _int(1, 600),
    'connect-int': _int(1, 120),
    'ping-int': _int(1, 120),
    'ping-timeout': _int(1, 300),
    'tcp-cork': _BOOL,
}
#: Disk options a spec may set (``size`` is the spec's own field),
#: resync controller ones included (DRBD 9 takes them in ``disk``).
DISK_OPTIONS: dict[str, Option] = {
    'al-extents': _int(67, 0xfffe),
    'al-updates': _BOOL,
    'disk-barrier': _BOOL,
    'disk-flushes': _BOOL,
    'disk-drain': _BOOL,
    'md-flushes': _BOOL,
    'disk-timeout': _int(0, 6000),
    'discard-zeroes-if-aligned': _BOOL,
    'rs-discard-granularity': _int(0, 1 << 20, suffixes=True),
    # call-local-io-error needs a handler, which a spec cannot have.
    'on-io-error': Option('choice', choices=('pass_on', 'detach')),
    'resync-rate': _int(1, 8 << 20, 'k', suffixes=True),
    'c-plan-ahead': _int(0, 300),
    'c-delay-target': _int(1, 100),
    'c-fill-target': _int(0, 1 << 20, 's', suffixes=True),
    'c-max-rate': _int(0, 4 << 20, 'k', suffixes=True),
    'c-min-rate': _int(0, 4 << 20, 'k', suffixes=True),
}
OPTION_SECTIONS = {'net': NET_OPTIONS, 'disk': DISK_OPTIONS}


def parse_options(field: str, section: str, options: Any) -> dict:
    """Typed values of net or disk options as cinder.conf gives them.

    ``{'c-max-rate': '750M'}`` -> ``{'c-max-rate': 768000}``;
    ProtocolError naming the option when it is not in the closed list or
    its value does not fit.
    """
    if not isinstance(options, Mapping):
        raise ProtocolError(f'{field}: must be a mapping of option to value',
                            field)
    known = OPTION_SECTIONS[section]
    typed = {}
    for name, value in options.items():
        where = f'{field}.{name}'
        if name not in known:
            raise ProtocolError(
                f'{where}: not a {section} option BlackStor sets; known: '
                f'{", ".join(sorted(known))}', where)
        typed[name] = known[name].parse(where, value)
    return typed


def _check_fields(field: str, value: Any, required: dict,
                  optional: dict) -> dict:
    """A JSON object with exactly these keys; each checked."""
    if not isinstance(value, dict):
        raise ProtocolError(f'{field}: must be an object', field)
    for key, check in required.items():
        if key not in value:
            raise ProtocolError(f'{field}.{key}: missing', f'{field}.{key}')
        check(f'{field}.{key}', value[key])
    for key, item in value.items():
        if key in required:
            continue
        if key not in optional:
            shown = key if isinstance(key, str) else repr(key)
            raise ProtocolError(f'{field}.{shown}: not a field of {field}',
                                f'{field}.{shown}')
        optional[key](f'{field}.{key}', item)
    return value


def _check_options(section: str) -> Callable[[str, Any], dict]:
    known = OPTION_SECTIONS[section]

    def check(field: str, value: Any) -> dict:
        if not isinstance(value, dict):
            raise ProtocolError(f'{field}: must be an object', field)
        for name, item in value.items():
            if name not in known:
                shown = name if isinstance(name, str) else repr(name)
                raise ProtocolError(
                    f'{field}.{shown}: not a {section} option BlackStor '
                    f'sets; known: {", ".join(sorted(known))}',
                    f'{field}.{shown}')
            known[name].check(f'{field}.{name}', item)
        return value
    return check


def _check_quorum(field: str, value: Any) -> Any:
    # DRBD also takes a number of votes.
    if isinstance(value, str):
        return _check_choice(QUORUM_POLICIES)(field, value)
    return _check_int(1, MAX_HOSTS)(field, value)


def _check_ip_literal(field: str, value: Any) -> str:
    # A scope (fe80::1%eth0) has no place in a .res address.
    if not isinstance(value, str) or '%' in value:
        raise ProtocolError(f'{field}: {value!r} is not an IP address',
                            field)
    return check_address(field, value)


def _check_host(field: str, value: Any) -> dict:
    _check_fields(field, value,
                  {'name': _check_re(HOST_RE, 'host name'),
                   'node_id': _check_int(NODE_ID_MIN, NODE_ID_MAX),
                   'address': _check_ip_literal,
                   'role': _check_choice(ROLES)},
                  {'vg': _check_re(LVM_NAME_RE, 'volume group name'),
                   'tiebreaker': _check_bool})
    if (value['role'] == ROLE_DISKFUL) != ('vg' in value):
        raise ProtocolError(
            f'{field}.vg: a diskful host names its volume group, a '
            'diskless one has none', f'{field}.vg')
    if value.get('tiebreaker') and value['role'] == ROLE_DISKFUL:
        raise ProtocolError(f'{field}.tiebreaker: a tiebreaker is diskless',
                            f'{field}.tiebreaker')
    return value


def _check_list(field: str, value: Any, low: int, high: int,
                item: Callable[[str, Any], Any]) -> list:
    if not isinstance(value, list) or not low <= len(value) <= high:
        raise ProtocolError(f'{field}: must be a list of {low}..{high} '
                            'entries', field)
    for i, entry in enumerate(value):
        item(f'{field}[{i}]', entry)
    return value


def _check_pair(field: str, value: Any) -> list:
    return _check_list(field, value, 2, 2, _check_re(HOST_RE, 'host name'))


_SPEC_REQUIRED: dict[str, Callable[[str, Any], Any]] = {
    'version': lambda field, value: _check_int(
        SPEC_VERSION, SPEC_VERSION)(field, value),
    'minor': check_minor,
    'port': check_port,
    'protocol': _check_choice(REPLICATION_PROTOCOLS),
    'quorum': _check_quorum,
    'on_no_quorum': _check_choice(ON_NO_QUORUM_POLICIES),
    'allow_two_primaries': _check_bool,
    'hosts': lambda field, value: _check_list(field, value, 1, MAX_HOSTS,
                                              _check_host),
    'connections': lambda field, value: _check_list(
        field, value, 0, MAX_HOSTS * (MAX_HOSTS - 1) // 2, _check_pair),
}
_SPEC_OPTIONAL: dict[str, Callable[[str, Any], Any]] = {
    'size': check_device_size,
    'net': _check_options('net'),
    'disk': _check_options('disk'),
    'zones': _check_choice(ZONE_POLICIES),
}


def check_spec(field: str, value: Any) -> dict:
    """A resource as fields (schema :data:`SPEC_VERSION`); see the top."""
    _check_fields(field, value, _SPEC_REQUIRED, _SPEC_OPTIONAL)
    hosts: dict[str, dict] = {}
    node_ids: dict[int, str] = {}
    addresses: dict[Any, str] = {}
    for i, host in enumerate(value['hosts']):
        where = f'{field}.hosts[{i}]'
        # Host names are case-insensitive; DRBD compares them exactly.
        key = host['name'].lower()
        if key in hosts:
            raise ProtocolError(f'{where}.name: {host["name"]} appears '
                                'twice', f'{where}.name')
        hosts[key] = host
        if host['node_id'] in node_ids:
            raise ProtocolError(
                f'{where}.node_id: node-id {host["node_id"]} is also used '
                f'by {node_ids[host["node_id"]]}', f'{where}.node_id')
        node_ids[host['node_id']] = host['name']
        address = ipaddress.ip_address(host['address'])
        if address in addresses:
            raise ProtocolError(
                f'{where}.address: {host["address"]} is also used by '
                f'{addresses[address]}', f'{where}.address')
        addresses[address] = host['name']
    if not any(h['role'] == ROLE_DISKFUL for h in value['hosts']):
        raise ProtocolError(f'{field}.hosts: a resource needs a diskful '
                            'host', f'{field}.hosts')
    pairs = set()
    for i, (a, b) in enumerate(value['connections']):
        where = f'{field}.connections[{i}]'
        ends = [hosts.get(a.lower()), hosts.get(b.lower())]
        if None in ends:
            missing = a if ends[0] is None else b
            raise ProtocolError(f'{where}: {missing} is not a host of the '
                                'resource', where)
        pair = frozenset((a.lower(), b.lower()))
        if len(pair) == 1 or pair in pairs:
            raise ProtocolError(f'{where}: {a} and {b} are not a new pair '
                                'of two hosts', where)
        pairs.add(pair)
        if all(e['role'] == ROLE_DISKLESS for e in ends):
            # Two clients never connect to each other.
            raise ProtocolError(f'{where}: {a} and {b} are both diskless',
                                where)
        if (ipaddress.ip_address(ends[0]['address']).version
                != ipaddress.ip_address(ends[1]['address']).version):
            raise ProtocolError(f'{where}: {a} and {b} are not of the same '
                                'IP version', where)
    return value
