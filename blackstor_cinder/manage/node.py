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
"""``blackstor-manage node lost|evacuate NODE``: move replicas off a node.

``node lost NODE`` (the node is down for good): every volume with a
replica there gets a new one on another storage node, synced in full
from the others, and NODE leaves every .res (``cluster.heal``).
``node evacuate NODE`` (the node is up): the same, live, the new replica
first and the old one removed once the new one is UpToDate. One row per
volume; exit 1 when a volume could not be moved (run the command again:
what was done is not done twice).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import heal
from blackstor_cinder.manage import command
from blackstor_cinder.manage import config

HEADS = ['Resource', 'From', 'To', 'Result', 'Snapshots']


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive '
                                         f'integer')
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive '
                                         f'number of seconds')
    return value


def _rows(report: heal.Report) -> list[list[Any]]:
    rows = []
    for res, target in sorted(report.moved.items()):
        rows.append([res, report.node, target, 'moved',
                     report.snapshots.get(res, [])])
    for res in sorted(report.done_before):
        rows.append([res, report.node, None, 'done before', []])
    for res, why in sorted(report.failed.items()):
        rows.append([res, report.node, None, f'failed: {why}',
                     report.snapshots.get(res, [])])
    for res, why in sorted(report.unplaced.items()):
        rows.append([res, report.node, None, f'not moved: {why}', []])
    for res, what in sorted(report.tiebreakers.items()):
        rows.append([res, report.node, None, what, []])
    return rows


class _Move(command.Lister):
    """Moves every replica off one node (see the subclasses)."""

    #: heal.node_lost or heal.evacuate.
    move: Callable[..., heal.Report]

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument('node', metavar='NODE',
                            help='a configured storage node')
        parser.add_argument('--parallel', type=_positive, metavar='N',
                            help='resyncs at once per node (default: '
                                 'blackstor_heal_parallel)')
        parser.add_argument('--sync-timeout', type=_seconds, metavar='S',
                            help='seconds to wait for one new replica '
                                 '(default: blackstor_heal_sync_timeout)')
        return parser

    def collect(self, controller: ctl.Controller, args: argparse.Namespace
                ) -> tuple[command.Table, int]:
        conf = args.conf
        parallel = args.parallel or getattr(
            conf, 'blackstor_heal_parallel', None) or 2
        timeout = args.sync_timeout or getattr(
            conf, 'blackstor_heal_sync_timeout', None) or heal.SYNC_TIMEOUT
        report = self.move(controller, args.node, parallel=parallel,
                           sync_timeout=timeout)
        word = 'healed' if report.kind == heal.LOST else 'evacuated'
        print(f'{config.PROG}: {word} {len(report.moved)} volume(s) off '
              f'{report.node} in {report.seconds:.1f}s; '
              f'{len(report.failed) + len(report.unplaced)} left',
              file=sys.stderr)
        for res, snaps in sorted(report.snapshots.items()):
            print(f'{config.PROG}: snapshot(s) {", ".join(snaps)} of {res} '
                  f'had a copy on {report.node}; the new replica has none '
                  f'(revert and clones from them need every replica: take '
                  f'a new snapshot)', file=sys.stderr)
        return ((HEADS, _rows(report)),
                config.EXIT_OK if report.ok else config.EXIT_PROBLEMS)


class NodeLost(_Move):
    """NODE is down for good: give its replicas new homes elsewhere.

    Every volume that had a replica there gets a new one on another
    storage node, and NODE leaves every .res (its return never brings its
    old data back).
    """

    move = staticmethod(heal.node_lost)


class NodeEvacuate(_Move):
    """NODE is up: move every replica off it, live.

    The new replica first, the old one removed once the new one is
    UpToDate; then NODE can leave the configuration.
    """

    move = staticmethod(heal.evacuate)
