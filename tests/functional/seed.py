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
"""Seed a cluster in a box with many volumes at once, from a real one.

A real create costs some 10 s per volume on the stand-in (a dozen
stand-in commands per replica, each a Python start that reads and writes
the whole emulated cluster under one lock), so populating 1,000 volumes
by creates takes hours. :func:`seed` writes the state N volumes would
have left instead, in one go, by copying what one real create left (the
*template*) under new identities:

- every node's ``.res`` file (the agent's resource directory, mode 0600);
- the stand-in LVM's LV record and the LV's sparse file (its internal
  DRBD metadata, written by the stand-in ``drbdmeta``, included);
- the stand-in kernel's runtime record (connections, disk states,
  handshakes done), all nodes in one write of the state document.

What differs per volume: the resource name, the minor, the port, the
shared secret and the LV's create tag. Every string and field of the
template holding one of those is rewritten; nothing else changes, so a
seeded volume is what a real create with those identities leaves (the
metadata's generation UUIDs, the same for all seeded copies, aside).
``tests/functional/test_seed.py`` compares a seeded volume with a really
created one field by field, as the agents report them at inventory.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import string
import uuid

from tests.standin import md as mdlib
from tests.standin import state

_MINOR_RE = re.compile(r'device minor (\d+);')
_PORT_RE = re.compile(r'(address ipv4 [0-9.]+):(\d+);')
_SECRET_RE = re.compile(r'shared-secret "([^"]*)";')
_TAG_PREFIX = 'blackstor-create-'
_ALPHABET = string.ascii_letters + string.digits


class SeedError(Exception):
    """The box cannot be seeded as asked (nothing was written)."""


def _identity(res_text: str) -> tuple[int, int, str]:
    minors = set(_MINOR_RE.findall(res_text))
    ports = {p for _, p in _PORT_RE.findall(res_text)}
    found = _SECRET_RE.findall(res_text)
    if len(minors) != 1 or len(ports) != 1 or len(found) != 1:
        raise SeedError('template .res: expected one minor, one port and '
                        'one secret, found %s, %s, %s'
                        % (sorted(minors), sorted(ports), len(found)))
    return int(minors.pop()), int(ports.pop()), found[0]


def used(box) -> tuple[set[int], set[int]]:
    """Minors and ports of every .res on every node of the box."""
    minors: set[int] = set()
    ports: set[int] = set()
    for node in box.nodes.values():
        for path in node.resource_dir.glob('*.res'):
            text = path.read_text()
            minors.update(int(m) for m in _MINOR_RE.findall(text))
            ports.update(int(p) for _, p in _PORT_RE.findall(text))
    return minors, ports


class _Rewrite:
    """The template's identity -> one new volume's, in text and data."""

    def __init__(self, old: dict, new: dict) -> None:
        self.old, self.new = old, new

    def text(self, value: str) -> str:
        value = value.replace(self.old['name'], self.new['name'])
        value = value.replace(self.old['secret'], self.new['secret'])
        value = value.replace(f'device minor {self.old["minor"]};',
                              f'device minor {self.new["minor"]};')
        value = _PORT_RE.sub(
            lambda m: (f'{m.group(1)}:{self.new["port"]};'
                       if int(m.group(2)) == self.old['port']
                       else m.group(0)), value)
        return value

    def data(self, value, key=None):
        if isinstance(value, dict):
            return {self.text(k): self.data(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, str):
            if value.startswith(_TAG_PREFIX):
                return _TAG_PREFIX + self.new['tag']
            value = value.replace(self.old['name'], self.new['name'])
            value = value.replace(self.old['secret'], self.new['secret'])
            suffix = f':{self.old["port"]}'
            if value.startswith('ipv4:') and value.endswith(suffix):
                value = value[:-len(suffix)] + f':{self.new["port"]}'
            return value
        if key == 'minor' and value == self.old['minor']:
            return self.new['minor']
        return value


def seed(box, template: str, count: int) -> list[str]:
    """``count`` more volumes like ``template`` (a real volume of the box).

    Minors and ports are the lowest free ones above every one in use, in
    the box's configured ranges. Returns the new resource names.
    """
    if count <= 0:
        return []
    texts = {}
    for node in box.nodes.values():
        path = node.resource_dir / f'{template}.res'
        if path.exists():
            texts[node.name] = path.read_text()
    if not texts:
        raise SeedError(f'{template}: no .res on any node of the box')
    minor, port, secret = _identity(next(iter(texts.values())))
    old = {'name': template, 'minor': minor, 'port': port, 'secret': secret}
    low_minor, high_minor = _range(box, 'blackstor_minor_range')
    low_port, high_port = _range(box, 'blackstor_port_range')
    minors, ports = used(box)
    next_minor = max(minors | {low_minor - 1}) + 1
    next_port = max(ports | {low_port - 1}) + 1
    if next_minor + count - 1 > high_minor or next_port + count - 1 > (
            high_port):
        raise SeedError(f'{count} volumes do not fit the minor range '
                        f'{low_minor}-{high_minor} / port range '
                        f'{low_port}-{high_port} above the ones in use')
    root = box.standin.root
    names = []
    with state.locked(root) as sess:
        kernel = {n: sess.nodes[n]['drbd'][template] for n in sess.nodes
                  if template in sess.nodes[n].get('drbd', {})}
        lvs = {}
        for name, node in sess.nodes.items():
            for vg, rec in node.get('vgs', {}).items():
                if template in rec['lvs']:
                    lvs[(name, vg)] = rec['lvs'][template]
        for i in range(count):
            new = {'name': f'volume-{uuid.uuid4()}',
                   'minor': next_minor + i, 'port': next_port + i,
                   'secret': ''.join(secrets.choice(_ALPHABET)
                                     for _ in range(len(secret))),
                   'tag': secrets.token_hex(16)}
            rewrite = _Rewrite(old, new)
            for (node, vg), rec in lvs.items():
                sess.nodes[node]['vgs'][vg]['lvs'][new['name']] = (
                    rewrite.data(json.loads(json.dumps(rec))))
                mdlib.sparse_copy(sess.lv_file(node, vg, template),
                                  sess.lv_file(node, vg, new['name']))
            for node, rec in kernel.items():
                sess.nodes[node]['drbd'][new['name']] = rewrite.data(
                    json.loads(json.dumps(rec)))
            for node, text in texts.items():
                _write_res(box.nodes[node].resource_dir / (
                    new['name'] + '.res'), rewrite.text(text))
            names.append(new['name'])
    return names


def _range(box, option: str) -> tuple[int, int]:
    low, _, high = box.backend_options()[option].partition('-')
    return int(low), int(high)


def _write_res(path: pathlib.Path, text: str) -> None:
    """As the agent writes a .res: mode 0600, atomically."""
    tmp = path.with_suffix('.res.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.replace(tmp, path)
