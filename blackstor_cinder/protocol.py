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
"""The wire contract between the controller (cluster/) and the node agent.

This is the only module ``cluster/`` and ``node/`` share. It holds the name
patterns, the request schema of every agent operation and the error codes of
a reply. It imports nothing from the rest of the package and nothing from
Cinder.

One request is one JSON object with an ``op`` key; the agent answers with one
JSON object: ``{"ok": true, "result": {...}}`` and exit code 0, or
``{"ok": false, "error": {"code": ..., "message": ..., "field": ...}}`` and
the exit code of :data:`EXIT_CODES`.

Operations and their fields (``*`` = required). Sizes are bytes (int,
at most :data:`SIZE_MAX`).
``pool`` is ``"<vg>/<thinpool>"`` and must be configured on the node.
``res_text`` is a rendered .res file that carries :data:`SECRET_PLACEHOLDER`
where the shared secret goes; the agent substitutes ``secret`` for it and
writes the file with mode 0600, so the secret exists in one file only.

``inventory``
    -> hostname, drbd_utils_version, drbd_kernel_version (None if no
    module), pools [{name, total_bytes, free_bytes, provisioned_bytes,
    extent_bytes, vg_free_bytes, zero_new_blocks (the thin pool zeroes
    newly provisioned blocks: ``lvs -o zero``)}],
    resources {name: {definition, state, device_size}}, volumes and
    snapshots [{name, pool, size_bytes, origin}], revert_lvs [{name, pool,
    size_bytes, origin, resource, role ("rollback" | "previous")}] (LVs of
    a revert in progress, never listed as volumes), used_minors [int],
    used_ports [int],
    removed_temp_files [str] (temporary .res files a killed writer left,
    older than 10 min, which this inventory removed; usually []).
``status`` resource*
    -> {resource, exists, definition, state, device_size}; ``state`` is
    the parsed ``drbdsetup status --json --statistics`` entry (None when
    the resource is down); ``device_size`` the running DRBD device's size
    here in bytes (None when down or not reported).

Every .res write (create, create-from-snapshot, adjust, resize) refuses a
``disk { size }`` below the running device's size on this node: conflict,
field ``size``, details {size, device_size}, nothing changed.
``create`` resource*, pool*, size*, res_text*, secret*, max_peers,
    create_id
    LV sized so the DRBD device exposes >= size, .res, create-md, up.
    An LV it makes is tagged ``blackstor-create-<create_id>`` (32
    lowercase hex). Refused (conflict, nothing changed) when the LV exists,
    the resource is not running here and its metadata's current UUID is
    not DRBD's just-created one (4): that LV holds a replica that was in
    use. -> {resource, lv, lv_size, usable_size, lv_created, md_created,
    res_created (there was no .res before), res_changed, brought_up
    (``drbdadm up`` ran), drbd (up | adjusted | unchanged)}
``create-from-snapshot`` resource*, pool*, snapshot*, size*, res_text*,
    secret*
    thin snapshot of the snapshot LV as the resource's LV (grown when size
    is larger), .res, up; no create-md (metadata comes with the snapshot).
``adjust`` resource*, res_text*, secret*
    validate and write the .res, ``drbdadm adjust``.
``delete`` resource*, pool, create_id
    down, wipe-md, lvremove, remove .res; what is already gone is success.
    With ``create_id`` (the rollback of a failed create) the LV goes only
    if that create made it (its tag), the .res only if the LV went or
    there is none and the resource is not running; otherwise nothing
    changes. -> {resource, down, lv_removed, res_removed, kept, reason}
``resize`` resource*, pool*, size*, lv, drbd, assume_clean, res_text,
    secret
    ``lv`` (default true) grows the LV, ``drbd`` (default false) runs
    ``drbdadm resize`` (with ``--assume-clean`` when asked). With
    ``res_text`` (and ``secret``; only with ``drbd``) the .res is replaced
    first: drbdadm passes its ``disk { size }`` to ``drbdsetup resize``.
    With ``assume_clean``, ``zero_from`` (the device size before the grow)
    and ``zero_to`` (the largest LV size before the grow: where the old
    internal metadata ended) the agent opens the DRBD device for writing
    first (auto-promote), resizes while holding it and writes zeros over
    [zero_from, zero_to) through DRBD, so every replica gets the same
    bytes where the old metadata was; when it cannot open it (another node
    is Primary) it resizes without --assume-clean and DRBD resyncs the
    grown range. -> {lv_size, lv_size_before, lv_grown, drbd_resized,
    res_changed, zeroed [start, end] or None, resynced}
``suspend-io`` resource*, lease
    suspends I/O here. With ``lease`` (seconds, 1..600) I/O resumes by
    itself once the lease is over unless a ``resume-io`` came first, even
    when the controller died or lost the reply: a detached process on the
    node holds a token file and resumes as ``resume-io`` would. A second
    suspend replaces the lease; one without ``lease`` cancels it.
    -> {resource, running, suspended, lease_expires_in (seconds or None)}
``resume-io`` resource*
    cancels the lease, resumes whenever DRBD reports user-suspended I/O;
    idempotent. -> {resource, running, suspended, resumed,
    lease_cancelled}
``new-current-uuid`` resource*, clear_bitmap (default true)
``snapshot-create`` resource*, pool*, snapshot*
``snapshot-delete`` pool*, snapshot*
``snapshot-rollback`` resource*, pool*, snapshot*, size, phase
    Without ``phase`` (one shot): takes the resource down on this node and
    makes its LV a thin snapshot of ``snapshot`` again; the caller brings
    it up with ``adjust`` once every replica is rolled back. Two-phase,
    each phase idempotent (a rerun after a crash finishes it):
    ``prepare`` makes ``<resource>.rollback``, a thin snapshot of
    ``snapshot`` (``size``: must fit in it), and touches nothing else;
    ``swap`` takes the resource down here and renames ``<resource>`` to
    ``<resource>.previous`` and ``<resource>.rollback`` to ``<resource>``;
    ``undo`` reverses whatever prepare and swap did here (down, the old
    LV back as ``<resource>``, the ``.rollback`` LV removed);
    ``commit`` removes ``<resource>.previous``. ``snapshot`` is used by
    prepare only. -> {resource, phase, lv, rollback_lv, previous_lv
    (which of the three LVs exist now), ...: created, swapped (prepare);
    down, swapped (swap); down, restored, rollback_removed (undo);
    previous_removed (commit)}
``attach`` resource*, res_text*, secret*, device_path, timeout
    (hypervisor side, through the os-brick connector) -> {device_path}
``detach`` resource*, force
    (hypervisor side, through the os-brick connector).

``definition`` (parsed from ``drbdadm dump`` of the node's .res):
    {name, minor, secret, max_peers?, options {..}, net {..}, disk {..},
     hosts [{name, node_id, address, port, family, diskful, disk}]}
    ``disk`` holds the resource's disk options as written, among them
    ``size`` (the device's size in DRBD's syntax, e.g. ``1048576k``;
    absent in .res files written before sizes were rendered).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable

#: Token in a rendered .res that the agent replaces with the secret.
SECRET_PLACEHOLDER = '@BLACKSTOR_SHARED_SECRET@'

#: DRBD volume number used for every resource (one volume per resource).
VOLUME_NUMBER = 0

NODE_ID_MIN, NODE_ID_MAX = 0, 31
MINOR_MIN, MINOR_MAX = 0, (1 << 20) - 1
PORT_MIN, PORT_MAX = 1, 65535
MAX_PEERS_MIN, MAX_PEERS_MAX = 1, 31
#: No size field may exceed 16 EiB (LVM's own limit is below that): a
#: size is refused before any arithmetic or command sees it.
SIZE_MAX = 1 << 64
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

# Reply error codes and the agent's exit code for each.
E_INVALID = 'invalid-input'
E_NOT_FOUND = 'not-found'
E_CONFLICT = 'conflict'
E_MISSING = 'missing-dependency'
E_BUSY = 'busy'
E_TIMEOUT = 'timeout'
E_FAILED = 'command-failed'
E_INTERNAL = 'internal'
EXIT_CODES = {E_INVALID: 2, E_NOT_FOUND: 3, E_CONFLICT: 4, E_MISSING: 5,
              E_BUSY: 6, E_TIMEOUT: 7, E_FAILED: 1, E_INTERNAL: 1}


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


def _check_res_text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(f'{field}: a non-empty .res text is required',
                            field)
    if len(value) > 256 * 1024:
        raise ProtocolError(f'{field}: .res text is too large', field)
    if '\0' in value:
        raise ProtocolError(f'{field}: NUL byte in .res text', field)
    return value


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


_RES = {'resource': check_name}
_RES_POOL = {'resource': check_name, 'pool': check_pool}
_TEXT = {'res_text': _check_res_text, 'secret': check_secret}

#: op -> (required fields, optional fields); each field -> its checker.
OPS: dict[str, tuple[dict, dict]] = {
    'inventory': ({}, {}),
    'status': (_RES, {}),
    'create': ({**_RES_POOL, 'size': check_size, **_TEXT},
               {'max_peers': check_max_peers,
                'create_id': check_create_id}),
    'create-from-snapshot': ({**_RES_POOL, 'snapshot': check_name,
                              'size': check_size, **_TEXT}, {}),
    'adjust': ({**_RES, **_TEXT}, {}),
    'delete': (_RES, {'pool': check_pool, 'create_id': check_create_id}),
    'resize': ({**_RES_POOL, 'size': check_size},
               {'lv': _check_bool, 'drbd': _check_bool,
                'assume_clean': _check_bool, 'zero_from': check_size,
                'zero_to': check_size, **_TEXT}),
    'suspend-io': (_RES, {'lease': check_lease}),
    'resume-io': (_RES, {}),
    'new-current-uuid': (_RES, {'clear_bitmap': _check_bool}),
    'snapshot-create': ({**_RES_POOL, 'snapshot': check_name}, {}),
    'snapshot-delete': ({'pool': check_pool, 'snapshot': check_name}, {}),
    'snapshot-rollback': ({**_RES_POOL, 'snapshot': check_name},
                          {'size': check_size,
                           'phase': _check_choice(REVERT_PHASES)}),
    'attach': ({**_RES, **_TEXT},
               {'device_path': _check_device_path,
                'timeout': _check_timeout}),
    'detach': (_RES, {'force': _check_bool}),
}


def validate_request(request: Any) -> dict:
    """Check a request against :data:`OPS`; return it or raise ProtocolError.

    Unknown fields are refused too: a typo must not silently fall back to a
    default.
    """
    if not isinstance(request, dict):
        raise ProtocolError('the request must be a JSON object')
    op = request.get('op')
    # A list or an object is unhashable: never look it up in OPS.
    if not isinstance(op, str) or op not in OPS:
        raise ProtocolError(
            f'op: unknown operation {op!r}; known: {", ".join(sorted(OPS))}',
            'op')
    required, optional = OPS[op]
    for field, check in required.items():
        if field not in request:
            raise ProtocolError(f'{field}: missing (required by {op})',
                                field)
        check(field, request[field])
    for field, value in request.items():
        if field == 'op' or field in required:
            continue
        if field not in optional:
            raise ProtocolError(f'{field}: not a field of {op}', field)
        optional[field](field, value)
    return request


def error_reply(code: str, message: str, field: str | None = None,
                **details: Any) -> dict:
    error = {'code': code, 'message': message}
    if field:
        error['field'] = field
    if details:
        error['details'] = details
    return {'ok': False, 'error': error}


def ok_reply(result: dict | None = None) -> dict:
    return {'ok': True, 'result': result or {}}
