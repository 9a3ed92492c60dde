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
"""LVM's device filters, and whether they keep DRBD devices out.

LVM must never open a DRBD device: a scan while a snapshot has the
volume's I/O suspended blocks in the kernel (D state) with the resource
lock held, and the snapshot fails. :func:`scan_problem` tells whether
the filters lvmconfig prints (``Lvm.device_filters``) let a DRBD device
through, by LVM's own rule.
"""

from __future__ import annotations

import re

#: The lvm.conf options holding LVM's device filters; a device is scanned
#: only when it passes both.
FILTER_OPTIONS = ('global_filter', 'filter')
#: Linux's block major of DRBD devices (udev names each /dev/block/147:N).
DRBD_MAJOR = 147
#: A sample DRBD device to test the filters with: any minor and resource
#: name of the ranges the driver allocates.
SAMPLE_MINOR = 1000
SAMPLE_RESOURCE = 'volume-x'
# lvmconfig prints one "name=value" per line; a value is a number, a
# string or a [list] of them, strings in "" with \" and \\ escaped.
_CONFIG_LINE_RE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*?)\s*$')
_CONFIG_STRING_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
# The closing delimiter of a filter pattern opening with these (LVM's
# rule); any other character closes itself.
_CLOSING = {'(': ')', '[': ']', '{': '}'}
_FIX = ('set global_filter in the devices section of lvm.conf '
        '(/etc/lvm/lvm.conf) to accept only the PVs of this node, e.g. '
        'global_filter = [ "a|^/dev/sdb$|", "r|.*|" ] (see NODE-SETUP.md)')


def drbd_device_names(minor: int, resource: str, disk: str) -> list[str]:
    """Every name LVM sees for a DRBD device: the kernel's, udev's, DRBD's.

    ``disk``: the backing device (/dev/<vg>/<lv>), which DRBD's udev rules
    name the device by too.
    """
    by_disk = disk[len('/dev/'):] if disk.startswith('/dev/') else disk
    return [f'/dev/drbd{minor}', f'/dev/block/{DRBD_MAJOR}:{minor}',
            f'/dev/drbd/by-res/{resource}/0',
            f'/dev/drbd/by-disk/{by_disk.lstrip("/")}']


def parse_lvmconfig(text: str) -> dict[str, str]:
    """{option: value text} of lvmconfig's "name=value" lines."""
    values = {}
    for line in text.splitlines():
        match = _CONFIG_LINE_RE.match(line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


class FilterError(ValueError):
    """A filter value LVM would not take (or we cannot read)."""


def parse_filter(value: str) -> list[tuple[bool, re.Pattern]]:
    """(accepts, regex) per pattern of a filter value lvmconfig printed.

    ``value``: ``["a|^/dev/sdb$|","r|.*|"]`` or a single ``"a|x|"``.
    Patterns are ``a`` (accept) or ``r`` (reject), a delimiter (any
    character; ``(``, ``[`` and ``{`` close with their pair), the regex,
    the delimiter again. FilterError when it is not that.
    """
    text = value.strip()
    if text.startswith('[') and text.endswith(']'):
        text = text[1:-1].strip()
    strings = []
    pos = 0
    while pos < len(text):
        match = _CONFIG_STRING_RE.match(text, pos)
        if not match:
            raise FilterError(f'not a list of quoted patterns: {value}')
        strings.append(re.sub(r'\\(.)', r'\1', match.group(1)))
        pos = match.end()
        while pos < len(text) and text[pos] in ' \t':
            pos += 1
        if pos < len(text):
            if text[pos] != ',':
                raise FilterError(f'not a list of quoted patterns: {value}')
            pos += 1
            while pos < len(text) and text[pos] in ' \t':
                pos += 1
    return [_pattern(s) for s in strings]


def _pattern(text: str) -> tuple[bool, re.Pattern]:
    if len(text) < 4 or text[0] not in 'ar':
        raise FilterError(f'pattern "{text}" is not a|regex| or r|regex|')
    close = _CLOSING.get(text[1], text[1])
    if text[-1] != close:
        raise FilterError(f'pattern "{text}" does not end with its '
                          f'delimiter {close}')
    # LVM matches with its own engine (libdevmapper's dm_regex): the
    # POSIX-like subset filters are written in, which re reads alike.
    try:
        regex = re.compile(text[2:-1])
    except re.error as e:
        raise FilterError(f'pattern "{text}": {e}') from None
    return text[0] == 'a', regex


def _decision(patterns: list[tuple[bool, re.Pattern]],
              name: str) -> bool | None:
    """Whether the first pattern matching ``name`` accepts it.

    None when no pattern matches it.
    """
    for accepts, regex in patterns:
        if regex.search(name):
            return accepts
    return None


def passes(patterns: list[tuple[bool, re.Pattern]],
           names: list[str]) -> bool:
    """Whether one LVM filter lets a device with these names through.

    LVM's rule (lib/filters/filter-regex.c): for each name the first
    pattern whose regex matches anywhere in it decides; the device passes
    when one of its names is accepted, or when no pattern matches any of
    its names. A name rejected while no other is accepted keeps it out.
    """
    decisions = [_decision(patterns, name) for name in names]
    return True in decisions or False not in decisions


def scan_problem(config: dict[str, str], names: list[str]) -> str | None:
    """Why LVM with these filter values would scan the device, or None.

    ``config``: :func:`parse_lvmconfig` of the filter options;
    ``names``: the device's names (:func:`drbd_device_names`). LVM scans
    a device that passes every one of :data:`FILTER_OPTIONS`.
    """
    filters = {}
    for option in FILTER_OPTIONS:
        if option not in config:
            return (f'lvmconfig did not report devices/{option}; cannot '
                    f'tell whether LVM scans DRBD devices')
        try:
            filters[option] = parse_filter(config[option])
        except FilterError as e:
            # LVM refuses to run with it too
            return f'devices/{option} in lvm.conf cannot be used: {e}'
    if not all(passes(patterns, names) for patterns in filters.values()):
        return None
    why = []
    for option, patterns in filters.items():
        accepted = [n for n in names if _decision(patterns, n)]
        why.append(f'devices/{option} '
                   + (f'accepts {", ".join(accepted)}' if accepted
                      else 'matches none of its names'))
    return (f'LVM would scan DRBD devices, which blocks while a snapshot '
            f'has a volume\'s I/O suspended (the snapshot then fails): in '
            f'lvm.conf {" and ".join(why)}; {_FIX}')
