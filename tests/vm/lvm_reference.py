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
"""Cinder's own LVM driver, its commands run in one test VM: the reference.

The real ``cinder.volume.drivers.lvm.LVMVolumeDriver`` object (with the
real ``cinder.brick.local_dev.lvm.LVM``, ``lvm_type = thin``) runs on the
host; every command it issues runs in the VM as root over one kept SSH
connection (paramiko, host key checked), a channel per command, as our
driver's SSH transport does. In production it would run the commands
locally through cinder-rootwrap, which costs a Python start per command:
so this reference is, if anything, faster than the real thing.
"""

from __future__ import annotations

import shlex
import threading
from unittest import mock

from cinder.brick.local_dev import lvm as brick_lvm
from cinder import objects
from cinder.volume import configuration
from oslo_concurrency import processutils
import paramiko


class SSHExecute:
    """processutils.execute's contract, the command run in a VM."""

    def __init__(self, host: str, port: int, key: str,
                 known_hosts: str) -> None:
        self.client = paramiko.SSHClient()
        self.client.load_host_keys(known_hosts)
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        self.client.connect(host, port=port, username='root',
                            key_filename=key, allow_agent=False,
                            look_for_keys=False, timeout=60)
        self.commands: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, *cmd, **kwargs) -> tuple[str, str]:
        # As root in the VM: root_helper/run_as_root need nothing.
        line = shlex.join(str(c) for c in cmd)
        with self._lock:
            self.commands.append(line)
        _, stdout, stderr = self.client.exec_command(line, timeout=600)
        out = stdout.read().decode()
        err = stderr.read().decode()
        rc = stdout.channel.recv_exit_status()
        check = kwargs.get('check_exit_code', True)
        ok = (rc in check if isinstance(check, (list, tuple))
              else rc == 0 or not check)
        if not ok:
            raise processutils.ProcessExecutionError(
                exit_code=rc, stdout=out, stderr=err, cmd=line)
        return out, err

    def close(self) -> None:
        self.client.close()


class LVMReference:
    """create/snapshot/delete through Cinder's LVMVolumeDriver."""

    def __init__(self, execute: SSHExecute, vg: str) -> None:
        self.execute = execute
        # brick's LVM runs some class-level queries (the LVM version,
        # thin support) with processutils directly: into the VM too.
        self._patch = mock.patch.object(brick_lvm.putils, 'execute',
                                        execute)
        self._patch.start()
        objects.register_all()  # the driver module's annotations use them
        from cinder.volume.drivers import lvm as lvm_driver
        try:
            conf = configuration.Configuration(
                lvm_driver.volume_opts, config_group='blackstor_lvm_ref')
            for key, value in (('lvm_type', 'thin'), ('volume_group', vg)):
                configuration.CONF.set_override(key, value,
                                                group='blackstor_lvm_ref')
            # Uses the existing thin pool "<vg>-pool".
            vg_obj = brick_lvm.LVM(vg, None, lvm_type='thin',
                                   executor=execute)
            self.driver = lvm_driver.LVMVolumeDriver(
                vg_obj=vg_obj, configuration=conf, execute=execute)
        except BaseException:
            self._patch.stop()
            raise

    def create_volume(self, name: str, size_gb: int) -> None:
        self.driver.create_volume({'name': name, 'size': size_gb,
                                   'id': name})

    def create_snapshot(self, name: str, volume: str, size_gb: int) -> None:
        self.driver.create_snapshot({'name': name, 'volume_name': volume,
                                     'id': name, 'volume_size': size_gb})

    def delete_snapshot(self, name: str, volume: str, size_gb: int) -> None:
        self.driver.delete_snapshot({'name': name, 'volume_name': volume,
                                     'id': name, 'volume_size': size_gb})

    def delete_volume(self, name: str, size_gb: int) -> None:
        self.driver.delete_volume({'name': name, 'size': size_gb,
                                   'id': name})

    def close(self) -> None:
        self._patch.stop()
        self.execute.close()
