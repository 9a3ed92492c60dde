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
"""The benchmark's figures: summaries, targets and the printed table."""

from __future__ import annotations

import math
import statistics
from typing import Any

#: op -> the most agent round trips one node may take (issue 16).
ROUND_TRIP_TARGETS = {'create': 2, 'delete': 1, 'attach': 1,
                      'snapshot': 3, 'stats': 1}
#: create at the largest scale / create at 0 volumes, at most.
CREATE_RATIO_TARGET = 1.2
OPS = ('create', 'snapshot', 'clone', 'attach', 'detach', 'delete',
       'stats')
#: the ops Cinder's LVM driver has a counterpart of (tests/bench/reference)
REFERENCE_OPS = ('create', 'snapshot', 'clone', 'delete')


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (the p95 of 5 samples is the largest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """One op's samples -> median/p95 latency, round trips, bytes, CPU."""
    seconds = [s['seconds'] for s in samples]
    busiest = [max(s['round_trips'].values(), default=0) for s in samples]
    total = [sum(s['round_trips'].values()) for s in samples]
    return {
        'count': len(samples),
        'median_s': round(statistics.median(seconds), 4),
        'p95_s': round(percentile(seconds, 0.95), 4),
        # the most any one node took, the most of any sample
        'round_trips_per_node': max(busiest),
        'round_trips_total': max(total),
        'bytes_median': int(statistics.median(s['bytes'] for s in samples)),
        'cpu_s_median': round(statistics.median(
            s['cpu_seconds'] for s in samples), 4),
    }


def verdict(ok: bool) -> str:
    return 'ok' if ok else 'MISSED'


def table(results: dict[str, Any]) -> str:
    """The figures of every scale, the targets beside them."""
    head = (f'{"op":<9} {"volumes":>7} {"median s":>9} {"p95 s":>8} '
            f'{"trips/node":>10} {"target":>10} {"trips":>5} '
            f'{"KiB":>8} {"cpu s":>7}')
    lines = [head, '-' * len(head)]
    scales = results.get('scales') or []
    for op in OPS:
        for scale in scales:
            figures = scale['ops'].get(op)
            if not figures:
                continue
            target = ROUND_TRIP_TARGETS.get(op)
            mark = ('' if target is None else
                    f'<={target} ' + verdict(
                        figures['round_trips_per_node'] <= target))
            lines.append(
                f'{op:<9} {scale["volumes"]:>7} {figures["median_s"]:>9.3f} '
                f'{figures["p95_s"]:>8.3f} '
                f'{figures["round_trips_per_node"]:>10} {mark:>10} '
                f'{figures["round_trips_total"]:>5} '
                f'{figures["bytes_median"] / 1024:>8.1f} '
                f'{figures["cpu_s_median"]:>7.3f}')
    lines.append('')
    lines += reference_lines(scales)
    ratio = create_ratio(scales)
    if ratio is not None:
        largest, value = ratio
        lines.append(f'create at {largest} / create at 0 volumes (median): '
                     f'{value:.2f} (target <= {CREATE_RATIO_TARGET}: '
                     f'{verdict(value <= CREATE_RATIO_TARGET)})')
    for count, why in (results.get('skipped') or {}).items():
        lines.append(f'{count} volumes not measured: {why}')
    for scale in scales:
        filled = scale['populate']
        if filled['added']:
            how = ('seeded (1 real create, the rest written directly)'
                   if filled.get('how') == 'seed' else 'real creates')
            lines.append(f'populating to {scale["volumes"]} volumes: '
                         f'{filled["added"]} {how} in '
                         f'{filled["seconds"]:.0f} s')
    for key in ('machine_before', 'machine_after'):
        if key in results:
            m = results[key]
            lines.append(f'{key.replace("_", " ")}: {m["cpus"]} CPUs, load '
                         f'average {" ".join(map(str, m["load_average"]))}')
    return '\n'.join(lines)


def reference_lines(scales: list[dict[str, Any]]) -> list[str]:
    """Cinder's LVM driver on the same stand-in, and ours / its median."""
    head = (f'{"LVM ref":<9} {"volumes":>7} {"median s":>9} {"p95 s":>8} '
            f'{"commands":>10} {"ours/ref":>10}')
    lines = []
    for op in REFERENCE_OPS:
        for scale in scales:
            ref = (scale.get('reference') or {}).get(op)
            if not ref:
                continue
            ours = scale['ops'].get(op)
            ratio = (f'{ours["median_s"] / ref["median_s"]:.1f}x'
                     if ours and ref['median_s'] else '')
            lines.append(
                f'{op:<9} {scale["volumes"]:>7} {ref["median_s"]:>9.3f} '
                f'{ref["p95_s"]:>8.3f} {ref["round_trips_total"]:>10} '
                f'{ratio:>10}')
    if not lines:
        return []
    return [head, '-' * len(head)] + lines + [
        '(commands: the LVM commands the reference ran, each a local '
        'process; ours/ref: median latency)', '']


def create_ratio(scales: list[dict[str, Any]]
                 ) -> tuple[int, float] | None:
    """(largest scale, its create median / the create median at 0)."""
    by_count = {s['volumes']: s['ops'].get('create') for s in scales}
    if 0 not in by_count or len(by_count) < 2:
        return None
    largest = max(by_count)
    base, top = by_count[0], by_count[largest]
    if not base or not top or not base['median_s']:
        return None
    return largest, top['median_s'] / base['median_s']
