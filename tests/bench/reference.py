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
"""Cinder's LVM driver on the same stand-in: the ratio's denominator.

The real ``cinder.volume.drivers.lvm.LVMVolumeDriver`` (``lvm_type =
thin``, the real ``cinder.brick.local_dev.lvm.LVM``) of
:mod:`tests.vm.lvm_reference`, its commands run as cinder-volume runs
them: locally (a subprocess each, as through cinder-rootwrap, without
rootwrap's own Python start), here against an emulated node of the same
stand-in as the box (its own VG ``cinder-volumes`` with the thin pool
``cinder-volumes-pool``), so every command pays what ours pay: a Python
start and the whole emulated cluster's state read under one lock. The
stand-in takes the command forms brick issues (``--unit=g``, ``pvs``,
``lvdisplay -C``, activating the pool).

Create, snapshot, clone and delete are measured; attach and detach are
iSCSI target work in that driver, no LVM, and have no counterpart here.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any

from oslo_concurrency import processutils

from tests.standin import state
from tests.vm import lvm_reference

NODE = 'lvm-ref'
VG = 'cinder-volumes'
POOL = 'cinder-volumes-pool'


class LocalExecute:
    """processutils.execute's contract, run with an emulated node's env."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.commands: list[list[str]] = []
        self._lock = threading.Lock()

    def __call__(self, *cmd: Any, **kwargs: Any) -> tuple[str, str]:
        argv = [str(c) for c in cmd]
        with self._lock:
            self.commands.append(argv)
        proc = subprocess.run(argv, env=self.env, capture_output=True,
                              text=True, timeout=600)
        check = kwargs.get('check_exit_code', True)
        ok = (proc.returncode in check if isinstance(check, (list, tuple))
              else proc.returncode == 0 or not check)
        if not ok:
            raise processutils.ProcessExecutionError(
                exit_code=proc.returncode, stdout=proc.stdout,
                stderr=proc.stderr, cmd=' '.join(argv))
        return proc.stdout, proc.stderr

    def close(self) -> None:
        pass


class Reference:
    """The LVM driver on node :data:`NODE` of a box's stand-in."""

    def __init__(self, standin, pool_size: int) -> None:
        standin.add_node(NODE, vg=VG, pool=POOL, size=pool_size)
        self.standin = standin
        self.execute = LocalExecute(standin.node_env(NODE))
        self.driver = lvm_reference.LVMReference(self.execute, VG)
        # brick's class-level queries go through processutils.execute,
        # which LVMReference patches for the whole process: only while
        # the reference runs, not during the driver's operations.
        self.driver._patch.stop()
        self.count = 0

    def seed(self, count: int) -> None:
        """Thin LVs until the VG holds ``count`` (records and files)."""
        with state.locked(self.standin.root) as sess:
            lvs = sess.nodes[NODE]['vgs'][VG]['lvs']
            for i in range(len(lvs), count):
                name = f'volume-seed-{i:05d}'
                lvs[name] = {'active': True, 'origin': '', 'pool': POOL,
                             'size': 1 << 30, 'skip': False, 'tags': []}
                path = sess.lv_file(NODE, VG, name)
                with open(path, 'wb') as f:
                    f.truncate(1 << 30)

    def measured(self, samples: dict, op: str, call, *args) -> None:
        before = len(self.execute.commands)
        cpu = time.process_time()
        started = time.monotonic()
        call(*args)
        seconds = time.monotonic() - started
        samples.setdefault(op, []).append({
            'seconds': seconds,
            'cpu_seconds': time.process_time() - cpu,
            'round_trips': {NODE: len(self.execute.commands) - before},
            'bytes': 0})

    def round(self, samples: dict) -> None:
        """create, snapshot, clone, delete, as the bench's round."""
        self.driver._patch.start()
        try:
            self._round(samples)
        finally:
            self.driver._patch.stop()

    def _round(self, samples: dict) -> None:
        self.count += 1
        vol = f'volume-ref-{self.count}'
        snap = f'snapshot-ref-{self.count}'
        clone = f'volume-refclone-{self.count}'
        drv = self.driver.driver
        self.measured(samples, 'create', self.driver.create_volume, vol, 1)
        self.measured(samples, 'snapshot', self.driver.create_snapshot,
                      snap, vol, 1)
        self.measured(samples, 'clone', drv.create_cloned_volume,
                      {'name': clone, 'size': 1, 'id': clone},
                      {'name': vol, 'size': 1, 'id': vol})
        self.driver.delete_volume(clone, 1)
        self.driver.delete_snapshot(snap, vol, 1)
        self.measured(samples, 'delete', self.driver.delete_volume, vol, 1)

    def close(self) -> None:
        self.execute.close()
