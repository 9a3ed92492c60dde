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
"""LVM's device filters and DRBD devices (node/lvmfilter.py)."""

import json

import ddt

from blackstor_cinder.node import lvmfilter
from tests.unit import base


# A DRBD device of a node with pool blackstor/thinpool, by all its names.
NAMES = lvmfilter.drbd_device_names(1000, 'volume-x',
                                    '/dev/blackstor/volume-x')
# What NODE-SETUP.md tells operators to set.
WHITELIST = ['a|^/dev/sdb$|', 'r|.*|']


def lvmconfig(global_filter, filter=('a|.*|',)):
    """parse_lvmconfig of what lvmconfig prints for these filters."""
    def value(v):
        return v if isinstance(v, str) else json.dumps(
            list(v), separators=(',', ':'))
    return lvmfilter.parse_lvmconfig(
        f'global_filter={value(global_filter)}\nfilter={value(filter)}\n')


@ddt.ddt
class DrbdScanTestCase(base.TestCase):
    """Whether LVM's device filters let it open DRBD devices."""

    def test_names(self):
        self.assertEqual(['/dev/drbd1000', '/dev/block/147:1000',
                          '/dev/drbd/by-res/volume-x/0',
                          '/dev/drbd/by-disk/blackstor/volume-x'], NAMES)

    @ddt.data(
        (WHITELIST, ['a|.*|']),
        (['r|^/dev/drbd|', 'r|^/dev/block/147:|', 'a|.*|'], ['a|.*|']),
        # filter keeps DRBD out even though global_filter lets it in
        (['a|.*|'], ['r|^/dev/drbd|', 'r|^/dev/block/147:|', 'a|.*|']),
        # other delimiters; ( [ { close with their pair
        (['r#^/dev/drbd#', 'r(^/dev/block/147:)', 'a/.*/'], ['a|.*|']),
        (['a[^/dev/sdb$]', 'r{.*}'], ['a|.*|']),
        # a rejected name and none accepted: LVM leaves the device out
        (['r|^/dev/drbd|'], ['a|.*|']),
        (['a|^/dev/sdb$|', 'r|.*|'], WHITELIST),
    )
    @ddt.unpack
    def test_safe(self, global_filter, filter):
        self.assertIsNone(lvmfilter.scan_problem(
            lvmconfig(global_filter, filter), NAMES))

    @ddt.data(
        # LVM's default
        (['a|.*|'], ['a|.*|'], '/dev/drbd1000, /dev/block/147:1000'),
        # udev's /dev/block/147:N is accepted: the VM tier's hang
        (['r|^/dev/drbd|', 'a|.*|'], ['a|.*|'], 'accepts /dev/block/147:1000'
         ' and devices/filter'),
        # nothing matches any name: LVM passes the device
        (['a|^/dev/sdb$|'], ['a|.*|'], 'global_filter matches none'),
        (['r|^/dev/drbd[0-9]|', 'a|.*|'], ['a|.*|'],
         '/dev/drbd/by-res/volume-x/0'),
        # a device passes each filter by another name: still scanned
        (['r|^/dev/drbd|', 'a|.*|'], ['r|^/dev/block|', 'a|.*|'],
         'global_filter accepts /dev/block/147:1000 and devices/filter '
         'accepts /dev/drbd1000'),
        ('"a|drbd|"', ['a|.*|'], 'accepts /dev/drbd1000'),
    )
    @ddt.unpack
    def test_scanned(self, global_filter, filter, why):
        problem = lvmfilter.scan_problem(lvmconfig(global_filter, filter),
                                         NAMES)
        self.assertIn('LVM would scan DRBD devices', problem)
        self.assertIn(why, problem)
        for word in ('lvm.conf', 'global_filter', '"a|^/dev/sdb$|", '
                     '"r|.*|"'):
            self.assertIn(word, problem)

    @ddt.data(
        ('3', 'not a list of quoted patterns: 3'),
        ('[1,"a|x|"]', '[1,"a|x|"]'),
        ('["a|x|"', '["a|x|"'),
        ('["a|x|" "r|y|"]', '["a|x|" "r|y|"]'),
        ('["x|drbd|"]', '"x|drbd|" is not a|regex| or r|regex|'),
        ('["a|drbd"]', '"a|drbd" does not end with its delimiter |'),
        ('["a(drbd("]', 'delimiter )'),
        ('["a|(x"]', '"a|(x" does not end'),
        ('["a|(|"]', 'pattern "a|(|": missing )'),
        ('["a||"]', '"a||" is not a|regex|'),
    )
    @ddt.unpack
    def test_unreadable(self, value, why):
        problem = lvmfilter.scan_problem(lvmconfig(WHITELIST, value), NAMES)
        self.assertIn('devices/filter in lvm.conf cannot be used', problem)
        self.assertIn(why, problem)

    def test_option_missing(self):
        problem = lvmfilter.scan_problem({'filter': '["a|.*|"]'}, NAMES)
        self.assertIn('did not report devices/global_filter', problem)

    def test_escapes(self):
        # lvmconfig escapes " and \ in strings
        self.assertEqual(
            [(True, 'a"b'), (False, r'\.x')],
            [(a, r.pattern) for a, r in lvmfilter.parse_filter(
                r'["a|a\"b|", "r/\\.x/"]')])

    def test_first_matching_pattern_decides(self):
        patterns = lvmfilter.parse_filter('["a|drbd1000|","r|drbd|"]')
        self.assertTrue(lvmfilter.passes(patterns, ['/dev/drbd1000']))
        self.assertFalse(lvmfilter.passes(patterns, ['/dev/drbd1001']))
        self.assertTrue(lvmfilter.passes(patterns, ['/dev/sdb']))
