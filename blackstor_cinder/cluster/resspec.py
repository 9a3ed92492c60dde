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
"""A :class:`model.ResourceSpec` as the protocol's ``spec`` field.

The controller sends a resource as fields and the agent renders the .res
itself (:mod:`blackstor_cinder.node.resrender`), so what travels is what
:func:`protocol.check_spec` admits: this module builds that dict and checks
it before a request leaves, so a wrong spec (a client whose address family
differs from the replicas', an option outside the closed list) fails here
with the problem named, not on N nodes.

``connection`` pairs are every pair of hosts of which at least one is
diskful, so two diskless clients never connect to each other. Option
values come from cinder.conf as text (``c-max-rate:750M``) and are sent
typed (768000, in the option's DRBD unit).
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping

from blackstor_cinder.cluster import model
from blackstor_cinder import protocol


def to_wire(spec: model.ResourceSpec) -> dict[str, Any]:
    """The ``spec`` field for ``spec``; ValueError naming the problem."""
    try:
        protocol.check_name('name', spec.name)
        protocol.check_max_peers('max_peers', spec.max_peers)
        if len(spec.hosts) > spec.max_peers + 1:
            raise ValueError(
                f'hosts: {len(spec.hosts)} hosts but max_peers '
                f'{spec.max_peers} allows at most {spec.max_peers + 1}')
        wire: dict[str, Any] = {
            'version': protocol.SPEC_VERSION,
            'minor': spec.minor, 'port': spec.port, 'protocol': 'C',
            'quorum': _quorum(spec.quorum),
            'on_no_quorum': spec.on_no_quorum,
            'allow_two_primaries': spec.allow_two_primaries,
            'hosts': [_host(spec, h) for h in spec.hosts],
            'connections': [[a.name, b.name] for a, b in
                            itertools.combinations(spec.hosts, 2)
                            if a.diskful or b.diskful],
        }
        if spec.size is not None:
            wire['size'] = spec.size
        if spec.zone_policy is not None:
            wire['zones'] = spec.zone_policy
        net = protocol.parse_options('net_options', 'net', spec.net_options)
        disk = protocol.parse_options('disk_options', 'disk',
                                      spec.disk_options)
        if net:
            wire['net'] = net
        if disk:
            wire['disk'] = disk
        return protocol.check_spec('spec', wire)
    except protocol.ProtocolError as exc:
        raise ValueError(str(exc)) from None


def validate_configured_options(net_options: Mapping,
                                disk_options: Mapping) -> None:
    """Refuse configured net/disk options a spec cannot carry.

    So a bad ``blackstor_net_options``/``blackstor_disk_options`` stops the
    backend at start-up, not at the first volume.
    """
    try:
        protocol.parse_options('blackstor_net_options', 'net', net_options)
        protocol.parse_options('blackstor_disk_options', 'disk',
                               disk_options)
    except protocol.ProtocolError as exc:
        raise ValueError(str(exc)) from None


def _quorum(quorum: Any) -> Any:
    # cinder.conf says "2"; the wire takes the number of votes as a number.
    if isinstance(quorum, str) and quorum.isascii() and quorum.isdigit():
        return int(quorum)
    return quorum


def _host(spec: model.ResourceSpec, host: model.ResourceHost) -> dict:
    entry = {'name': host.name, 'node_id': host.node_id,
             'address': host.address,
             'role': (protocol.ROLE_DISKFUL if host.diskful
                      else protocol.ROLE_DISKLESS)}
    if host.diskful:
        entry['vg'] = _vg_of(spec.name, host)
    if host.tiebreaker:
        entry['tiebreaker'] = True
    return entry


def _vg_of(resource: str, host: model.ResourceHost) -> str:
    # A replica's disk is always /dev/<vg>/<resource>: the agent derives
    # it from the VG, so any other path cannot be sent.
    parts = (host.disk or '').split('/')
    if (len(parts) != 4 or parts[:2] != ['', 'dev'] or parts[3] != resource
            or not protocol.LVM_NAME_RE.fullmatch(parts[2])):
        raise ValueError(f'hosts[{host.name}].disk: {host.disk!r} is not '
                         f'/dev/<volume group>/{resource}')
    return parts[2]
