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
"""What a new .res must be before it replaces the one in place.

Its shape (:func:`check_shape`): one resource, of the shape the renderer
(:mod:`.resrender`) writes, checked on the text before drbdadm reads it.
And, whoever writes it (agent op or connector), the invariants
(:func:`check_invariants`; conflict, nothing changed): the
``disk { size }`` never goes below the running device's size; a node
whose .res or running device has a disk keeps that disk (a replica never
becomes diskless); while the resource runs here its minor, its port and
the node-ids of its hosts stay.
"""

from __future__ import annotations

from blackstor_cinder.node import drbd as drbd_mod
from blackstor_cinder.node import drbdconf
from blackstor_cinder.node import drbdstatus
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder import protocol

#: What may appear in a .res, section by section: the shape
#: :mod:`.resrender` writes and nothing else. Each kind of section maps
#: its statements to the kind of section they open (None: a plain
#: ``name values;`` statement); an ``options`` section takes plain
#: statements only.
_SHAPE: dict[str, dict[str, str | None]] = {
    'resource': {'options': 'options', 'net': 'options', 'disk': 'options',
                 'on': 'on', 'connection': 'connection'},
    'on': {'node-id': None, 'address': None, 'volume': 'volume'},
    'volume': {'device': None, 'disk': None, 'meta-disk': None},
    'connection': {'host': None},
}


def check_shape(resource: str, text: str, field: str = 'spec') -> None:
    """Refuse a .res that is not one resource of the renderer's shape.

    Checked on the text before drbdadm reads it: drbdadm follows
    ``include`` as root, runs ``handlers`` through a shell, and
    ``create-md`` works on every volume's disk.
    """
    try:
        statements = drbdconf.parse(text)
    except drbdconf.ParseError as e:
        raise AgentError(protocol.E_INVALID, f'{field}: {e}',
                         field) from None
    if ([s.words for s in statements] != [['resource', resource]]
            or statements[0].body is None):
        raise AgentError(protocol.E_INVALID, f'{field}: a .res holds '
                         f'exactly one resource, {resource}', field)
    _check_body(statements[0], 'resource', field)


def _check_body(section: drbdconf.Statement, kind: str, field: str) -> None:
    allowed = _SHAPE.get(kind)
    for statement in section.body or ():
        word = statement.keyword
        opens = allowed.get(word) if allowed is not None else None
        if allowed is not None and word not in allowed:
            raise AgentError(protocol.E_INVALID, f'{field}: "{word}" is not '
                             f'allowed in a {kind} section', field)
        if (opens is None) != (statement.body is None):
            raise AgentError(protocol.E_INVALID, f'{field}: "{word}" in a '
                             f'{kind} section is not of the shape the '
                             'agent writes', field)
        if opens is not None:
            _check_body(statement, opens, field)
    if kind == 'volume':
        meta = section.first('meta-disk')
        if (section.args != [str(protocol.VOLUME_NUMBER)] or meta is None
                or meta.args != ['internal']):
            raise AgentError(protocol.E_INVALID, f'{field}: one volume, '
                             f'{protocol.VOLUME_NUMBER}, with internal '
                             'metadata', field)


def check_node_id(host: dict) -> None:
    """A host of a parsed .res has a node-id DRBD can use (0..31).

    drbdadm itself accepts 32, so the range is checked here.
    """
    node_id = host['node_id']
    if node_id is None or not (protocol.NODE_ID_MIN <= node_id
                               <= protocol.NODE_ID_MAX):
        raise AgentError(
            protocol.E_INVALID,
            f'node_id: node-id of {host["name"]} must be '
            f'{protocol.NODE_ID_MIN}..{protocol.NODE_ID_MAX}, '
            f'not {node_id}', 'node_id')


def check_invariants(resource: str, new: dict, old: dict | None,
                     state: dict | None, node_name: str) -> None:
    """Refuse (conflict) a new definition that breaks an invariant.

    ``new``: the definition of the new .res; ``old``: the one in place
    (None if none); ``state``: the resource's running status entry on
    this node, ``node_name`` (None if down).
    """
    me = _host(new, node_name)
    mine = _host(old, node_name) if old else None
    # A replica stays a replica, on the same disk: a .res without its
    # disk would make the next adjust detach it.
    if mine is not None and mine['disk'] and mine['disk'] != me['disk']:
        _refuse('spec.hosts', f'the .res of {resource} gives node '
                f'{node_name} the disk {me["disk"] or "none"}, but it '
                f'holds a replica on {mine["disk"]}')
    model = drbdstatus.of(state)
    if model is not None and model.attached and not me['disk']:
        _refuse('spec.hosts', f'{resource} runs with a local disk on node '
                f'{node_name}; the .res makes it diskless')
    if model is not None:
        _check_identity(resource, new, me, old, model, node_name)
    _check_no_shrink(resource, new, model, node_name)


def _check_identity(resource: str, new: dict, me: dict, old: dict | None,
                    state: drbdstatus.ResourceState,
                    node_name: str) -> None:
    """Minor, port and node-ids of a running resource stay."""
    running = f'{resource} runs on node {node_name} with'
    minors = {state.minor}
    minors |= {old['minor']} if old else set()
    minors -= {None}
    if minors and new['minor'] not in minors:
        _refuse('minor', f'{running} minor {min(minors)}, not '
                f'{new["minor"]}')
    node_ids = {node_name: state.node_id}
    for peer in state.peers:
        node_ids[peer.name] = peer.node_id
    for host in (old or {}).get('hosts') or ():
        node_ids.setdefault(host['name'], host['node_id'])
    for host in new['hosts']:
        was = node_ids.get(host['name'])
        if isinstance(was, int) and host['node_id'] != was:
            _refuse('node_id', f'{running} node-id {was} for '
                    f'{host["name"]}, not {host["node_id"]}')
    mine = _host(old, node_name) if old else None
    if mine is not None and mine['port'] not in (None, me['port']):
        _refuse('port', f'{running} port {mine["port"]}, not '
                f'{me["port"]}')


def _check_no_shrink(resource: str, definition: dict,
                     state: drbdstatus.ResourceState | None,
                     node_name: str) -> None:
    # A smaller disk { size } would make the next adjust (or attach)
    # cut the device, and the data beyond.
    text = (definition.get('disk') or {}).get('size')
    if text is None:
        return
    try:
        new = drbd_mod.size_bytes(text)
    except ValueError as e:
        raise AgentError(protocol.E_INVALID, f'size: {e}',
                         'size') from None
    current = state.size if state is not None else None
    if current is not None and new < current:
        _refuse(
            'size', f'disk {{ size {text}; }} is {new} bytes, less than '
            f'the {current} bytes of {resource} running on node '
            f'{node_name}; a volume never shrinks',
            size=new, device_size=current)


def _refuse(field: str, message: str, **details) -> None:
    raise AgentError(protocol.E_CONFLICT, f'{field}: {message}', field,
                     **details)


def _host(definition: dict, name: str) -> dict | None:
    return next((h for h in definition.get('hosts') or ()
                 if h['name'] == name), None)
