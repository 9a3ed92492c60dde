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

Protocol version :data:`PROTOCOL_VERSION` (2). A resource travels as
fields, ``spec`` (:func:`check_spec`, schema :data:`SPEC_VERSION`), never
as .res text: the agent renders the .res itself
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
     (DISK_OPTIONS)}

Option values are typed (JSON integers in DRBD's unit, booleans, names
from a list) and range-checked with DRBD's limits (drbd_limits.h). What
cannot be said: handlers, startup, proxy, include, a second volume, an
external meta-disk, a second resource, another disk than the resource's
own LV.

``inventory`` brief
    -> brief, hostname, protocol_version, drbd_utils_version,
    drbd_kernel_version (None if no module), pools [{name, total_bytes,
    free_bytes, provisioned_bytes, extent_bytes, vg_free_bytes,
    zero_new_blocks (the thin pool zeroes newly provisioned blocks:
    ``lvs -o zero``)}],
    resources {name: {definition, state, device_size, zero_pending (see
    ``resize``)}}, volumes and
    snapshots [{name, pool, size_bytes, origin}] (volumes also
    create_ids [str]: the ``create_id`` of the create that made the LV,
    if it had one), revert_lvs [{name, pool,
    size_bytes, origin, resource, role ("rollback" | "previous")}] (LVs of
    a revert in progress, never listed as volumes), used_minors [int],
    used_ports [int],
    removed_temp_files [str] (temporary .res files a killed writer left,
    older than 10 min, which this inventory removed; usually []).
    With ``brief`` true, what a create's placement needs only: each
    entry of ``resources`` is ``{}`` (no definition is read, no state
    sent), the rest as above. The agent runs the same number of commands
    whatever the number of resources (one ``drbdadm dump all``, one
    ``drbdsetup status``; a resource ``dump all`` cannot show is read on
    its own).
``status`` resource*
    -> {resource, exists, definition, state, device_size, zero_pending};
    ``state`` is the parsed ``drbdsetup status --json --statistics`` entry
    (None when the resource is down); ``device_size`` the running DRBD
    device's size here in bytes (None when down or not reported);
    ``zero_pending`` the zeroing this node has to finish, ``[start,
    end]``, or None (see ``resize``).

Every .res write (create, create-from-snapshot, adjust, resize, attach)
keeps these invariants, else conflict and nothing changed: a size never
below the running device's size here (field ``size``, details {size,
device_size}); a node that holds a replica (its LV, a disk in its .res,
an attached device) is never made diskless (field ``spec.hosts[i]`` or
``spec.hosts``); while the resource runs here its ``minor``, ``port``
and the ``node_id`` of every host stay.
``create`` resource*, pool*, size*, spec*, secret*, max_peers,
    create_id
    LV sized so the DRBD device exposes >= size, .res, create-md, up.
    An LV it makes is tagged ``blackstor-create-<create_id>`` (32
    lowercase hex). Refused (conflict, nothing changed) when the LV exists,
    the resource is not running here and its metadata's current UUID is
    not DRBD's just-created one (4): that LV holds a replica that was in
    use. -> {resource, lv, lv_size, usable_size, lv_created, md_created,
    res_created (there was no .res before), res_changed, brought_up
    (``drbdadm up`` ran), drbd (up | adjusted | unchanged)}
``create-from-snapshot`` resource*, pool*, snapshot*, size*, spec*,
    secret*
    thin snapshot of the snapshot LV as the resource's LV (grown when size
    is larger), .res, up; no create-md (metadata comes with the snapshot).
``adjust`` resource*, spec*, secret*
    validate and write the .res, ``drbdadm adjust``.
``delete`` resource*, pool, create_id
    down, wipe-md, lvremove, remove .res; what is already gone is success.
    With ``create_id`` (the rollback of a failed create) the LV goes only
    if that create made it (its tag), the .res only if the LV went or
    there is none and the resource is not running; otherwise nothing
    changes. Without it, the ``<res>.rollback`` / ``<res>.previous`` LVs
    an interrupted revert left go too. -> {resource, down, lv_removed,
    res_removed, revert_lvs_removed [str], kept, reason}
