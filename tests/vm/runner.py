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
"""Boot storage-node and hypervisor VMs (qemu, TCG) from the cached image.

Each VM: the cloud kernel + initrd of the image, the root disk as a qcow2
overlay (the cached image stays clean), on a storage node a sparse second
virtio disk for the VG (hypervisors have none), user-mode networking with
SSH forwarded to 127.0.0.1:<port>, and
one point-to-point UDP socket link per pair of VMs (``-netdev socket,
udp=...,localaddr=...``, loopback only) carrying the private L2 on which
the node's static replication address lives. Host keys and the
controller's key are generated here and handed in through qemu's fw_cfg,
so known_hosts is known before boot (never auto-added). The
project's code (blackstor_cinder, tests/standin, tests/vm) goes in as a
tar file through fw_cfg and is unpacked at boot into /opt/blackstor (the
Debian cloud kernel has no 9p).

Everything lives in ``.cache/vm/runs/<tmp>/`` and is removed on cleanup;
every qemu runs in its own process group and is killed on cleanup, at
exit and on KeyboardInterrupt.
"""

from __future__ import annotations

import atexit
import configparser
import ctypes
import dataclasses
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time

import fixtures

from tests.vm import image

QEMU = 'qemu-system-x86_64'
# The pool Cinder's LVM driver (the latency reference) expects: <vg>-pool.
VG, THINPOOL = 'blackstor', 'blackstor-pool'
PRIVATE_NET = '10.99.0.'
_LIVE: set[int] = set()
_PR_SET_PDEATHSIG = 1


def _kill_all() -> None:
    for pgid in list(_LIVE):
        _killpg(pgid)


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _LIVE.discard(pgid)


atexit.register(_kill_all)


def _on_sigterm(signum, frame):
    # A test runner's timeout: unwind, so fixtures remove their files.
    raise SystemExit(128 + signum)


