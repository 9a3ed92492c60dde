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

Run through tools/demo.sh, which installs what it needs first.
"""

import argparse
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from tests.e2e import scenario  # noqa: E402
from tests.e2e import stack as stack_mod  # noqa: E402
from tests.functional import cluster_box  # noqa: E402


def report(step):
    mark = 'FAILED' if step.status == 'FAILED' else step.status
    print(f'  {step.name:<40} {mark:<10} {step.seconds:7.1f}s  '
          f'{step.detail}', flush=True)


def timed(name, action):
    start = time.monotonic()
    try:
        result = action()
    except BaseException:
        report(scenario.Step(name, 'FAILED', time.monotonic() - start))
        raise
    report(scenario.Step(name, 'ok', time.monotonic() - start,
                         result or ''))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--workdir', help='where state and logs go '
                        '(default: a new directory under /tmp)')
    args = parser.parse_args(argv)
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(
        prefix='blackstor-demo-'))
    print(f'BlackStor for Cinder demo; state and logs under {workdir}')
    box = cluster_box.ClusterInABox(
        storage=('stor-a', 'stor-b', 'stor-c'), hypervisors=('hv-1',),
        workdir=str(workdir / 'box'))
    stack = None
    box_up = False
    status = 1
    try:
        timed('cluster in a box (3 storage, 1 hypervisor)',
              lambda: box.setUp() or 'agents behind sshd on 127.0.0.1:'
              + ','.join(str(n.sshd.port) for n in box.nodes.values()))
        box_up = True
        stack = stack_mod.Stack(str(workdir / 'stack'), backends={
            scenario.BACKEND: scenario.backend_section(box)})
        timed('MariaDB, RabbitMQ, Keystone, Cinder API/scheduler/volume',
              lambda: stack.start() and None or
              f'cinder-api {stack.cinder_url}')
        scenario.Journey(stack, box, report=report).run()
        status = 0
        print('Every step succeeded.')
    except KeyboardInterrupt:
        print('Interrupted.')
    except Exception as exc:
        print(f'Demo failed: {exc}')
    finally:
        if stack is not None:
            timed('stop Cinder, Keystone, RabbitMQ, MariaDB', stack.stop)
        if box_up:
            timed('stop the cluster in a box', box.cleanUp)
        logs = workdir / 'stack' / 'logs'
        print(f'Logs: {logs} (cinder-volume.log has the driver) and '
              f'{workdir / "box"}')
    return status


if __name__ == '__main__':
    sys.exit(main())
