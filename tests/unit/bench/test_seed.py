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
"""The seeding's rewrite of one volume's identity (tests/functional/seed).

The functional test_seed compares a seeded volume with a created one on
a box; here the rewrite itself, on a template's text and records.
"""

from blackstor_cinder.node import resrender
from blackstor_cinder import protocol
from tests.functional import seed
from tests.unit import base
from tests.unit.node import samples

OLD = {'name': 'volume-old', 'minor': 1000, 'port': 7000,
       'secret': 'Secret_0123456789abcdef'}
NEW = {'name': 'volume-new', 'minor': 1234, 'port': 7321,
       'secret': 'Other_fedcba9876543210', 'tag': 'ab' * 16}


def template():
    spec = samples.spec(1000, 7000, hosts=[
        ('nodea', 0, '10.0.0.1', 'vg0'), ('nodeb', 1, '10.0.0.2', 'vg0'),
        ('nodec', 2, '10.0.0.3', 'vg0')])
    # the secret as the agent's store writes it into the file
    return resrender.render('volume-old', spec).replace(
        protocol.SECRET_PLACEHOLDER, OLD['secret'])


class RewriteTestCase(base.TestCase):

    def test_text_is_the_new_volumes(self):
        text = template()
        self.assertEqual((1000, 7000, OLD['secret']), seed._identity(text))
        new = seed._Rewrite(OLD, NEW).text(text)
        self.assertEqual((1234, 7321, NEW['secret']), seed._identity(new))
        self.assertNotIn('volume-old', new)
        self.assertEqual(text.count('volume-old'), new.count('volume-new'))
        # nothing else changed
        self.assertEqual(text.replace('volume-old', 'volume-new')
                         .replace(OLD['secret'], NEW['secret'])
                         .replace('minor 1000;', 'minor 1234;')
                         .replace(':7000;', ':7321;'), new)

    def test_records(self):
        record = {
            'vols': {'0': {'minor': 1000, 'size': 1000,
                           'disk': '/dev/vg0/volume-old'}},
            'conns': {'1': {'name': 'nodeb',
                            'net': {'shared-secret': OLD['secret']},
                            'paths': [['ipv4:10.0.0.1:7000',
                                       'ipv4:10.0.0.2:7000']]}},
            'tags': ['blackstor', 'blackstor-create-' + 'cd' * 16],
            'port_like': 7000, 'volume-old': True}
        got = seed._Rewrite(OLD, NEW).data(record)
        self.assertEqual({
            'vols': {'0': {'minor': 1234, 'size': 1000,
                           'disk': '/dev/vg0/volume-new'}},
            'conns': {'1': {'name': 'nodeb',
                            'net': {'shared-secret': NEW['secret']},
                            'paths': [['ipv4:10.0.0.1:7321',
                                       'ipv4:10.0.0.2:7321']]}},
            'tags': ['blackstor', 'blackstor-create-' + NEW['tag']],
            'port_like': 7000, 'volume-new': True}, got)

    def test_template_must_have_one_identity(self):
        text = template()
        for bad in (text.replace('minor 1000;', 'minor 1001;', 1),
                    text.replace(':7000;', ':7001;', 1),
                    text.replace('shared-secret', 'x-secret')):
            self.assertRaises(seed.SeedError, seed._identity, bad)
