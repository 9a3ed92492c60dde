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

from blackstor_cinder.cluster import autoheal
from tests.unit.cluster import test_heal


class AutoHealTest(test_heal.HealTestCase):

    def test_heals_after_the_delay_once(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        now = [100.0]
        auto = autoheal.AutoHeal(self.ctl, after=60, parallel=2,
                                 clock=lambda: now[0])
        self.cluster.down.add('n1')
        self.assertIsNone(auto.observe(['n1']))
        now[0] += 59
        self.assertIsNone(auto.observe(['n1']))
        now[0] += 2
        self.assertEqual('n1', auto.observe(['n1']))
        auto.wait(10)
        self.assertTrue(auto.last.ok)
        self.assertEqual({'node': 'n1', 'total': 1, 'done': 1, 'failed': 0,
                          'running': 0}, auto.progress.as_dict())
        now[0] += 100
        self.assertIsNone(auto.observe(['n1']))     # not twice
        self.assertNotIn('n1', self.replicas('volume-a', 'n2'))
        # a node back up and down again starts its delay anew
        self.assertIsNone(auto.observe([]))
        self.assertIsNone(auto.observe(['n1']))