if (signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        pass


#: every port handed out in this process: a port is free again once its
#: probe socket closes, and the kernel may hand it out twice; two qemus
#: bound to one UDP port (qemu sets SO_REUSEADDR) split its packets, and
#: a replication link broke for good (seen: a client never connected).
_TAKEN: set[int] = set()


def free_port(kind=socket.SOCK_STREAM) -> int:
    """A loopback port no other caller of this process was given."""
    while True:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        if port not in _TAKEN:
            _TAKEN.add(port)
            return port


@dataclasses.dataclass
class VM:
    name: str
    index: int
    address: str
    ssh_port: int
    dir: pathlib.Path
    proc: subprocess.Popen | None = None
    host_key: str = ''
    links: list = dataclasses.field(default_factory=list)
    storage: bool = True            # False: a hypervisor (diskless client)

    @property
    def umac(self) -> str:
        return f'52:54:00:00:00:{self.index:02x}'

    @property
    def console(self) -> pathlib.Path:
        return self.dir / 'console.log'


class VMCluster(fixtures.Fixture):
    """Storage VMs and hypervisor VMs, booted in parallel.

    Reachable over SSH as root, all on one private L2 (one link per pair).

    ``storage`` get a data disk of ``data_disk`` bytes (``/dev/vdb``) and
    ``memory`` MiB; ``hypervisors`` no data disk and ``hv_memory`` MiB.
    ``boot_seconds``: from the first qemu start to the last VM answering
    SSH. ``standby``: VMs prepared (disks, links, keys) but not booted
    until :meth:`boot` (an idle TCG VM still costs CPU on 2 cores).
    """

    def __init__(self, storage=('vm-a', 'vm-b', 'vm-c'), hypervisors=(),
                 data_disk=8 << 30, memory=768, hv_memory=512,
                 boot_timeout=420.0, standby=()) -> None:
        super().__init__()
        self.storage = tuple(storage)
        self.hypervisors = tuple(hypervisors)
        self.names = self.storage + self.hypervisors
        self.standby = frozenset(standby)
        self.data_disk = data_disk
        self.memory = memory
        self.hv_memory = hv_memory
        self.boot_timeout = boot_timeout

    def _setUp(self) -> None:
        self.image = image.ensure()
        runs = image.CACHE / 'runs'
        runs.mkdir(parents=True, exist_ok=True)
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix='run-', dir=runs))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.key = self.dir / 'id_ed25519'
        _keygen(self.key)
        self.known_hosts = self.dir / 'known_hosts'
        self.vms = {}
        for index, name in enumerate(self.names, start=1):
            vm_dir = self.dir / name
            vm_dir.mkdir()
            self.vms[name] = VM(name=name, index=index,
                                address=f'{PRIVATE_NET}{index}',
                                ssh_port=free_port(), dir=vm_dir,
                                storage=name in self.storage)
        links = self._links()
        _source_tar(self.dir / 'src.tar')
        lines = []
        for vm in self.vms.values():
            vm.links = links[vm.name]
            self._prepare(vm)
            lines.append(f'[127.0.0.1]:{vm.ssh_port} {vm.host_key}\n')
        self.known_hosts.write_text(''.join(lines))
        self.addCleanup(self._stop_all)
        t0 = time.monotonic()
        booting = [vm for vm in self.vms.values()
                   if vm.name not in self.standby]
        for vm in booting:
            self._start(vm)
        deadline = t0 + self.boot_timeout
        for vm in booting:
            self._wait_ready(vm, deadline)
        self.boot_seconds = time.monotonic() - t0

    def running(self, name: str) -> bool:
        proc = self.vms[name].proc
        return proc is not None and proc.poll() is None

    def boot(self, name: str, timeout: float = 420.0) -> None:
        """Start a VM that is not running and wait until it answers."""
        vm = self.vms[name]
        self._start(vm)
        self._wait_ready(vm, time.monotonic() + timeout)

    def power_cut(self, name: str) -> None:
        """Stop a VM the hard way (its qemu killed)."""
        vm = self.vms[name]
        _killpg(vm.proc.pid)
        vm.proc.wait(timeout=30)

    def _links(self) -> dict[str, list[tuple[str, int, int, str]]]:
        """Per VM: (mac, local udp port, peer udp port, peer address)."""
        links = {name: [] for name in self.names}
        vms = list(self.vms.values())
        for i, a in enumerate(vms):
            for b in vms[i + 1:]:
                pa, pb = free_port(socket.SOCK_DGRAM), free_port(
                    socket.SOCK_DGRAM)
                links[a.name].append(
                    (f'52:54:00:99:{a.index:02x}:{b.index:02x}', pa, pb,
                     b.address))
                links[b.name].append(
                    (f'52:54:00:99:{b.index:02x}:{a.index:02x}', pb, pa,
                     a.address))
        return links

    def _prepare(self, vm: VM) -> None:
        conf = vm.dir / 'conf'
        conf.mkdir()
        host_key = conf / 'ssh_host_ed25519_key'
        _keygen(host_key, comment=vm.name)
        vm.host_key = ' '.join(
            pathlib.Path(str(host_key) + '.pub').read_text().split()[:2])
        shutil.copy(str(self.key) + '.pub', conf / 'authorized_keys')
        links = ' '.join(f'{mac},{peer}' for mac, _, _, peer in vm.links)
        (conf / 'net').write_text(f'UMAC={vm.umac}\nADDR={vm.address}\n'
                                  f'LINKS="{links}"\n')
        node = configparser.ConfigParser()
        node['node'] = {
            'node_name': vm.name,
            'pools': f'{VG}/{THINPOOL}' if vm.storage else '',
            'resource_dir': '/etc/drbd.d',
            'drbd_config': '/etc/drbd.conf',
            'device_root': '/dev',
            'lock_dir': '/run/lock/blackstor-node',
            'state_dir': '/var/lib/blackstor-node',
            'command_timeout': '600',
        }
        with open(conf / 'node.conf', 'w') as f:
            node.write(f)
        with tarfile.open(vm.dir / 'conf.tar', 'w') as tar:
            for item in sorted(conf.iterdir()):
                tar.add(item, arcname=item.name)
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F',
                        'raw', '-b', str(self.image / 'root.img'),
                        str(vm.dir / 'root.qcow2')], check=True)
        if vm.storage:
            with open(vm.dir / 'data.img', 'wb') as f:
                f.truncate(self.data_disk)

    def _start(self, vm: VM) -> None:
        append = ('root=/dev/vda rw console=ttyS0 init=/sbin/blackstor-init '
                  f'quiet blackstor.name={vm.name}')
        memory = self.memory if vm.storage else self.hv_memory
        argv = [
            QEMU, '-accel', 'tcg,thread=multi', '-cpu', 'max',
            '-m', str(memory), '-smp', '1',
            '-display', 'none', '-monitor', 'none', '-no-reboot',
            '-serial', f'file:{vm.console}',
            '-kernel', str(self.image / 'vmlinuz'),
            '-initrd', str(self.image / 'initrd.img'),
            '-append', append,
            '-drive', f'file={vm.dir / "root.qcow2"},if=virtio,'
                      'format=qcow2',
            '-netdev', f'user,id=u0,hostfwd=tcp:127.0.0.1:{vm.ssh_port}-:22',
            '-device', f'virtio-net-pci,netdev=u0,mac={vm.umac}',
            '-fw_cfg', f'name=opt/blackstor/src,file={self.dir / "src.tar"}',
            '-fw_cfg', f'name=opt/blackstor/conf,file={vm.dir / "conf.tar"}',
        ]
        if vm.storage:
            argv += ['-drive', f'file={vm.dir / "data.img"},if=virtio,'
                               'format=raw,cache=unsafe']
        for n, (mac, local, peer, _) in enumerate(vm.links):
            argv += ['-netdev', f'socket,id=p{n},udp=127.0.0.1:{peer},'
                                f'localaddr=127.0.0.1:{local}',
                     '-device', f'virtio-net-pci,netdev=p{n},mac={mac}']
        log = open(vm.dir / 'qemu.log', 'wb')
        vm.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=_own_group_dies_with_parent)
        log.close()
        _LIVE.add(vm.proc.pid)

    def _wait_ready(self, vm: VM, deadline: float) -> None:
        while True:
            if vm.proc.poll() is not None:
                raise RuntimeError(
                    f'{vm.name}: qemu exited ({vm.proc.returncode}): '
                    f'{_tail(vm.dir / "qemu.log")}{_tail(vm.console)}')
            if 'BLACKSTOR-VM-READY' in _tail(vm.console, 4000):
                proc = self.ssh(vm.name, 'true', check=False, timeout=60)
                if proc.returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f'{vm.name}: not ready in time: '
                                   f'{_tail(vm.console)}')
            time.sleep(1)

    def _stop_all(self) -> None:
        for vm in self.vms.values():
            if vm.proc is not None:
                _killpg(vm.proc.pid)
                try:
                    vm.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass

    # -- use ----------------------------------------------------------------

    def ssh_argv(self, name: str) -> list[str]:
        return ['ssh', '-q', '-i', str(self.key),
                '-o', f'UserKnownHostsFile={self.known_hosts}',
                '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
                '-o', 'ConnectTimeout=30', '-p', str(self.vms[name].ssh_port),
                'root@127.0.0.1']

    def ssh(self, name: str, command: str, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """Run a shell command line in a VM (test checks only)."""
        proc = subprocess.run(self.ssh_argv(name) + [command],
                              capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f'{name}: {command!r}: rc {proc.returncode}'
                                 f': {proc.stderr.strip()}')
        return proc

    def ssh_bytes(self, name: str, command: str, data: bytes = b'',
                  timeout: float = 300) -> bytes:
        """Run a command line in a VM with ``data`` on its stdin; stdout."""
        proc = subprocess.run(self.ssh_argv(name) + [command], input=data,
                              capture_output=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(
                f'{name}: {command!r}: rc {proc.returncode}: '
                f'{proc.stderr.decode(errors="replace").strip()}')
        return proc.stdout

    def console(self, name: str, size: int = 4000) -> str:
        """The end of a VM's serial console (kernel messages, boot)."""
        return _tail(self.vms[name].console, size)


def _source_tar(path: pathlib.Path) -> None:
    """The project's code a node needs, as /opt/blackstor in the VM."""
    def skip(info):
        return None if '__pycache__' in info.name else info
    with tarfile.open(path, 'w') as tar:
        for part in ('blackstor_cinder', 'tests/__init__.py',
                     'tests/standin', 'tests/vm'):
            tar.add(image.REPO / part, arcname=part, filter=skip)


def _own_group_dies_with_parent() -> None:
    """In the child: own process group, SIGKILL when the test dies."""
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _keygen(path: pathlib.Path, comment: str = 'blackstor-vm') -> None:
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C',
                    comment, '-f', str(path)], check=True,
                   capture_output=True)


def _tail(path: pathlib.Path, size: int = 1500) -> str:
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors='replace')
    except OSError:
        return ''
