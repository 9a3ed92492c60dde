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
"""Every unit test captures its logs (tests.unit.base)."""

import importlib
import inspect
import logging
import pathlib
import unittest

from tests.unit import base

UNIT = pathlib.Path(__file__).resolve().parent


class BaseTestCase(base.TestCase):

    def test_logs_are_captured(self):
        logging.getLogger('blackstor_cinder.cluster.transport').debug(
            'Request to %s', 'n1')
        logging.getLogger('blackstor_cinder').warning('careful')
        self.assertEqual(
            'DEBUG [blackstor_cinder.cluster.transport] Request to n1\n'
            'WARNING [blackstor_cinder] careful\n', self.logger.output)

    def test_every_unit_test_uses_the_base(self):
        outside = []
        for path in sorted(UNIT.rglob('test_*.py')):
            parts = path.relative_to(UNIT.parents[1]).with_suffix('').parts
            module = importlib.import_module('.'.join(parts))
            for name, cls in inspect.getmembers(module, inspect.isclass):
                if (cls.__module__ == module.__name__
                        and issubclass(cls, unittest.TestCase)
                        and not issubclass(cls, base.TestCase)):
                    outside.append(f'{module.__name__}.{name}')
        self.assertEqual([], outside)
