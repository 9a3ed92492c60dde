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
"""The README demo: real Cinder with this driver on a cluster in a box.

Run through tools/demo.sh, which installs what it needs first. State and
logs go to a new directory under /tmp (about 190 MB, mostly MariaDB's
data), removed when every step succeeded and kept, with its path printed,
when one failed or the run was interrupted. ``--keep`` keeps it anyway;
a ``--workdir`` of your choice is never removed.
"""

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from tests.e2e import scenario  # noqa: E402
from tests.e2e import stack as stack_mod  # noqa: E402
from tests.functional import cluster_box  # noqa: E402

BOX_STEP = 'cluster in a box (4 storage, 1 hypervisor)'
STACK_STEP = 'MariaDB, RabbitMQ, Keystone, Cinder API/scheduler/volume'
STOP_STACK_STEP = 'stop Cinder, Keystone, RabbitMQ, MariaDB'
STOP_BOX_STEP = 'stop the cluster in a box'
STEPS = (BOX_STEP, STACK_STEP, STOP_STACK_STEP, STOP_BOX_STEP)


class Table:
    """One line per step: name, status, seconds and detail in columns.

    The name column is as wide as the longest of ``names``; a longer name
    (a step not announced) gets a line of its own above its columns.
    """

    def __init__(self, names):
        self.width = max(len(name) for name in names)

    def row(self, step):
        name, lead = step.name, ''
        if len(name) > self.width:
            name, lead = '', f'  {name}\n'
        return (f'{lead}  {name:<{self.width}}  {step.status:<10} '
                f'{step.seconds:7.1f}s  {step.detail}').rstrip()

    def report(self, step):
        print(self.row(step), flush=True)


def timed(table, name, action):
    start = time.monotonic()
    try:
        result = action()
    except BaseException:
        table.report(scenario.Step(name, 'FAILED', time.monotonic() - start))
        raise
    table.report(scenario.Step(name, 'ok', time.monotonic() - start,
                               result or ''))
    return result


def mounts_under(path):
    """Mount points at or below ``path`` (a FUSE device left mounted)."""
    path = os.path.realpath(path)
    with open('/proc/self/mounts') as f:
        points = [line.split()[1].replace('\\040', ' ') for line in f]
    return [p for p in points if p == path or p.startswith(path + '/')]


def size_of(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def remove_workdir(workdir):
    """Remove the demo's directory; say what was removed, or why not."""
    mounted = mounts_under(workdir)
    if mounted:
        print(f'Kept {workdir}: still mounted there: {", ".join(mounted)}')
        return False
    size = size_of(workdir)
    try:
        shutil.rmtree(workdir)
    except OSError as exc:
        print(f'Could not remove {workdir}: {exc}')
        return False
    print(f'Removed {workdir} ({size / 2**20:.0f} MB of state and logs).')
    return True


def tidy(workdir, succeeded, keep=False):
    """After the run: remove ``workdir`` on success, else say where it is."""
    if succeeded and not keep and remove_workdir(workdir):
        return
    logs = pathlib.Path(workdir) / 'stack' / 'logs'
    print(f'Kept {workdir}; logs: {logs} (cinder-volume.log has the '
          f'driver) and {pathlib.Path(workdir) / "box"}')


def services_detail(stack):
    return f'cinder-api {stack.cinder_endpoint}'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--workdir', help='where state and logs go '
                        '(default: a new directory under /tmp, removed '
                        'after a successful run)')
    parser.add_argument('--keep', action='store_true',
                        help='keep the state and logs after a successful '
                        'run too')
    args = parser.parse_args(argv)
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(
        prefix='blackstor-demo-'))
    print(f'BlackStor for Cinder demo; state and logs under {workdir}')
    table = Table(STEPS + tuple(scenario.Journey.step_names()))
    box = cluster_box.ClusterInABox(
        storage=('stor-a', 'stor-b', 'stor-c', 'stor-d'),
        hypervisors=('hv-1',),
        workdir=str(workdir / 'box'))
    stack = None
    box_up = False
    status = 1
    try:
        timed(table, BOX_STEP,
              lambda: box.setUp() or 'agents behind sshd on 127.0.0.1:'
              + ','.join(str(n.sshd.port) for n in box.nodes.values()))
        box_up = True
        stack = stack_mod.Stack(str(workdir / 'stack'), backends={
            scenario.BACKEND: scenario.backend_section(box)})
        timed(table, STACK_STEP,
              lambda: stack.start() and None or services_detail(stack))
        scenario.Journey(stack, box, report=table.report).run()
        status = 0
        print('Every step succeeded.')
    except KeyboardInterrupt:
        print('Interrupted.')
    except Exception as exc:
        print(f'Demo failed: {exc}')
    finally:
        try:
            if stack is not None:
                timed(table, STOP_STACK_STEP, stack.stop)
            if box_up:
                timed(table, STOP_BOX_STEP, box.cleanUp)
        except Exception as exc:
            status = 1
            print(f'Stopping failed: {exc}')
        finally:
            tidy(workdir, status == 0, keep=args.keep or bool(args.workdir))
    return status


if __name__ == '__main__':
    sys.exit(main())
