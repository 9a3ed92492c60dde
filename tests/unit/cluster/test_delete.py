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

"""Unit tests of ``cluster/delete.py``, through the Controller facade."""

from blackstor_cinder.cluster import errors
from tests.unit.cluster.test_controller import ControllerTestCase
from tests.unit.cluster.test_controller import G
from tests.unit.cluster.test_controller import VOL


class DeleteTest(ControllerTestCase):

    def test_delete_everywhere_and_twice(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())
        self.ctl.delete_volume(VOL)

    def test_delete_with_replica_down_converges(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.down.add('n2')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.delete_volume, VOL)
        self.cluster.down.clear()
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())

    def test_identities_reused_after_delete(self):
        first = self.ctl.create_volume(VOL, G)
        self.ctl.delete_volume(VOL)
        again = self.ctl.create_volume('volume-b', G)
        self.assertEqual((first.minor, first.port),
                         (again.minor, again.port))
