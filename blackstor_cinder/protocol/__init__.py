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

This is the only package ``cluster/`` and ``node/`` share (with the
session framing of :mod:`blackstor_cinder.session`). It holds the request
schema of every agent operation and the error codes of a reply, over
:mod:`.fields` (name patterns and field checkers) and :mod:`.spec` (the
resource as fields), whose names it also offers. It imports nothing from
the rest of the package and nothing from Cinder.

One request is one JSON object with an ``op`` key; the agent answers with one
JSON object: ``{"ok": true, "result": {...}}`` and exit code 0, or
``{"ok": false, "error": {"code": ..., "message": ..., "field": ...}}`` and
the exit code of :data:`EXIT_CODES`.

Operations and their fields (``*`` = required). Sizes are bytes (int,
at most :data:`SIZE_MAX`).
``pool`` is ``"<vg>/<thinpool>"`` and must be configured on the node.

Protocol version :data:`PROTOCOL_VERSION` (2). A resource travels as
fields, ``spec`` (:mod:`.spec`: :func:`check_spec`, schema
:data:`SPEC_VERSION`), never as .res text; :mod:`.fields` holds the name
patterns and the checker of every other field. A field outside the
schema is refused (invalid-input) with ``field`` naming it.

``inventory`` brief, compact
    -> brief, compact, hostname, protocol_version, drbd_utils_version,
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
    its own). With ``compact`` true (and not ``brief``; the reply says
    ``compact``), what the controller's stats read: each definition only
    its name, minor, hosts, ``disk.size`` and ``net.allow-two-primaries``,
    each state only the fields the status model reads (no statistics
    counters, no paths).
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
``delete`` resource*, pool, create_id, report
    down, wipe-md, lvremove, remove .res; what is already gone is success.
    With ``report`` true the reply also has ``definition``: what this
    node's .res said before (as in ``status``, without the secret), or
    None when it had none (or none readable), so the controller deletes
    in one round trip per node without a ``status`` first.
    With ``create_id`` (the rollback of a failed create) the LV goes only
    if that create made it (its tag), the .res only if the LV went or
    there is none and the resource is not running; otherwise nothing
    changes. Without it, the ``<res>.rollback`` / ``<res>.previous`` LVs
    an interrupted revert left go too. -> {resource, down, lv_removed,
    res_removed, revert_lvs_removed [str], kept, reason, definition
    (with ``report``)}
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
``suspend-io`` resource*, lease, report
    suspends I/O here (a resource not running here: nothing done,
    ``running`` false). With ``lease`` (seconds, 1..600) I/O resumes by
    itself once the lease is over unless a ``resume-io`` came first, even
    when the controller died or lost the reply: a detached process on the
    node holds a token file and resumes as ``resume-io`` would. A second
    suspend replaces the lease; one without ``lease`` cancels it.
    With ``report`` true the reply also holds the ``status`` fields
    (exists, definition, state, device_size, zero_pending), read before
    anything is suspended, and a node whose .res names it the
    resource's tiebreaker suspends nothing (it has no I/O): the
    controller sends it to every storage node instead of a ``status``.
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
     zones (the zone policy its .res records; None: none recorded),
     hosts [{name, node_id, address, port, family, diskful, disk,
             tiebreaker}]}
    ``disk`` holds the resource's disk options as written, among them
    ``size`` (the device's size in DRBD's syntax, e.g. ``1048576k``;
    absent in .res files written before sizes were rendered).