``resize`` resource*, pool*, size*, lv, drbd, assume_clean, spec,
    secret
    ``lv`` (default true) grows the LV, ``drbd`` (default false) runs
    ``drbdadm resize`` (with ``--assume-clean`` when asked). With
    ``spec`` (and ``secret``; only with ``drbd``) the .res is replaced
    first: drbdadm passes its ``disk { size }`` to ``drbdsetup resize``.
    With ``assume_clean``, ``zero_from`` (the size the volume had before
    the extend: nothing below it is ever zeroed) and ``zero_to`` (the
    largest ``lv_size_base`` of the replicas: where the old internal
    metadata ended) the agent opens the DRBD device for writing first
    (auto-promote), records ``[zero_from, zero_to)`` as pending, resizes
    while holding the device and zeroes the range through DRBD
    (BLKZEROOUT: WRITE_ZEROES to the peers), so every replica gets the
    same bytes where the old metadata was; flushed, the pending record
    goes. A range the device exposed before this request and that is not
    pending here is not zeroed again. When the device cannot be opened
    (another node is Primary) it resizes without --assume-clean and DRBD
    resyncs the grown range.

    What must survive a crash is kept in ``<state_dir>/<resource>.grow``
    (node option ``state_dir``, a persistent directory): the LV size
    before the first LV grow of an extend not finished yet (written
    before that ``lvextend``; forgotten once DRBD was resized since) and
    a pending zeroing. ``lv_size_base`` is that recorded size (the LV's
    size before this request when none is recorded): a retry after a
    half-done grow zeroes the old metadata area only, not the grown
    range. A pending zeroing (reported as ``zero_pending`` here, in
    ``status`` and ``inventory``) is finished by the next ``resize``
    with ``drbd`` on this node (without ``drbdadm resize`` when the
    device already has its .res's size), which then needs ``zero_from``
    and is refused when the pending range starts below it (conflict,
    field ``zero_from``: that range may hold data) or when the device
    cannot be opened (busy). ``delete`` removes the file.
    -> {lv_size, lv_size_before, lv_size_base, lv_grown, drbd_resized,
    res_changed, zeroed [start, end] or None, resynced, zero_pending
    [start, end] or None}
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
``forget-peer`` resource*, node_id*
    ``drbdsetup forget-peer``: frees the bitmap slot of a peer that is no
    longer in the resource (a replica removed or lost). Refused (conflict)
    while this node's .res still lists a host with that node-id; the
    resource must be up here. -> {resource, node_id}
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
``attach`` resource*, spec*, secret*, device_path, timeout
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
from typing import Any, Callable, Mapping

#: Version of this contract; ``inventory`` reports it. 2: a resource
#: travels as fields (``spec``), never as .res text (``res_text``).
PROTOCOL_VERSION = 2
#: Version of the ``spec`` schema (its ``version`` field).
SPEC_VERSION = 1
#: Fields of earlier versions, refused with the reason, not as unknown.
REMOVED_FIELDS = {
    'res_text': 'res_text: not accepted since protocol version 2: the '
                'agent renders the .res itself from "spec", the resource '
                'as fields; no .res text is taken from a request',
}

#: Token in a rendered .res that the agent replaces with the secret.
SECRET_PLACEHOLDER = '@BLACKSTOR_SHARED_SECRET@'

#: DRBD volume number used for every resource (one volume per resource).
VOLUME_NUMBER = 0

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


def check_device_size(field: str, value: Any) -> int:
    """A DRBD device size in bytes: whole sectors, at most SIZE_MAX."""
    _check_int(SECTOR, SIZE_MAX)(field, value)
    if value % SECTOR:
        raise ProtocolError(f'{field}: {value} is not a multiple of '
                            f'{SECTOR} bytes', field)
    return value


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


_RES = {'resource': check_name}
_RES_POOL = {'resource': check_name, 'pool': check_pool}
_SPEC = {'spec': check_spec, 'secret': check_secret}

#: op -> (required fields, optional fields); each field -> its checker.
OPS: dict[str, tuple[dict, dict]] = {
    'inventory': ({}, {'brief': _check_bool}),
    'status': (_RES, {}),
    'create': ({**_RES_POOL, 'size': check_size, **_SPEC},
               {'max_peers': check_max_peers,
                'create_id': check_create_id}),
    'create-from-snapshot': ({**_RES_POOL, 'snapshot': check_name,
                              'size': check_size, **_SPEC}, {}),
    'adjust': ({**_RES, **_SPEC}, {}),
    'delete': (_RES, {'pool': check_pool, 'create_id': check_create_id}),
    'resize': ({**_RES_POOL, 'size': check_size},
               {'lv': _check_bool, 'drbd': _check_bool,
                'assume_clean': _check_bool, 'zero_from': check_size,
                'zero_to': check_size, **_SPEC}),
    'suspend-io': (_RES, {'lease': check_lease}),
    'resume-io': (_RES, {}),
    'new-current-uuid': (_RES, {'clear_bitmap': _check_bool}),
    'forget-peer': ({**_RES, 'node_id': check_node_id}, {}),
    'snapshot-create': ({**_RES_POOL, 'snapshot': check_name}, {}),
    'snapshot-delete': ({'pool': check_pool, 'snapshot': check_name}, {}),
    'snapshot-rollback': ({**_RES_POOL, 'snapshot': check_name},
                          {'size': check_size,
                           'phase': _check_choice(REVERT_PHASES)}),
    'attach': ({**_RES, **_SPEC},
               {'device_path': _check_device_path,
                'timeout': _check_timeout}),
    'detach': (_RES, {'force': _check_bool}),
    # manage / unmanage (cluster/adopt.py)
    'rename': ({**_RES_POOL, 'new_name': check_name, **_SPEC}, {}),
    'wrap': ({**_RES_POOL, 'lv': check_name, 'size': check_size, **_SPEC},
             {'max_peers': check_max_peers, 'undo': _check_bool}),
    'sync-source': (_RES, {}),
    'snapshot-rename': ({**_RES_POOL, 'snapshot': check_name,
                         'new_name': check_name}, {}),
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
    for field in REMOVED_FIELDS:
        if field in request:
            raise ProtocolError(REMOVED_FIELDS[field], field)
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
