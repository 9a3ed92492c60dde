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

import collections
import configparser
import os
import pathlib
import subprocess
import sys
import time
import unittest

import fixtures
import testtools
from testtools import content

from blackstor_cinder import protocol
from tests.functional import cluster_box
from tests.functional import fuzz

SLICE = 2000
MiB = 1 << 20
ROOT = pathlib.Path(__file__).resolve().parents[2]
REPORT = ROOT / '.cache' / 'fuzz' / 'last-fuzz.txt'


class _Recording:
    """A transport that keeps every request the controller sends."""

    def __init__(self, real, node: str, sink: list) -> None:
        self.real, self.node, self.sink = real, node, sink

    def call(self, request: dict, timeout: float | None = None) -> dict:
        self.sink.append((self.node, dict(request)))
        return self.real.call(request, timeout=timeout)

    def close(self) -> None:
        self.real.close()


def _box() -> cluster_box.ClusterInABox:
    box = cluster_box.ClusterInABox(storage=('stor-a',),
                                    hypervisors=('hv-1',), transport='local')
    box.setUp()
    for node in box.nodes.values():
        config = configparser.ConfigParser()
        config.read(node.config)
        config['node']['attach_timeout'] = str(fuzz.ATTACH_WAIT)
        with open(node.config, 'w') as f:
            config.write(f)
    return box


def _seeds(box: cluster_box.ClusterInABox) -> list[dict]:
    """What the real controller sends through a flow, left in place.

    It leaves a volume (attached once, extended, reverted), its snapshot
    and a clone on the node, so mutated requests meet resources that
    exist.
    """
    sent: list = []
    real = box.transport_for
    box.transport_for = lambda node: _Recording(real(node), node.name, sent)
    ctl = box.controller(connect_timeout=30.0)
    vol, clone, gone = 'volume-fuzz-a', 'volume-fuzz-b', 'volume-fuzz-c'
    snap, gone_snap = 'snap-fuzz-a', 'snap-fuzz-c'
    ctl.create_volume(vol, 64 * MiB, replicas=1)
    ctl.attach(vol, 'hv-1')
    ctl.create_snapshot(vol, snap)
    ctl.create_volume_from_snapshot(clone, snap, vol, 64 * MiB, 64 * MiB)
    ctl.extend_volume(vol, 128 * MiB)
    ctl.detach(vol, 'hv-1')
    ctl.revert_to_snapshot(vol, snap, 64 * MiB, 128 * MiB)
    ctl.create_volume(gone, 64 * MiB, replicas=1)
    ctl.create_snapshot(gone, gone_snap)
    ctl.delete_snapshot(gone_snap)
    ctl.delete_volume(gone)
    ctl.stats()
    return [request for _node, request in sent]


def run(count: int, seed: int) -> str:
    """Fuzz a fresh box with ``count`` requests; the report.

    Raises fuzz.Failure at the first request that breaks a rule.
    """
    box = _box()
    try:
        seeds = _seeds(box)
        examples = fuzz.schema_examples(seeds)
        # The schema says which ops exist; each must have an example.
        if sorted(examples) != sorted(protocol.OPS):
            raise fuzz.Failure(f'no example of '
                               f'{sorted(set(protocol.OPS) - set(examples))}')
        generator = fuzz.Generator(examples, seed)
        nodes = [fuzz.Node(name, box.node_env(name),
                           box.nodes[name].resource_dir,
                           box.nodes[name].dir / 'locks')
                 for name in ('stor-a', 'hv-1')]
        checker = fuzz.Checker(box.agent, nodes, box.standin.root, box.dir)
        try:
            for _ in range(count):
                node = nodes[0] if generator.rng.random() < 0.85 else nodes[1]
                checker.send(generator.case(), node)
        finally:
            checker.close()
            report = (f'fuzz: seed {seed}, {len(seeds)} controller '
                      f'requests, {sum(map(len, examples.values()))} '
                      f'examples\n' + checker.report())
            REPORT.parent.mkdir(parents=True, exist_ok=True)
            REPORT.write_text(report + '\n')
            sys.stderr.write(report + '\n')
        # Both paths ran, and some requests got through validation.
        if not (checker.counts['sent'] == count
                and checker.counts['one-shot'] > 0
                and checker.counts['session'] > count // 2
                and checker.codes['ok'] > 0):
            raise fuzz.Failure(f'too little was exercised:\n{report}')
        return report
    finally:
        box.cleanUp()


class AgentFuzzTest(testtools.TestCase):
    """The fuzz in an interpreter of its own.

    The test process imports Cinder for other tests, which patches it with
    eventlet; the harness's pipes and timeouts stalled under that patching.
    """

    def test_fuzz(self):
        why = cluster_box.missing_prerequisites()
        if why:
            raise unittest.SkipTest(why)
        count = int(os.environ.get('BLACKSTOR_FUZZ_REQUESTS', SLICE))
        seed = int(os.environ.get('BLACKSTOR_FUZZ_SEED', 13))
        proc = subprocess.run(
            [sys.executable, '-m', 'tests.functional.test_fuzz', str(count),
             str(seed)], capture_output=True, text=True, cwd=ROOT,
            timeout=600 + count)
        self.addDetail('fuzz', content.text_content(proc.stderr))
        sys.stderr.write(proc.stderr[-3000:])
        self.assertEqual(0, proc.returncode, proc.stderr[-6000:])
        self.assertIn(f'fuzz: sent {count} requests', proc.stdout)


class LeakedLocksTest(testtools.TestCase):
    """The checker's rule for lock files: left over = unheld and staying."""

    def setUp(self):
        super().setUp()
        self.dir = pathlib.Path(self.useFixture(
            fixtures.TempDir()).path)

    def test_an_unheld_lock_file_is_left_over(self):
        (self.dir / 'volume-1.lock').touch()
        self.assertEqual(['volume-1.lock'],
                         fuzz.leaked_locks(self.dir, settle=0.3))

    def test_a_lock_a_live_process_holds_is_not(self):
        # As a suspend lease holds the resource's lock while it resumes.
        path = self.dir / 'volume-1.lock'
        holder = subprocess.Popen(
            ['flock', str(path), 'sleep', '30'])
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        fuzz_wait = 50
        while not _held(path) and fuzz_wait:
            fuzz_wait -= 1
            time.sleep(0.1)
        holders = collections.Counter()
        self.assertEqual([], fuzz.leaked_locks(self.dir, settle=0.3,
                                               holders=holders))
        self.assertEqual(['flock volume-1.lock sleep'], list(holders))

    def test_none(self):
        self.assertEqual([], fuzz.leaked_locks(self.dir / 'missing'))


def _held(path: pathlib.Path) -> bool:
    return path.exists() and fuzz._holder(path.stat().st_ino) != 'unknown'


def main(argv: list[str]) -> int:
    count, seed = (int(a) for a in argv)
    try:
        print(run(count, seed))
    except fuzz.Failure as e:
        sys.stderr.write(f'FUZZ FAILURE: {e}\n')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
