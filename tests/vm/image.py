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
"""Node VM image: Debian bookworm minbase, the cloud kernel, DRBD 9.2.18.

Built from Debian packages (``debootstrap`` and ``apt-get`` in the
chroot) plus the prebuilt DRBD 9.2.18 kernel module of
``../shared/drbd/ko/<kernel release>/`` (installed under
``/lib/modules/<release>/updates/``; the kernel's own DRBD 8.4 module is
deleted), cached under ``<repo>/.cache/vm/<recipe hash>/`` (git-ignored):
``root.img`` (ext4, made with ``mkfs.ext4 -d``, no loop mount),
``vmlinuz`` and ``initrd.img``. The hash covers the package list, the
.ko files and this file's source, so changing any builds a new image;
storage nodes and hypervisors boot the same image. The project itself
is not in the image: the runner hands the source tree in at boot as a tar
file through qemu's fw_cfg (Debian's cloud kernel has no 9p), so code
changes need no rebuild.

``python -m tests.vm.image`` builds (or finds) the image and prints its
directory.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
CACHE = REPO / '.cache' / 'vm'
SUITE = 'bookworm'
MIRROR = os.environ.get('BLACKSTOR_VM_MIRROR', 'http://deb.debian.org/debian')
SECURITY_MIRROR = os.environ.get('BLACKSTOR_VM_SECURITY_MIRROR',
                                 'http://deb.debian.org/debian-security')
ROOT_SIZE = '2000M'
#: the kernel release the prebuilt DRBD module was built for; its exact
#: package is pinned (bookworm-security). A module loads only into the
#: release it was built for (modinfo -F vermagic).
KERNEL_RELEASE = '6.1.0-57-cloud-amd64'
DRBD_DIR = REPO.parent / 'shared' / 'drbd'
DRBD_VERSION = '9.2.18'
#: the module's files, in load order after libcrc32c and lru_cache.
DRBD_MODULES = ('handshake.ko', 'drbd.ko', 'drbd_transport_tcp.ko')

#: debootstrap --include (what FACTS.md found to work).
BASE_PACKAGES = (
    'lvm2', 'thin-provisioning-tools', 'drbd-utils', 'openssh-server',
    'python3', 'iproute2', 'kmod', 'udev', 'util-linux',
)
#: installed in the chroot afterwards: the kernel and the agent's
#: Python dependencies as Debian packages (bookworm has all of them).
#: No os-brick: a hypervisor's agent attaches with node/client.py, so the
#: image proves the agent needs nothing above node/.
CHROOT_PACKAGES = (
    'linux-image-' + KERNEL_RELEASE, 'initramfs-tools',
    'python3-oslo.config', 'python3-oslo.utils', 'python3-oslo.log',
    'python3-oslo.i18n',
)
#: when the pinned kernel package is gone from the mirror: the current
#: cloud kernel, and the module built for it with build-module.sh.
FALLBACK_KERNEL = 'linux-image-cloud-amd64'


#: the guest's init: minimal and stable; what a node does at boot is
#: tests/vm/guest/boot.sh, handed in with the source tree through fw_cfg
#: (the cloud kernel has no 9p), so changing it needs no new image.
INIT = r'''#!/bin/sh
# BlackStor test VM init (tests/vm/image.py).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sys /sys 2>/dev/null
mount -t devtmpfs dev /dev 2>/dev/null
mount -o remount,rw /
mkdir -p /run && mount -t tmpfs tmpfs /run
modprobe qemu_fw_cfg
rm -rf /opt/blackstor && mkdir -p /opt/blackstor
tar -x -C /opt/blackstor \
    -f /sys/firmware/qemu_fw_cfg/by_name/opt/blackstor/src/raw
exec /bin/sh /opt/blackstor/tests/vm/guest/boot.sh
'''

SSHD_CONFIG = '''\
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
AcceptEnv LANG
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
'''

#: the agent, run from the source tree handed in at boot; it uses the
#: image's real drbdadm/drbdsetup/drbdmeta.
AGENT = '''#!/bin/sh
export PYTHONPATH=/opt/blackstor PYTHONDONTWRITEBYTECODE=1
export BLACKSTOR_NODE_CONFIG=${BLACKSTOR_NODE_CONFIG:-/run/blackstor/node.conf}
exec python3 -c 'import sys; from blackstor_cinder.node.cli import main; \
sys.exit(main())' "$@"
'''


def recipe() -> str:
    """Hash of everything the image is made from."""
    h = hashlib.sha256()
    h.update(repr((SUITE, BASE_PACKAGES, CHROOT_PACKAGES)).encode())
    h.update(pathlib.Path(__file__).read_bytes())
    for ko in module_files(prebuilt_modules()):
        h.update(ko.name.encode() + b'\0' + ko.read_bytes())
    return h.hexdigest()[:16]


def prebuilt_modules(release: str = KERNEL_RELEASE) -> pathlib.Path:
    return DRBD_DIR / 'ko' / release


def module_files(folder: pathlib.Path) -> list[pathlib.Path]:
    """The DRBD .ko files of ``folder`` (all of DRBD_MODULES, or none)."""
    files = [folder / name for name in DRBD_MODULES]
    return files if all(f.is_file() for f in files) else []


def image_dir() -> pathlib.Path:
    return CACHE / recipe()


def missing_tools() -> str | None:
    for tool in ('debootstrap', 'mkfs.ext4', 'qemu-system-x86_64',
                 'qemu-img'):
        if not shutil.which(tool, path=os.environ.get('PATH', '') +
                            ':/usr/sbin:/sbin'):
            return (f'{tool} not found (apt install debootstrap '
                    f'qemu-system-x86 qemu-utils e2fsprogs)')
    if os.geteuid() != 0:
        return 'building the VM image needs root (debootstrap)'
    if not module_files(prebuilt_modules()):
        return (f'no DRBD {DRBD_VERSION} module for {KERNEL_RELEASE} in '
                f'{prebuilt_modules()} (the shared/ folder beside the repo)')
    return None


def _run(argv, **kw):
    print('+ ' + ' '.join(argv), file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive', LC_ALL='C')
    return subprocess.run(argv, check=True, env=env, **kw)


def _chroot(root, *argv):
    return _run(['chroot', str(root), *argv])


def build(target: pathlib.Path) -> None:
    """Build the image into ``target`` (a fresh directory)."""
    work = pathlib.Path(tempfile.mkdtemp(prefix='build-', dir=CACHE))
    root = work / 'root'
    mounted = []
    try:
        _run(['debootstrap', '--variant=minbase',
              '--include=' + ','.join(BASE_PACKAGES), SUITE, str(root),
              MIRROR], stdout=subprocess.DEVNULL)
        for fs, where in (('proc', 'proc'), ('sysfs', 'sys')):
            _run(['mount', '-t', fs, fs, str(root / where)])
            mounted.append(root / where)
        _run(['mount', '--bind', '/dev', str(root / 'dev')])
        mounted.append(root / 'dev')
        (root / 'usr/sbin/policy-rc.d').write_text('#!/bin/sh\nexit 101\n')
        (root / 'usr/sbin/policy-rc.d').chmod(0o755)
        (root / 'etc/apt/sources.list').write_text(
            f'deb {MIRROR} {SUITE} main\n'
            f'deb {MIRROR} {SUITE}-updates main\n'
            f'deb {SECURITY_MIRROR} {SUITE}-security main\n')
        _chroot(root, 'apt-get', 'update', '-q')
        packages = list(CHROOT_PACKAGES)
        pinned = _chroot_ok(root, 'apt-cache', 'show', packages[0])
        if not pinned:
            print(f'{packages[0]} is gone from the mirror: falling back to '
                  f'{FALLBACK_KERNEL} and a module built for it',
                  file=sys.stderr)
            packages[0] = FALLBACK_KERNEL
        _chroot(root, 'apt-get', 'install', '-y', '-q',
                '--no-install-recommends', *packages)
        _chroot(root, 'apt-get', 'clean')
        (root / 'usr/sbin/policy-rc.d').unlink()
        release = _kernel_release(root)
        modules = (prebuilt_modules(release) if pinned
                   else _built_modules(release))
        _customize(root, release, modules)
        for path in reversed(mounted):
            _run(['umount', str(path)])
        mounted.clear()
        boot = root / 'boot'
        shutil.copy(boot / f'vmlinuz-{release}', work / 'vmlinuz')
        shutil.copy(boot / f'initrd.img-{release}', work / 'initrd.img')
        _run(['mkfs.ext4', '-q', '-F', '-L', 'root', '-d', str(root),
              str(work / 'root.img'), ROOT_SIZE])
        shutil.rmtree(root)
        (work / 'RECIPE').write_text(
            f'{SUITE}\n{" ".join(BASE_PACKAGES)}\n'
            f'{" ".join(packages)}\nkernel {release}, DRBD modules from '
            f'{modules}\n')
        work.rename(target)
    finally:
        for path in reversed(mounted):
            subprocess.run(['umount', '-l', str(path)], check=False)
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _chroot_ok(root, *argv) -> bool:
    return subprocess.run(['chroot', str(root), *argv],
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def _kernel_release(root: pathlib.Path) -> str:
    return sorted(p.name[len('vmlinuz-'):]
                  for p in (root / 'boot').glob('vmlinuz-*'))[-1]


def _built_modules(release: str) -> pathlib.Path:
    """The fallback: DRBD built on the host for ``release``, cached.

    Needs linux-headers-<release>, build-essential and coccinelle on the
    host (shared/drbd/README.md).
    """
    cached = CACHE / 'drbd-ko' / release
    if module_files(cached):
        return cached
    out = subprocess.run(
        ['bash', str(DRBD_DIR / 'build-module.sh'), release,
         str(CACHE / 'drbd-build')], check=True, capture_output=True,
        text=True).stdout.strip().splitlines()[-1]
    cached.mkdir(parents=True, exist_ok=True)
    for name in DRBD_MODULES:
        shutil.copy(pathlib.Path(out) / name, cached / name)
    return cached


def _customize(root: pathlib.Path, release: str,
               modules: pathlib.Path) -> None:
    # LVM without udev sync: lvcreate would wait for udev forever (udevd
    # runs, for DRBD's by-res links, but LVM's rules are not wired up).
    # And LVM never scans DRBD devices (etc/NODE-SETUP.md): a scan reads
    # /dev/drbdN, which blocks while a snapshot has its I/O suspended.
    # Only the PV is accepted: rejecting ^/dev/drbd is not enough, LVM
    # accepts a device when any of its names is accepted, and udev gives
    # every DRBD device a /dev/block/147:N link too (seen: lvs stuck in
    # drbd_make_request under suspend-io).
    lvm_conf = root / 'etc/lvm/lvm.conf'
    text = lvm_conf.read_text()
    text = text.replace(
        'activation {',
        'activation {\n\tudev_sync = 0\n\tudev_rules = 0\n', 1)
    lvm_conf.write_text(text.replace(
        'devices {',
        'devices {\n\tglobal_filter = [ "a|^/dev/vdb$|", "r|.*|" ]\n', 1))
    # The kernel's own DRBD is 8.4: delete it, so that modprobe drbd
    # takes the 9.2.18 module from updates/.
    for ko in root.glob('lib/modules/*/kernel/drivers/block/drbd/drbd.ko*'):
        ko.unlink()
    updates = root / 'lib/modules' / release / 'updates'
    updates.mkdir(parents=True, exist_ok=True)
    for ko in module_files(modules):
        shutil.copy(ko, updates / ko.name)
    for ssh_key in (root / 'etc/ssh').glob('ssh_host_*'):
        ssh_key.unlink()
    (root / 'etc/ssh/sshd_config').write_text(SSHD_CONFIG)
    init = root / 'sbin/blackstor-init'
    init.write_text(INIT)
    init.chmod(0o755)
    agent = root / 'usr/local/bin/blackstor-node'
    agent.write_text(AGENT)
    agent.chmod(0o755)
    (root / 'etc/fstab').write_text('')
    (root / 'etc/drbd.d').mkdir(exist_ok=True)
    (root / 'etc/drbd.conf').write_text(
        'global { usage-count no; }\ninclude "/etc/drbd.d/*.res";\n')
    _chroot(root, 'depmod', release)


def ensure() -> pathlib.Path:
    """The cached image's directory, built first when missing."""
    target = image_dir()
    if (target / 'root.img').exists():
        return target
    why = missing_tools()
    if why:
        raise RuntimeError(why)
    CACHE.mkdir(parents=True, exist_ok=True)
    build(target)
    return target


if __name__ == '__main__':
    print(ensure())
