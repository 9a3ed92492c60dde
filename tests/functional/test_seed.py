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
"""A seeded volume is what a real create leaves (tests/functional/seed.py).

One volume created through the controller is the template; two are
seeded from it; then a third is created for real. The seeded one and the
really created one are compared on every node, with each one's own
identity (name, minor, port, secret, create tag) replaced by
placeholders: the .res text, the stand-in kernel's and LVM's records,
the agent's inventory entries (full and brief), ``drbdadm dump all``
and ``drbdsetup status --json``. Then the seeded ones are deleted
through the controller and the box is empty.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid

from blackstor_cinder.cluster import inventory
from tests.functional import seed
from tests.functional import test_flows
from tests.standin import state

MiB = 1 << 20
_GENERATION = re.compile(r'^[0-9A-F]{16}$')


def ident_minor(reply: dict, name: str) -> bool | None:
    """Whether the inventory counts ``name``'s minor as used."""
    entry = reply['resources'].get(name) or {}
    minor = (entry.get('definition') or {}).get('minor')
    return None if minor is None else minor in reply['used_minors']


class SeedTestCase(test_flows.BoxTestCase):

    box_args = {'transport': 'local'}
    counting = 'seed checks'

    def _identity(self, name: str) -> dict:
        node = self.box.nodes['stor-a']
        text = (node.resource_dir / f'{name}.res').read_text()
        minor, port, secret = seed._identity(text)
        with state.locked(self.box.standin.root) as sess:
            tags = sess.nodes['stor-a']['vgs']['blackstor']['lvs'][name][
                'tags']
        tag = [t[len('blackstor-create-'):] for t in tags
               if t.startswith('blackstor-create-')]
        self.assertEqual(1, len(tag), tags)
        return {'name': name, 'minor': minor, 'port': port,
                'secret': secret, 'tag': tag[0]}

    def _normal(self, value, ident: dict):
        """``value`` with ``ident``'s fields as placeholders."""
        text = json.dumps(value, sort_keys=True)
        text = text.replace(ident['name'], '<NAME>')
        text = text.replace(ident['secret'], '<SECRET>')
        text = text.replace(ident['tag'], '<TAG>')
        text = re.sub(rf'\bminor {ident["minor"]};', 'minor <MINOR>;', text)
        text = re.sub(rf'"minor": {ident["minor"]}\b', '"minor": "<MINOR>"',
                      text)
        text = re.sub(rf'/dev/drbd{ident["minor"]}\b', '/dev/drbd<MINOR>',
                      text)
        text = re.sub(rf':{ident["port"]}\b', ':<PORT>', text)
        text = re.sub(rf'"port": {ident["port"]}\b', '"port": "<PORT>"',
                      text)
        return json.loads(text)

    def _state(self, name: str) -> dict:
        """Everything of ``name`` that the nodes hold, by node."""
        found = {}
        with state.locked(self.box.standin.root) as sess:
            for node, rec in sess.nodes.items():
                found[f'{node}:kernel'] = rec.get('drbd', {}).get(name)
                for vg, vrec in rec.get('vgs', {}).items():
                    found[f'{node}:lv:{vg}'] = vrec['lvs'].get(name)
        for node in self.box.nodes.values():
            path = node.resource_dir / f'{name}.res'
            found[f'{node.name}:res'] = (path.read_text() if path.exists()
                                         else None)
            if path.exists():
                found[f'{node.name}:res-mode'] = oct(path.stat().st_mode)
            if node.storage:
                for brief in (False, True):
                    request = {'op': 'inventory'}
                    if brief:
                        request['brief'] = True
                    reply = self.box.run_agent(node.name, request)
                    found[f'{node.name}:inventory:{brief}'] = {
                        'resource': reply['resources'].get(name),
                        'volumes': [e for e in reply['volumes']
                                    if e['name'] == name],
                        'minor': ident_minor(reply, name)}
            found[f'{node.name}:status'] = [
                r for r in self.box.standin.status(node.name) or []
                if r.get('name') == name]
        return found

    def _delete(self, names: list[str]) -> None:
        for name in names:
            self.ctl.delete_volume(name)        # not found is success

    def test_seeded_volume_is_a_created_one(self):
        template = f'volume-{uuid.uuid4()}'
        real = f'volume-{uuid.uuid4()}'
        names = [template, real]
        self.addCleanup(self._delete, names)
        self.ctl.create_volume(template, 64 * MiB, replicas=3)
        seeded = seed.seed(self.box, template, 2)
        names += seeded
        self.assertEqual(2, len(seeded))
        self.ctl.create_volume(real, 64 * MiB, replicas=3)
        self.cases.append('seed vs create')
        ids = {n: self._identity(n) for n in [template, real] + seeded}
        # every identity its own: the real create after the seeding chose
        # minors and ports the seeded volumes do not hold
        for key in ('minor', 'port', 'secret', 'tag'):
            self.assertEqual(4, len({i[key] for i in ids.values()}), key)
        want = self._normal(self._state(real), ids[real])
        got = self._normal(self._state(seeded[0]), ids[seeded[0]])
        self.assertIsNotNone(want['stor-a:kernel'])
        self.assertEqual(sorted(want), sorted(got))
        for key in want:
            self.assertEqual(want[key], got[key], key)
        # the inventory lists them as the controller reads it
        reply = self.box.inventory('stor-b')
        names = set(inventory.by_name(reply.get('resources')))
        self.assertTrue(set(seeded) | {template, real} <= names, names)
        for node in self.box.storage_names:
            proc = subprocess.run(
                ['drbdadm', '-c', str(self.box.nodes[node].dir /
                                      'drbd.conf'), 'dump', 'all'],
                env=self.box.node_env(node), capture_output=True,
                text=True, timeout=60)
            self.assertEqual(0, proc.returncode, proc.stderr)
            for name in seeded:
                self.assertIn(f'resource {name} {{', proc.stdout)
        self._delete(names)
        self.assertEqual({}, self.box.leftovers())

    def test_seed_refuses_what_does_not_fit(self):
        template = f'volume-{uuid.uuid4()}'
        self.addCleanup(self._delete, [template])
        self.ctl.create_volume(template, 64 * MiB, replicas=3)
        self.cases.append('seed refuses')
        before = self.box.leftovers()
        self.assertRaises(seed.SeedError, seed.seed, self.box, template,
                          5000)
        self.assertEqual(before, self.box.leftovers())
        self.assertRaises(seed.SeedError, seed.seed, self.box,
                          'volume-nothere', 1)
        self.ctl.delete_volume(template)
        self.assertEqual({}, self.box.leftovers())