"""

from __future__ import annotations

from typing import Any

from blackstor_cinder.protocol.fields import (
    check_address,
    _check_bool,
    _check_choice,
    check_create_id,
    _check_device_path,
    check_device_size,
    check_host,
    check_lease,
    check_max_peers,
    check_minor,
    check_name,
    check_node_id,
    check_pool,
    check_port,
    check_secret,
    check_size,
    _check_timeout,
    CREATE_ID_RE,
    HOST_RE,
    LEASE_MAX,
    LEASE_MIN,
    LVM_NAME_RE,
    LVM_RESERVED_PREFIXES,
    MAX_PEERS_MAX,
    MAX_PEERS_MIN,
    MINOR_MAX,
    MINOR_MIN,
    NAME_RE,
    NODE_ID_MAX,
    NODE_ID_MIN,
    PORT_MAX,
    PORT_MIN,
    ProtocolError,
    REVERT_PHASES,
    SECRET_MAX_LEN,
    SECRET_RE,
    SECTOR,
    SIZE_MAX,
    SUSPEND_STEPS,
)
from blackstor_cinder.protocol.spec import (
    ALGORITHM_RE,
    check_spec,
    DISK_OPTIONS,
    MAX_HOSTS,
    NET_OPTIONS,
    ON_NO_QUORUM_POLICIES,
    Option,
    OPTION_SECTIONS,
    parse_options,
    QUORUM_POLICIES,
    REPLICATION_PROTOCOLS,
    ROLE_DISKFUL,
    ROLE_DISKLESS,
    ROLES,
    SECRET_PLACEHOLDER,
    SPEC_VERSION,
    VOLUME_NUMBER,
    ZONE_ANY,
    ZONE_POLICIES,
    ZONE_SPREAD,
)

__all__ = [
    'ALGORITHM_RE',
    'CREATE_ID_RE',
    'DISK_OPTIONS',
    'EXIT_CODES',
    'E_BUSY',
    'E_CONFLICT',
    'E_FAILED',
    'E_INTERNAL',
    'E_INVALID',
    'E_MISSING',
    'E_NOT_FOUND',
    'E_TIMEOUT',
    'HOST_RE',
    'LEASE_MAX',
    'LEASE_MIN',
    'LVM_NAME_RE',
    'LVM_RESERVED_PREFIXES',
    'MAX_HOSTS',
    'MAX_PEERS_MAX',
    'MAX_PEERS_MIN',
    'MINOR_MAX',
    'MINOR_MIN',
    'NAME_RE',
    'NET_OPTIONS',
    'NODE_ID_MAX',
    'NODE_ID_MIN',
    'ON_NO_QUORUM_POLICIES',
    'OPS',
    'OPTION_SECTIONS',
    'Option',
    'PORT_MAX',
    'PORT_MIN',
    'PROTOCOL_VERSION',
    'ProtocolError',
    'QUORUM_POLICIES',
    'REMOVED_FIELDS',
    'REPLICATION_PROTOCOLS',
    'REVERT_PHASES',
    'ROLES',
    'ROLE_DISKFUL',
    'ROLE_DISKLESS',
    'SECRET_MAX_LEN',
    'SECRET_PLACEHOLDER',
    'SECRET_RE',
    'SECTOR',
    'SIZE_MAX',
    'SUSPEND_STEPS',
    'SPEC_VERSION',
    'VOLUME_NUMBER',
    'ZONE_ANY',
    'ZONE_POLICIES',
    'ZONE_SPREAD',
    'check_address',
    'check_create_id',
    'check_device_size',
    'check_host',
    'check_lease',
    'check_max_peers',
    'check_minor',
    'check_name',
    'check_node_id',
    'check_pool',
    'check_port',
    'check_secret',
    'check_size',
    'check_spec',
    'error_reply',
    'ok_reply',
    'parse_options',
    'validate_request',
]

#: Version of this contract; ``inventory`` reports it. 2: a resource
#: travels as fields (``spec``), never as .res text (``res_text``).
PROTOCOL_VERSION = 2
#: Fields of earlier versions, refused with the reason, not as unknown.
REMOVED_FIELDS = {
    'res_text': 'res_text: not accepted since protocol version 2: the '
                'agent renders the .res itself from "spec", the resource '
                'as fields; no .res text is taken from a request',
}

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


_RES = {'resource': check_name}
_RES_POOL = {'resource': check_name, 'pool': check_pool}
_SPEC = {'spec': check_spec, 'secret': check_secret}

#: op -> (required fields, optional fields); each field -> its checker.
OPS: dict[str, tuple[dict, dict]] = {
    'inventory': ({}, {'brief': _check_bool, 'compact': _check_bool}),
    'status': (_RES, {}),
    'create': ({**_RES_POOL, 'size': check_size, **_SPEC},
               {'max_peers': check_max_peers,
                'create_id': check_create_id}),
    'create-from-snapshot': ({**_RES_POOL, 'snapshot': check_name,
                              'size': check_size, **_SPEC}, {}),
    'adjust': ({**_RES, **_SPEC}, {}),
    'delete': (_RES, {'pool': check_pool, 'create_id': check_create_id,
                      'report': _check_bool}),
    'resize': ({**_RES_POOL, 'size': check_size},
               {'lv': _check_bool, 'drbd': _check_bool,
                'assume_clean': _check_bool, 'zero_from': check_size,
                'zero_to': check_size, **_SPEC}),
    'suspend-io': (_RES, {'lease': check_lease, 'report': _check_bool}),
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
