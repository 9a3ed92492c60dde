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
"""Read drbd.conf syntax, as ``drbdadm dump`` prints it.

``drbdadm dump-xml`` would be easier to read but leaves out the node-id, so
the agent parses the plain ``dump`` output: words, quoted strings, ``{``,
``}``, ``;`` and ``#`` comments. :func:`parse` gives a list of
:class:`Statement` (its words and, for a section, its body);
:func:`definition` turns a ``resource`` section into the protocol's
``definition`` dict.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Iterator

from blackstor_cinder import protocol

_TOKEN_RE = re.compile(r'''
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<punct>[{};])
  | (?P<word>[^\s{};"\#]+)
''', re.VERBOSE)


class ParseError(ValueError):
    """Text that is not drbd.conf syntax."""


@dataclasses.dataclass
class Statement:
    """``words...;`` or ``words... { body }``."""
    words: list[str]
    body: list[Statement] | None = None

    @property
    def keyword(self) -> str:
        return self.words[0]

    @property
    def args(self) -> list[str]:
        return self.words[1:]

    def find(self, keyword: str) -> list[Statement]:
        return [s for s in self.body or () if s.keyword == keyword]

    def first(self, keyword: str) -> Statement | None:
        found = self.find(keyword)
        return found[0] if found else None


def tokenize(text: str) -> list[str | tuple[str]]:
    """Words (str, quotes removed) and punctuation (a 1-tuple)."""
    tokens: list[str | tuple[str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match:
            line = text.count('\n', 0, pos) + 1
            raise ParseError(f'line {line}: unexpected {text[pos]!r}')
        pos = match.end()
        kind = match.lastgroup
        value = match.group()
        if kind == 'string':
            tokens.append(re.sub(r'\\(.)', r'\1', value[1:-1]))
        elif kind == 'word':
            tokens.append(value)
        elif kind == 'punct':
            tokens.append((value,))
    return tokens


def parse(text: str) -> list[Statement]:
    """The statements of ``text``; ParseError on unbalanced syntax."""
    tokens = tokenize(text)
    stack: list[list[Statement]] = [[]]
    open_sections: list[Statement] = []
    words: list[str] = []
    for token in tokens:
        if isinstance(token, str):
            words.append(token)
        elif token == (';',):
            if words:
                stack[-1].append(Statement(words))
            words = []
        elif token == ('{',):
            if not words:
                raise ParseError('a section without a name')
            section = Statement(words, [])
            stack[-1].append(section)
            stack.append(section.body)
            open_sections.append(section)
            words = []
        else:  # '}'
            if words or len(stack) == 1:
                raise ParseError('unexpected "}"')
            stack.pop()
            open_sections.pop()
    if words or open_sections:
        raise ParseError('unexpected end of text')
    return stack[0]


def _options(section: Statement | None) -> dict[str, str]:
    if section is None:
        return {}
    return {s.keyword: ' '.join(s.args) for s in section.body or ()
            if s.body is None}


def _address(words: list[str]) -> tuple[str | None, str | None, int | None]:
    # "ipv4 10.0.0.1:7000", "ipv6 [fd00::1]:7000", or "10.0.0.1:7000".
    family = 'ipv4'
    if len(words) == 2:
        family, where = words
    elif len(words) == 1:
        where = words[0]
    else:
        return None, None, None
    host, _, port = where.rpartition(':')
    host = host[1:-1] if host.startswith('[') else host
    try:
        ipaddress.ip_address(host)
        return family, host, int(port)
    except ValueError:
        return family, host or None, None


def _volume(on: Statement) -> Statement | None:
    for volume in on.find('volume'):
        if volume.args == [str(protocol.VOLUME_NUMBER)]:
            return volume
    return None


def _minor(volume: Statement | None) -> int | None:
    # "device minor 1000;" or "device /dev/drbd1000 minor 1000;"
    device = volume.first('device') if volume else None
    if device is None:
        return None
    args = device.args
    if 'minor' in args and args.index('minor') + 1 < len(args):
        value = args[args.index('minor') + 1]
    else:
        match = re.match(r'^/dev/drbd(\d+)$', args[0]) if args else None
        value = match.group(1) if match else ''
    return int(value) if value.isdigit() else None


def definition(resource: Statement) -> dict:
    """The protocol ``definition`` of a ``resource`` section."""
    if resource.keyword != 'resource' or len(resource.args) != 1:
        raise ParseError('not a resource section')
    net = _options(resource.first('net'))
    secret = net.pop('shared-secret', None)
    hosts = []
    minors = set()
    for on in resource.find('on'):
        volume = _volume(on)
        disk = _options(volume).get('disk') if volume else None
        node_id = _options(on).get('node-id')
        address = on.first('address')
        family, host, port = _address(address.args if address else [])
        minor = _minor(volume)
        if minor is not None:
            minors.add(minor)
        hosts.append({
            'name': on.args[0] if on.args else None,
            'node_id': int(node_id) if node_id and node_id.isdigit()
            else None,
            'address': host, 'port': port, 'family': family,
            'diskful': bool(disk) and disk != 'none',
            'disk': disk if disk and disk != 'none' else None,
        })
    result = {
        'name': resource.args[0],
        'minor': min(minors) if minors else None,
        'secret': secret,
        'options': _options(resource.first('options')),
        'net': net,
        'disk': _options(resource.first('disk')),
        'hosts': hosts,
    }
    return result


def resources(text: str) -> dict[str, dict]:
    """Every ``resource`` section of ``text``: name -> definition."""
    return {s.args[0]: definition(s) for s in parse(text)
            if s.keyword == 'resource' and len(s.args) == 1}


def _walk(statements: list[Statement]) -> Iterator[Statement]:
    for statement in statements:
        yield statement
        if statement.body:
            yield from _walk(statement.body)


def used_minors_ports(text: str) -> tuple[set[int], set[int]]:
    """Every device minor and address port anywhere in ``text``.

    For a .res file as written (not as dumped): ``device`` and ``address``
    may sit in ``on`` sections, in resource-level ``volume`` sections or
    elsewhere; all of them count.
    """
    minors: set[int] = set()
    ports: set[int] = set()
    for statement in _walk(parse(text)):
        if statement.keyword == 'floating' or (
                statement.keyword == 'address' and statement.body is None):
            _family, _host, port = _address(statement.args)
            if port is not None:
                ports.add(port)
        elif statement.keyword == 'device' and statement.body is None:
            minor = _minor(Statement(['volume'], [statement]))
            if minor is not None:
                minors.add(minor)
    return minors, ports
