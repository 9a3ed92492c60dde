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
"""``tox -e bench``: the driver's operations at 0, 100, 1,000 volumes.

The real ``BlackStorDriver`` (as cinder-volume runs it) on a cluster in a
box (3 storage nodes, 2 hypervisors, the real SSH transport, real agents
and drbdadm, the stand-in kernel and LVM). For each scale the box is first
populated to that many volumes through the driver itself (real creates:
every one a resource the agents see), then each operation is run
``--rounds`` times: create, snapshot, clone, attach, detach, delete, and
``get_volume_stats``. Per operation: median and p95 latency, agent round
trips (counted by the transports: the busiest node and the total), bytes
(requests + replies), the CPU seconds of this process (the cinder-volume
side: driver, controller, paramiko). Written as JSON
(``.cache/bench/last-bench.json``) and printed as a table with the
targets beside the figures.

    python -m tests.bench.run [--scales 0,100,1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import os
import pathlib
import platform
import sys
import tempfile
import time
import uuid

from cinder import context
from cinder.tests.unit import fake_snapshot
from cinder.tests.unit import fake_volume
import fixtures

from tests.bench import reference
from tests.bench import report
from tests.functional import cluster_box
from tests.functional import driver_fixture
from tests.functional import seed

BACKEND = 'blackstor-bench'
CACHE = pathlib.Path(__file__).resolve().parents[2] / '.cache' / 'bench'
HOST = 'hv-1'
GiB = 1 << 30
RANGES = {'blackstor_minor_range': '1000-3999',
          'blackstor_port_range': '7000-9999'}


class Bench(fixtures.Fixture):
    """A box, the driver on it, and the measured operations."""

    def __init__(self, rounds: int, workers: int,
                 populate: str = 'seed', stats_only: bool = False) -> None:
        super().__init__()
        self.stats_only = stats_only
        self.rounds = rounds
        self.workers = workers
        self.how = populate
        self.populated = 0
        self.template = None

    def _setUp(self) -> None:
        # Thin LVs of sparse files: room for 1,000 volumes of 1 GiB with
        # two replicas, within max_over_subscription_ratio (20).
        # Minors and ports for 1,000 volumes and the measured ones.
        self.box = self.useFixture(cluster_box.ClusterInABox(
            pool_size=128 * GiB, options=RANGES))
        fixture = self.useFixture(driver_fixture.DriverFixture(
            self.box, BACKEND))
        self.ctxt = context.get_admin_context()
        self.drv = fixture.driver
        self.pool = self.drv.controller._transports
        self.ref = reference.Reference(self.box.standin, 128 * GiB)
        self.addCleanup(self.ref.close)
        self.connector = {'host': HOST, 'ip': self.box.nodes[HOST].address}

    # -- objects ----------------------------------------------------------

    def volume(self, size: int = 1):
        vtype = fake_volume.fake_volume_type_obj(self.ctxt, extra_specs={})
        vol = fake_volume.fake_volume_obj(
            self.ctxt, size=size, volume_type_id=vtype.id,
            id=str(uuid.uuid4()), encryption_key_id=None)
        vol.volume_type = vtype
        return vol

    def snapshot(self, vol):
        snap = fake_snapshot.fake_snapshot_obj(
            self.ctxt, id=str(uuid.uuid4()), volume_size=vol.size)
        snap.volume = vol
        return snap

    # -- population -------------------------------------------------------

    def populate(self, count: int) -> dict:
        """Volumes until there are ``count``: seeded or real creates.

        ``seed``: one real create through the driver (the template, the
        first time), then the state of the others written in one go
        (:mod:`tests.functional.seed`). ``real``: every one a create
        through the driver, ``workers`` at a time.
        """
        added = todo = count - self.populated
        started = time.monotonic()
        if todo <= 0:
            return {'added': 0, 'seconds': 0.0, 'how': self.how}
        if self.how == 'real':
            self._create(todo)
        else:
            if self.template is None:
                vol = self.volume()
                self.drv.create_volume(vol)
                self.template = f'volume-{vol.name_id}'
                todo -= 1
            seed.seed(self.box, self.template, todo)
        self.ref.seed(count)
        self.populated = count
        return {'added': added, 'how': self.how,
                'seconds': round(time.monotonic() - started, 1)}

    def _create(self, todo: int) -> None:
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            for _ in pool.map(lambda _: self.drv.create_volume(
                    self.volume()), range(todo)):
                pass

    # -- measuring --------------------------------------------------------

    def measured(self, samples: dict, op: str, call, *args):
        before = self.pool.traffic()
        cpu = time.process_time()
        started = time.monotonic()
        result = call(*args)
        seconds = time.monotonic() - started
        cpu = time.process_time() - cpu
        after = self.pool.traffic()
        trips = {node: t['round_trips'] - before.get(node, {}).get(
            'round_trips', 0) for node, t in after.items()}
        moved = sum(t['sent_bytes'] + t['received_bytes'] - (
            before.get(node, {}).get('sent_bytes', 0)
            + before.get(node, {}).get('received_bytes', 0))
            for node, t in after.items())
        samples.setdefault(op, []).append({
            'seconds': seconds, 'cpu_seconds': cpu,
            'round_trips': {n: c for n, c in trips.items() if c},
            'bytes': moved})
        return result

    def scale(self, count: int) -> dict:
        filled = self.populate(count)
        # Warm the transports (SSH connections, agent sessions) so that
        # the first round does not carry the connection set-up.
        self.drv.get_volume_stats(refresh=True)
        samples: dict[str, list] = {}
        ref_samples: dict[str, list] = {}
        for _ in range(self.rounds):
            if self.stats_only:
                self.measured(samples, 'stats', self.drv.get_volume_stats,
                              True)
                continue
            self.ref.round(ref_samples)
            vol = self.volume()
            self.measured(samples, 'create', self.drv.create_volume, vol)
            snap = self.snapshot(vol)
            self.measured(samples, 'snapshot', self.drv.create_snapshot,
                          snap)
            clone = self.volume()
            self.measured(samples, 'clone', self.drv.create_cloned_volume,
                          clone, vol)
            self.measured(samples, 'attach', self.drv.initialize_connection,
                          vol, self.connector)
            self.measured(samples, 'detach', self.drv.terminate_connection,
                          vol, self.connector)
            self.drv.delete_volume(clone)
            self.drv.delete_snapshot(snap)
            self.measured(samples, 'delete', self.drv.delete_volume, vol)
            self.measured(samples, 'stats', self.drv.get_volume_stats, True)
        stats = self.drv.get_volume_stats(refresh=True)
        return {'volumes': count, 'populate': filled,
                'total_volumes_reported': stats.get('total_volumes'),
                'degraded_volumes_reported': stats.get(
                    'blackstor_degraded_volumes'),
                'ops': {op: report.summary(s) for op, s in samples.items()},
                'reference': {op: report.summary(s)
                              for op, s in ref_samples.items()}}


def machine() -> dict:
    load = os.getloadavg()
    return {'cpus': os.cpu_count(), 'load_average': [round(x, 2)
                                                     for x in load],
            'python': platform.python_version(),
            'platform': platform.platform()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scales', default='0,100,1000')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--workers', type=int, default=4,
                        help='parallel creates while populating (real)')
    parser.add_argument('--populate', choices=('seed', 'real'),
                        default='seed',
                        help='seed: one real create, the other volumes '
                             'written directly (tests/functional/seed.py); '
                             'real: every one created through the driver')
    parser.add_argument('--out', default=str(CACHE / 'last-bench.json'))
    parser.add_argument('--stats-only', action='store_true',
                        help='measure get_volume_stats only')
    parser.add_argument('--max-populate-seconds', type=float, default=3600,
                        help='stop before a scale whose population would '
                             'take longer than this (estimated)')
    args = parser.parse_args(argv)
    scales = sorted(int(s) for s in args.scales.split(','))
    why = cluster_box.missing_prerequisites()
    if why:
        print(f'bench: cannot run: {why}', file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    results = {'machine_before': machine(), 'rounds': args.rounds,
               'scales': [], 'skipped': {}}
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='blackstor-bench-'):
        with Bench(args.rounds, args.workers, args.populate,
                   args.stats_only) as bench:
            rate = None                     # seconds per populated volume
            for count in scales:
                todo = count - bench.populated
                if rate and todo * rate > args.max_populate_seconds:
                    results['skipped'][count] = (
                        f'populating {todo} more volumes would take about '
                        f'{todo * rate / 60:.0f} min at '
                        f'{rate:.2f} s per volume')
                    print(f'bench: skipping {count}: '
                          f'{results["skipped"][count]}', file=sys.stderr)
                    break
                print(f'bench: {count} volumes ...', file=sys.stderr)
                try:
                    done = bench.scale(count)
                except Exception as exc:
                    # An op that fails here (the stand-in too slow for
                    # drbdadm's limits, say) ends the run with the figures
                    # so far and why, not with a traceback alone.
                    logging.exception('bench: %d volumes failed', count)
                    results['skipped'][count] = (
                        f'failed: {type(exc).__name__}: {exc}'[:600])
                    break
                if done['populate']['added']:
                    rate = (done['populate']['seconds']
                            / done['populate']['added'])
                results['scales'].append(done)
                out.write_text(json.dumps(results, indent=2))
    results['machine_after'] = machine()
    out.write_text(json.dumps(results, indent=2))
    print(report.table(results))
    print(f'(JSON: {out})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
