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
"""The base class of every unit test."""

import logging

import fixtures
import testtools

LOG_FORMAT = '%(levelname)s [%(name)s] %(message)s'


class TestCase(testtools.TestCase):
    """A testtools test whose log records are captured, whoever runs it.

    Every record (DEBUG and up) goes to a ``pythonlogging`` detail shown
    with a failure, not to the run's output: without this, the warnings
    of the fault cases and the transports' request logs land in the
    output of every run, and a test that configures logging (a CLI's
    ``--debug``) makes every later test in that process print. Unlike
    oslotest's ``BaseTestCase`` this does not depend on
    ``OS_LOG_CAPTURE``, so a direct ``stestr run`` captures too.
    """

    def setUp(self):
        super().setUp()
        self.logger = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG, format=LOG_FORMAT))
