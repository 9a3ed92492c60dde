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
"""The fields of the wire contract: name patterns, ranges, checkers.

Each checker takes the field's name (for the error) and its value, and
returns the value or raises :class:`ProtocolError` naming the field.
Names become LV names, file names and command arguments, so their
patterns admit no character a shell, LVM or drbdadm reads specially.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable

NODE_ID_MIN, NODE_ID_MAX = 0, 31
MINOR_MIN, MINOR_MAX = 0, (1 << 20) - 1
PORT_MIN, PORT_MAX = 1, 65535
MAX_PEERS_MIN, MAX_PEERS_MAX = 1, 31
SECTOR = 512
#: No size field may exceed DRBD's largest device (DRBD_DISK_SIZE_MAX:
#: 2**41 sectors, 1 PiB): a size is refused before any arithmetic or
#: command sees it.
SIZE_MAX = (2 << 40) * SECTOR
#: DRBD refuses secrets longer than this.
SECRET_MAX_LEN = 64

# Resource and snapshot names become LV names, file names and drbdadm
# arguments: letters, digits, '_' and '-' only, no leading '-'. Patterns end
# in \Z, not $, which would accept a trailing newline.
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]{0,62}\Z')
# VG and thin pool names: the same alphabet plus '+' (LVM allows it).
LVM_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_+-]{0,126}\Z')
# Host names as DRBD sees them (uname -n): RFC 1123 labels.
HOST_RE = re.compile(
    r'^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
    r'(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z')
SECRET_RE = re.compile(r'^[A-Za-z0-9_-]{16,%d}\Z' % SECRET_MAX_LEN)
# The id of one create request (uuid4().hex): it names the LVs it made.
CREATE_ID_RE = re.compile(r'^[0-9a-f]{32}\Z')


class ProtocolError(ValueError):
    """A request that does not fit the schema; ``field`` names the culprit."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _check_re(regex: re.Pattern, what: str, secret: bool = False
              ) -> Callable[[str, Any], Any]:
    def check(field: str, value: Any) -> Any:
        if not isinstance(value, str) or not regex.fullmatch(value):
            # A rejected secret is still a secret: never echo it.
            shown = 'the value' if secret else repr(value)
            raise ProtocolError(f'{field}: {shown} is not a valid {what}',
                                field)
        return value
    return check


def _check_int(low: int, high: int | None) -> Callable[[str, Any], int]:
    def check(field: str, value: Any) -> int:
        # bool is an int in Python; a JSON true is not a size.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(f'{field}: {value!r} is not an integer',
                                field)
        if value < low or (high is not None and value > high):
            bound = f'{low}..{high}' if high is not None else f'>= {low}'
            raise ProtocolError(f'{field}: {value} is out of range {bound}',
                                field)
        return value
    return check


def _check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(f'{field}: {value!r} is not a boolean', field)
    return value


def _check_pool(field: str, value: Any) -> str:
    if isinstance(value, str) and value.count('/') == 1:
        vg, pool = value.split('/')
        if LVM_NAME_RE.fullmatch(vg) and LVM_NAME_RE.fullmatch(pool):
            return value
    raise ProtocolError(
        f'{field}: {value!r} is not a "<volume group>/<thin pool>" name',
        field)


def _check_device_path(field: str, value: Any) -> str:
    if (not isinstance(value, str) or not value.startswith('/')
            or '..' in value.split('/') or '\0' in value):
        raise ProtocolError(f'{field}: {value!r} is not an absolute path',
                            field)
    return value


def _check_seconds(low: float, high: float, open_low: bool
                   ) -> Callable[[str, Any], float]:
    def check(field: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(f'{field}: {value!r} is not a number',
                                field)
        if not (low < value if open_low else low <= value) \
                or not value <= high:
            raise ProtocolError(f'{field}: {value} is out of range '
                                f'{low:g}..{high:g}', field)
        return float(value)
    return check


_check_timeout = _check_seconds(0, 3600, open_low=True)
#: Seconds a suspend-io lease may last.
LEASE_MIN, LEASE_MAX = 1, 600
#: A lease covers this many controller steps while I/O is held (the
#: controller waits ``lease / SUSPEND_STEPS`` for each); the agent gives
#: ``drbdsetup suspend-io`` ``lease / (SUSPEND_STEPS + 1)``, so that its
#: answer, or its timeout, arrives within the step.
SUSPEND_STEPS = 4
check_lease = _check_seconds(LEASE_MIN, LEASE_MAX, open_low=False)


def _check_choice(choices: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(field: str, value: Any) -> str:
        if value not in choices:
            raise ProtocolError(f'{field}: {value!r} is not one of '
                                f'{", ".join(choices)}', field)
        return value
    return check


#: Phases of a two-phase snapshot-rollback (revert).
REVERT_PHASES = ('prepare', 'swap', 'undo', 'commit')

_check_name_pattern = _check_re(NAME_RE, 'name')
#: LVM refuses LV names with these prefixes (lvcreate: "... is invalid").
LVM_RESERVED_PREFIXES = ('snapshot', 'pvmove')


def check_name(field: str, value: Any) -> str:
    """A resource or snapshot name: a safe pattern LVM also accepts."""
    _check_name_pattern(field, value)
    if value.startswith(LVM_RESERVED_PREFIXES):
        raise ProtocolError(
            f'{field}: {value!r} starts with a prefix LVM reserves '
            f'({", ".join(LVM_RESERVED_PREFIXES)})', field)
    return value


check_host = _check_re(HOST_RE, 'host name')
check_secret = _check_re(SECRET_RE, 'shared secret', secret=True)
check_create_id = _check_re(CREATE_ID_RE, 'create id (32 lowercase hex)')
check_size = _check_int(1, SIZE_MAX)
check_node_id = _check_int(NODE_ID_MIN, NODE_ID_MAX)
check_minor = _check_int(MINOR_MIN, MINOR_MAX)
check_port = _check_int(PORT_MIN, PORT_MAX)
check_max_peers = _check_int(MAX_PEERS_MIN, MAX_PEERS_MAX)
check_pool = _check_pool


def check_address(field: str, value: Any) -> str:
    """An IPv4 or IPv6 literal (DRBD addresses are never host names)."""
    try:
        ipaddress.ip_address(value)
    except (ValueError, TypeError):
        raise ProtocolError(f'{field}: {value!r} is not an IP address',
                            field) from None
    return value


def check_device_size(field: str, value: Any) -> int:
    """A DRBD device size in bytes: whole sectors, at most SIZE_MAX."""
    _check_int(SECTOR, SIZE_MAX)(field, value)
    if value % SECTOR:
        raise ProtocolError(f'{field}: {value} is not a multiple of '
                            f'{SECTOR} bytes', field)
    return value
