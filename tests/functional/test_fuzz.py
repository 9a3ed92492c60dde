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
"""The node agent fuzzed through its real request path (see fuzz.py).

This layer sends a slice of :data:`SLICE` requests; ``tox -e fuzz`` sends
``BLACKSTOR_FUZZ_REQUESTS`` (12,000). ``BLACKSTOR_FUZZ_SEED`` replays a
run; the counts go to stderr and to ``.cache/fuzz/last-fuzz.txt``.
"""

from __future__ import annotations

import configparser
import logging
import os
import pathlib
import sys
import unittest

import fixtures
import testtools
from testtools import content

from blackstor_cinder import protocol
from tests.functional import cluster_box
from tests.functional import fuzz

SLICE = 2000
MiB = 1 << 20
REPORT = (pathlib.Path(__file__).resolve().parents[2] / '.cache' / 'fuzz'
          / 'last-fuzz.txt')


class _Recording:
    """A transport that keeps every request the controller sends."""

    def __init__(self, real, node: str, sink: list) -> None:
        self.real, self.node, self.sink = real, node, sink

    def call(self, request: dict, timeout: float | None = None) -> dict:
        self.sink.append((self.node, dict(request)))
        return self.real.call(request, timeout=timeout)

    def close(self) -> None:
        self.real.close()


class AgentFuzzTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        why = cluster_box.missing_prerequisites()
        if why:
            raise unittest.SkipTest(why)
        self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        self.box = self.useFixture(cluster_box.ClusterInABox(
            storage=('stor-a',), hypervisors=('hv-1',), transport='local'))
        for node in self.box.nodes.values():
            config = configparser.ConfigParser()
            config.read(node.config)
            config['node']['attach_timeout'] = str(fuzz.ATTACH_WAIT)
            with open(node.config, 'w') as f:
                config.write(f)

    def seeds(self) -> list[dict]:
        """What the real controller sends through a flow, left in place.

        It leaves a volume (attached once, extended, reverted), its
        snapshot and a clone on the node, so mutated requests meet
        resources that exist.
        """
        sent: list = []
        real = self.box.transport_for
        self.box.transport_for = lambda node: _Recording(real(node),
                                                         node.name, sent)
        ctl = self.box.controller(connect_timeout=30.0)
        vol, clone, gone = ('volume-fuzz-a', 'volume-fuzz-b',
                            'volume-fuzz-c')
        snap, gone_snap = 'snap-fuzz-a', 'snap-fuzz-c'
        ctl.create_volume(vol, 64 * MiB, replicas=1)
        ctl.attach(vol, 'hv-1')
        ctl.create_snapshot(vol, snap)
        ctl.create_volume_from_snapshot(clone, snap, vol, 64 * MiB,
                                        64 * MiB)
        ctl.extend_volume(vol, 128 * MiB)
        ctl.detach(vol, 'hv-1')
        ctl.revert_to_snapshot(vol, snap, 64 * MiB, 128 * MiB)
        ctl.create_volume(gone, 64 * MiB, replicas=1)
        ctl.create_snapshot(gone, gone_snap)
        ctl.delete_snapshot(gone_snap)
        ctl.delete_volume(gone)
        ctl.stats()
        return [request for _node, request in sent]

    def test_fuzz(self):
        count = int(os.environ.get('BLACKSTOR_FUZZ_REQUESTS', SLICE))
        seed = int(os.environ.get('BLACKSTOR_FUZZ_SEED', 13))
        seeds = self.seeds()
        examples = fuzz.schema_examples(seeds)
        # The schema says which ops exist; each must have an example.
        self.assertEqual(sorted(protocol.OPS), sorted(examples))
        generator = fuzz.Generator(examples, seed)
        nodes = [fuzz.Node(name, self.box.node_env(name),
                           self.box.nodes[name].resource_dir,
                           self.box.nodes[name].dir / 'locks')
                 for name in ('stor-a', 'hv-1')]
        checker = fuzz.Checker(self.box.agent, nodes, self.box.standin.root,
                               self.box.dir)
        self.addCleanup(checker.close)
        rng_node = generator.rng
        try:
            for _ in range(count):
                node = nodes[0] if rng_node.random() < 0.85 else nodes[1]
                checker.send(generator.case(), node)
        finally:
            report = (f'fuzz: seed {seed}, {len(seeds)} controller '
                      f'requests, {sum(map(len, examples.values()))} '
                      f'examples\n' + checker.report())
            sys.stderr.write(report + '\n')
            self.addDetail('fuzz', content.text_content(report))
            REPORT.parent.mkdir(parents=True, exist_ok=True)
            REPORT.write_text(report + '\n')
        self.assertEqual(count, checker.counts['sent'])
        # Both paths ran, and some requests got through validation.
        self.assertGreater(checker.counts['one-shot'], 0)
        self.assertGreater(checker.counts['session'], count // 2)
        self.assertGreater(checker.codes['ok'], 0)
