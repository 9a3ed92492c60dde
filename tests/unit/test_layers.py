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
"""The import direction of the package's layers, and their modules' size.

``node/`` (the agent on every node, and the diskless client it shares
with the os-brick connector) and ``cluster/`` (the flows) never import
the layers above them (the Cinder driver, the connector, the CLI), nor
Cinder or os-brick; ``node/`` imports nothing of ``cluster/``. Imports
inside functions count too: a lazy import hides the direction, it does
not change it.
"""

import ast
import pathlib

import ddt
import fixtures

import blackstor_cinder
from tests.unit import base

PACKAGE = pathlib.Path(blackstor_cinder.__file__).parent
#: the modules below the driver that both layers may use
SHARED = {'blackstor_cinder.protocol', 'blackstor_cinder.session'}
FORBIDDEN_THIRD_PARTY = ('cinder', 'os_brick', 'nova', 'eventlet')
ALLOWED = {
    'node': ('blackstor_cinder.node',),
    'cluster': ('blackstor_cinder.cluster', 'blackstor_cinder.node'),
}
#: One concept per module: no module of these packages grows past this.
MAX_MODULE_LINES = 500
#: The packages held to it here (test_module_size.py holds every module of
#: the package to the same limit).
SIZED = ('node', 'protocol')
#: node/ runs as a short-lived CLI on every node: importing
#: oslo.concurrency (and with it eventlet, on older releases) costs more
#: than most requests take
NODE_SLOW_IMPORTS = ('oslo_concurrency',)


def imports_of(path: pathlib.Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module)
            # "from blackstor_cinder import connector" names a module
            found |= {f'{node.module}.{alias.name}' for alias in node.names
                      if node.module == 'blackstor_cinder'}
    return found


def violations(layer: str) -> dict[str, list[str]]:
    bad = {}
    # Subpackages too (cluster/transport/).
    for path in sorted((PACKAGE / layer).rglob('*.py')):
        wrong = []
        for name in sorted(imports_of(path)):
            top = name.split('.')[0]
            if top in FORBIDDEN_THIRD_PARTY:
                wrong.append(name)
            elif layer == 'node' and top in NODE_SLOW_IMPORTS:
                wrong.append(name)
            elif (name.startswith('blackstor_cinder.')
                  and name not in SHARED
                  and not name.startswith(ALLOWED[layer])):
                wrong.append(name)
        if wrong:
            bad[str(path.relative_to(PACKAGE))] = wrong
    return bad


@ddt.ddt
class ImportDirectionTest(base.TestCase):

    @ddt.data('node', 'cluster')
    def test_layer_imports_nothing_above_it(self, layer):
        self.assertEqual({}, violations(layer))

    @ddt.data(*SIZED)
    def test_modules_stay_small(self, package):
        sizes = {path.name: len(path.read_text().splitlines())
                 for path in (PACKAGE / package).glob('*.py')}
        self.assertTrue(sizes)
        self.assertEqual({}, {name: lines for name, lines in sizes.items()
                              if lines >= MAX_MODULE_LINES})

    def test_a_lazy_upward_import_is_found(self):
        # The check must be able to fail: an import inside a function.
        path = pathlib.Path(self.useFixture(fixtures.TempDir()).path,
                            'lazy.py')
        path.write_text('def f():\n'
                        '    from blackstor_cinder import connector\n'
                        '    import os_brick.exception\n')
        self.assertEqual({'blackstor_cinder', 'blackstor_cinder.connector',
                          'os_brick.exception'}, imports_of(path))

    def test_every_module_above_is_refused_below(self):
        # The Cinder layer's modules beside driver.py (driver_stats.py,
        # driver_manage.py, ...) are above both layers, whatever their name.
        above = sorted(f'blackstor_cinder.{path.stem}'
                       for path in PACKAGE.glob('*.py')
                       if path.stem != '__init__'
                       and f'blackstor_cinder.{path.stem}' not in SHARED)
        self.assertIn('blackstor_cinder.driver_stats', above)
        root = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        for layer in ALLOWED:
            (root / layer).mkdir()
            (root / layer / 'x.py').write_text(''.join(
                f'import {name}\n' for name in above))
        self.useFixture(fixtures.MonkeyPatch(
            'tests.unit.test_layers.PACKAGE', root))
        for layer in ALLOWED:
            self.assertEqual({f'{layer}/x.py': above}, violations(layer))

    def test_a_subpackage_is_checked(self):
        root = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        (root / 'cluster' / 'sub').mkdir(parents=True)
        (root / 'cluster' / 'sub' / 'x.py').write_text(
            'from blackstor_cinder import driver\n')
        self.useFixture(fixtures.MonkeyPatch(
            'tests.unit.test_layers.PACKAGE', root))
        self.assertEqual({'cluster/sub/x.py': ['blackstor_cinder.driver']},
                         violations('cluster'))
