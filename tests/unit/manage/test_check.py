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
"""check and check --fix."""

import json
from unittest import mock

import yaml

from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit.cluster import fakes
from tests.unit.manage import fakes as mf


class CheckTest(mf.ManageTestCase):

    def check(self, *extra, expect=None):
        code, out, err = self.run_main('check', '-f', 'json', *extra)
        if expect is not None:
            self.assertEqual(expect, code, err)
        return {(p['Kind'], p['Node'], p['Name']): p
                for p in json.loads(out)}

    def test_clean_cluster(self):
        self.two_volumes()
        code, out, err = self.run_main('check')
        self.assertEqual(0, code, err)
        # The headings only.
        self.assertEqual(['| Kind | Node | Name | Detail | Fix |'],
                         [x for x in out.splitlines() if x.startswith('|')])
        self.assertEqual({}, self.check(expect=0))

    def plant(self):
        """Orphans and inconsistencies of every kind."""
        self.two_volumes()
        n1, n2, n3 = (self.agent(n) for n in mf.STORAGE)
        n1.lvs['volume-orphan'] = mf.G                     # no .res anywhere
        n1.lvs['volume-origin'] = mf.G                     # has a snapshot
        n1.snapshots['snapshot-1'] = mf.G
        self.origins[('n1', 'snapshot-1')] = 'volume-origin'
        n2.snapshots['snapshot-2'] = mf.G                  # family gone
        for agent in (n1, n2, n3):                      # clone leftovers
            agent.snapshots['clone-volume-cccc'] = mf.G
            self.origins[(agent.name, 'clone-volume-cccc')] = mf.VOL_A
        text, secret = n3.res[mf.VOL_B]                    # divergent port
        port = fakes.parse_res(text)['hosts'][0]['port']
        n3.res[mf.VOL_B] = (
            text.replace(f':{port};', f':{port + 50};'), secret)
        del n2.res[mf.VOL_A]                               # replica lost .res
        n1.lvs.pop(mf.VOL_B)                               # .res without LV
        return port

    def test_names_what_an_interrupted_revert_left(self):
        self.two_volumes()
        self.agent('n2').lvs[mf.VOL_A + '.previous'] = mf.G
        found = self.check(expect=1)
        problem = found[('leftover-lv', 'n2', mf.VOL_A + '.previous')]
        self.assertIn(f'previous LV of an interrupted revert of {mf.VOL_A}',
                      problem['Detail'])
        # not an orphan volume, not a volume Cinder lacks, nothing removed
        self.assertEqual([('leftover-lv', 'n2', mf.VOL_A + '.previous')],
                         list(found))
        self.check('--fix', '--fix-orphan-lvs', expect=1)
        self.assertIn(mf.VOL_A + '.previous', self.agent('n2').lvs)

    def test_finds_planted_problems(self):
        self.plant()
        found = self.check(expect=1)
        expected = {
            ('orphan-lv', 'n1', 'volume-orphan'),
            ('orphan-lv', 'n1', 'volume-origin'),
            ('orphan-snapshot', 'n2', 'snapshot-2'),
            ('clone-snapshot', 'n1', 'clone-volume-cccc'),
            ('clone-snapshot', 'n2', 'clone-volume-cccc'),
            ('clone-snapshot', 'n3', 'clone-volume-cccc'),
            ('divergent-res', 'n3', mf.VOL_B),
            ('replica-missing-res', 'n2', mf.VOL_A),
            ('res-without-lv', 'n1', mf.VOL_B),
        }
        self.assertTrue(expected <= set(found), set(found))
        # snapshot-1 has its volume; the LV under a replica is no orphan
        self.assertNotIn(('orphan-snapshot', 'n1', 'snapshot-1'), found)
        self.assertNotIn(('orphan-lv', 'n2', mf.VOL_A), found)
        self.assertIn('other LVs are snapshots of it',
                      found[('orphan-lv', 'n1', 'volume-origin')]['Detail'])
        self.assertIn('port', found[('divergent-res', 'n3', mf.VOL_B)]
                      ['Detail'])
        self.assertEqual('report only', found[('orphan-snapshot', 'n2',
                                               'snapshot-2')]['Fix'])
        # Read-only: nothing but inventories was sent.
        self.assertEqual({'inventory'}, {r['op'] for _n, r in
                                         self.cluster.requests[-3:]})
        self.assertIn('volume-orphan', self.agent('n1').lvs)

    def test_fix_repairs_only_what_is_safe(self):
        port = self.plant()
        n1, n2, n3 = (self.agent(n) for n in mf.STORAGE)
        before = len(self.cluster.requests)
        found = self.check('--fix', expect=1)
        for node in mf.STORAGE:
            self.assertNotIn('clone-volume-cccc',
                             self.agent(node).snapshots)
            self.assertEqual('removed', found[('clone-snapshot', node,
                                               'clone-volume-cccc')]
                             ['Result'])
        self.assertEqual(fakes.parse_res(n1.res[mf.VOL_B][0]),
                         fakes.parse_res(n3.res[mf.VOL_B][0]))
        self.assertEqual(port, fakes.parse_res(n3.res[mf.VOL_B][0])
                         ['hosts'][0]['port'])
        self.assertEqual(n1.res[mf.VOL_B][1], n3.res[mf.VOL_B][1])
        self.assertIn(mf.VOL_A, n2.res)
        self.assertEqual(fakes.parse_res(n1.res[mf.VOL_A][0]),
                         fakes.parse_res(n2.res[mf.VOL_A][0]))
        self.assertTrue(found[('divergent-res', 'n3', mf.VOL_B)]['Result']
                        .startswith('adjusted'))
        # Not without --fix-orphan-lvs; and never what a snapshot needs.
        self.assertIn('volume-orphan', n1.lvs)
        self.assertIn('volume-origin', n1.lvs)
        self.assertIn('needs --fix-orphan-lvs',
                      found[('orphan-lv', 'n1', 'volume-orphan')]['Result'])
        self.assertIn('snapshot-2', n2.snapshots)
        self.assertIn('snapshot-1', n1.snapshots)
        self.assertIn(mf.VOL_B, n1.res)
        ops = {r['op'] for _n, r in self.cluster.requests[before:]}
        self.assertEqual({'inventory', 'status', 'adjust',
                          'snapshot-delete'}, ops)
        # No secret in what was printed.
        code, out, err = self.run_main('check', '--fix')
        self.assertNotIn(n1.res[mf.VOL_B][1], out + err)

    def test_fix_takes_the_volume_lock_without_waiting(self):
        self.plant()
        n3 = self.agent('n3')
        stale = n3.res[mf.VOL_B]
        held = mock.Mock()
        held.acquire.return_value = False       # a driver operation runs
        free = mock.Mock()
        free.acquire.return_value = True

        def lock(self_, name):
            return held if name == f'blackstor-resource-{mf.VOL_B}' else free
        with mock.patch.object(core.LocalLocks, '__call__', lock):
            found = self.check('--fix', expect=1)
        self.assertEqual('busy', found[('divergent-res', 'n3', mf.VOL_B)]
                         ['Result'])
        self.assertEqual(stale, n3.res[mf.VOL_B])
        held.acquire.assert_called_once_with(blocking=False)
        held.release.assert_not_called()
        # mf.VOL_A's lock was free: taken, its replica repaired, given back.
        self.assertTrue(found[('replica-missing-res', 'n2', mf.VOL_A)]
                        ['Result'].startswith('adjusted'))
        free.acquire.assert_called_once_with(blocking=False)
        free.release.assert_called_once_with()

    def test_fix_orphan_lvs(self):
        self.plant()
        found = self.check('--fix', '--fix-orphan-lvs', expect=1)
        n1 = self.agent('n1')
        self.assertNotIn('volume-orphan', n1.lvs)
        self.assertEqual('removed', found[('orphan-lv', 'n1',
                                           'volume-orphan')]['Result'])
        self.assertIn('volume-origin', n1.lvs)
        deletes = [(n, r) for n, r in self.cluster.requests
                   if r['op'] == 'delete']
        self.assertEqual([('n1', {'op': 'delete',
                                  'resource': 'volume-orphan',
                                  'pool': 'vg/pool'})], deletes)
        # What is left is only what --fix must not touch.
        left = self.check()
        self.assertEqual({('orphan-lv', 'n1', 'volume-origin'),
                          ('orphan-snapshot', 'n2', 'snapshot-2'),
                          ('res-without-lv', 'n1', mf.VOL_B)}, set(left))

    def test_fix_orphan_lvs_needs_fix(self):
        code, _out, err = self.run_main('check', '--fix-orphan-lvs')
        self.assertEqual(2, code)
        self.assertIn('--fix-orphan-lvs needs --fix', err)

    def test_orphan_lv_kept_while_a_node_is_unreachable(self):
        self.two_volumes()
        self.agent('n1').lvs['volume-orphan'] = mf.G
        self.cluster.down.add('n3')
        found = self.check('--fix', '--fix-orphan-lvs', expect=1)
        self.assertIn('volume-orphan', self.agent('n1').lvs)
        self.assertIn(('node-unreachable', 'n3', None), found)
        self.assertIn('unreachable', found[('orphan-lv', 'n1',
                                            'volume-orphan')]['Detail'])

    def test_orphan_lv_kept_when_origins_unknown(self):
        self.cluster.add('n1')              # no origins reported
        self.agent('n1').lvs['volume-orphan'] = mf.G
        found = self.check('--fix', '--fix-orphan-lvs', expect=1)
        self.assertIn('volume-orphan', self.agent('n1').lvs)
        self.assertIn('origins unknown', found[('orphan-lv', 'n1',
                                                'volume-orphan')]['Detail'])

    def test_orphan_lv_kept_when_drbd_runs_it(self):
        self.agent('n1').lvs['volume-orphan'] = mf.G
        with mock.patch.object(self.agent('n1'), 'op_status',
                               return_value={'exists': False,
                                             'state': {'name': 'x'}}):
            found = self.check('--fix', '--fix-orphan-lvs', expect=1)
        self.assertIn('volume-orphan', self.agent('n1').lvs)
        self.assertIn('DRBD runs', found[('orphan-lv', 'n1',
                                          'volume-orphan')]['Result'])

    def test_missing_replica_reported_not_fixed(self):
        self.two_volumes()
        n2 = self.agent('n2')
        del n2.res[mf.VOL_B]
        del n2.lvs[mf.VOL_B]
        found = self.check('--fix', expect=1)
        problem = found[('missing-replica', 'n2', mf.VOL_B)]
        self.assertEqual(('report only', ''),
                         (problem['Fix'], problem['Result']))
        self.assertNotIn(mf.VOL_B, n2.res)

    def test_no_majority_not_fixed(self):
        controller = self.controller()
        controller.create_volume(mf.VOL_A, mf.G, replicas=2)
        holders = [n for n in mf.STORAGE if mf.VOL_A in self.agent(n).lvs]
        agent = self.agent(holders[1])
        text, secret = agent.res[mf.VOL_A]
        port = fakes.parse_res(text)['hosts'][0]['port']
        agent.res[mf.VOL_A] = (
            text.replace(f':{port};', f':{port + 1};'), secret)
        found = self.check('--fix', expect=1)
        for node in holders:
            self.assertIn('no .res has a majority',
                          found[('divergent-res', node, mf.VOL_A)]['Detail'])
        self.assertEqual(text.replace(f':{port};', f':{port + 1};'),
                         agent.res[mf.VOL_A][0])

    def half_done_extend(self):
        controller = self.controller()
        controller.create_volume(mf.VOL_A, mf.G)
        first = sorted(n for n in mf.STORAGE
                       if mf.VOL_A in self.agent(n).res)[0]
        self.cluster.faults[(first, 'zeroing')] = [tp.NodeError(
            first, protocol.E_FAILED, 'zeroing failed: EIO')]
        self.assertRaises(errors.NodeOperationFailed,
                          controller.extend_volume, mf.VOL_A, 3 * mf.G)
        return first

    def test_pending_zeroing_reported_and_fixed_before_the_push(self):
        first = self.half_done_extend()
        found = self.check(expect=1)
        problem = found[('zeroing-pending', first, mf.VOL_A)]
        self.assertIn(f'[{mf.G}, {mf.G + fakes.MD_BYTES})', problem['Detail'])
        self.assertEqual('finish the zeroing (resize)', problem['Fix'])
        others = [n for n in mf.STORAGE if n != first]
        for node in others:
            self.assertIn(('divergent-res', node, mf.VOL_A), found)
        mark = len(self.cluster.requests)
        found = self.check('--fix', expect=0)
        steps = [(n, r['op']) for n, r in self.cluster.requests[mark:]
                 if r['op'] in ('resize', 'adjust')]
        # the zeroing first, whichever problem --fix took first
        self.assertEqual((first, 'resize'), steps[0])
        self.assertEqual(sorted((n, 'adjust') for n in others),
                         sorted(steps[1:]))
        self.assertIsNone(self.agent(first)._pending(mf.VOL_A))
        self.assertEqual({}, self.check(expect=0))

    def test_pending_zeroing_that_cannot_finish_blocks_the_push(self):
        first = self.half_done_extend()
        self.agent(first).held.add(mf.VOL_A)
        found = self.check('--fix', expect=1)
        self.assertIn('zeroing pending, not finished',
                      found[('zeroing-pending', first, mf.VOL_A)]['Result'])
        for node in mf.STORAGE:
            if node != first:
                self.assertEqual('1048576k', fakes.parse_res(
                    self.agent(node).res[mf.VOL_A][0])['disk']['size'])

    def test_cinder_volumes(self):
        self.two_volumes()
        self.agent('n1').lvs['volume-orphan'] = mf.G
        path = self.write('vols.json', json.dumps([mf.VOL_A]))
        found = self.check('--cinder-volumes', path, expect=1)
        self.assertEqual({('no-cinder-volume', 'n1, n2, n3', mf.VOL_B),
                          ('no-cinder-volume', 'n1', 'volume-orphan'),
                          ('orphan-lv', 'n1', 'volume-orphan')}, set(found))
        # IDs and "openstack volume list -f json" objects work too.
        path = self.write('vols2.json', json.dumps(
            ['aaaa', {'ID': 'bbbb', 'Name': 'my disk'},
             {'ID': 'x', 'name_id': 'orphan'}]))
        self.assertEqual({('orphan-lv', 'n1', 'volume-orphan')},
                         set(self.check('--cinder-volumes', path)))

    def test_orphan_lv_of_a_cinder_volume_kept(self):
        self.agent('n1').lvs['volume-orphan'] = mf.G
        path = self.write('vols.json', json.dumps(['volume-orphan']))
        found = self.check('--cinder-volumes', path, '--fix',
                           '--fix-orphan-lvs', expect=1)
        self.assertIn('a Cinder volume has this name',
                      found[('orphan-lv', 'n1', 'volume-orphan')]['Detail'])
        self.assertIn('volume-orphan', self.agent('n1').lvs)

    def test_bad_cinder_volumes_file(self):
        path = self.write('vols.json', '{"not": "a list"}')
        code, _out, err = self.run_main('check', '--cinder-volumes', path)
        self.assertEqual(2, code)
        self.assertIn('not a JSON list', err)

    def test_table_and_yaml(self):
        self.plant()
        code, out, _err = self.run_main('check')
        self.assertEqual(1, code)
        self.assertIn('clone-volume-cccc', out)
        code, out, _err = self.run_main('check', '-f', 'yaml')
        kinds = {p['Kind'] for p in yaml.safe_load(out)}
        self.assertIn('orphan-lv', kinds)
