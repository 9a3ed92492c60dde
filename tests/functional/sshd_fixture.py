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
"""A private OpenSSH server on a loopback port, for functional tests.

Everything lives in a temporary directory: host keys, a client key pair,
authorized_keys, known_hosts, sshd_config and sshd's log. sshd runs in the
foreground (``-D -e``) as a child of the test process and is stopped in
cleanup. Logins are for the user running the tests (root in CI, which needs
``PermitRootLogin prohibit-password``); non-root works too, for that user
only.

Every process the server starts is tracked (``ProcessTracker``): OpenSSH's
per-connection children and the sessions behind them call ``setsid()``, so
they leave sshd's process group and would outlive a kill of the listener,
answering on connections already open. ``stop`` kills all of them, which is
what a node that goes down does to its connections.

The cluster-in-a-box harness starts one per emulated node and tells them
apart with ``extra_config=['SetEnv BLACKSTOR_NODE=nodea']`` (OpenSSH 8.7+)
or with ``authorized_keys_options='environment="..."'`` (needs
``PermitUserEnvironment yes``) or ``'command="..."'``.
"""

import getpass
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import fixtures

SSHD = shutil.which('sshd', path='/usr/sbin:/usr/local/sbin:/sbin') or \
    '/usr/sbin/sshd'
SSH_KEYGEN = shutil.which('ssh-keygen') or '/usr/bin/ssh-keygen'


def sshd_available():
    """Why an sshd cannot be run here, or None when it can."""
    if not os.access(SSHD, os.X_OK):
        return f'{SSHD} not found (apt install openssh-server)'
    if not os.access(SSH_KEYGEN, os.X_OK):
        return 'ssh-keygen not found (apt install openssh-client)'
    return None


def keygen(path, key_type='ed25519', comment='blackstor-test'):
    """Make an unencrypted key pair at ``path`` (+ ``.pub``)."""
    path = pathlib.Path(path)
    argv = [SSH_KEYGEN, '-q', '-t', key_type, '-N', '', '-C', comment,
            '-f', str(path)]
    if key_type == 'rsa':
        argv[2:2] = ['-b', '2048']
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return path


def _cgroup2_base():
    """A directory of a writable cgroup v2 hierarchy to nest ours in.

    This process's own cgroup when it is visible, else the hierarchy's
    mount point (Debian 12 mounts it on /sys/fs/cgroup; hosts with both
    versions on /sys/fs/cgroup/unified). None without one, or not root.
    """
    if os.geteuid() != 0:
        return None
    try:
        with open('/proc/self/mountinfo') as f:
            mounts = [line.split(' - ')[0].split()
                      for line in f if ' - cgroup2 ' in line]
        with open('/proc/self/cgroup') as f:
            own = next((line[3:].strip() for line in f
                        if line.startswith('0::')), '/')
    except OSError:
        return None
    if not mounts:
        return None
    root, point = mounts[0][3], mounts[0][4]
    base = pathlib.Path(point)
    relative = os.path.relpath(own, root)
    if not relative.startswith('..') and (base / relative).is_dir():
        base = base / relative
    if not (base / 'cgroup.procs').exists() or not os.access(base, os.W_OK):
        return None
    return base


def _descendants(roots):
    """``roots`` (those alive) and every process below them, from /proc."""
    children = {}
    for entry in os.scandir('/proc'):
        if not entry.name.isdigit():
            continue
        try:
            with open(f'/proc/{entry.name}/stat') as f:
                # "pid (comm) state ppid ...": comm may hold spaces
                ppid = int(f.read().rpartition(')')[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue                        # gone meanwhile
        children.setdefault(ppid, []).append(int(entry.name))
    found = set()
    todo = [pid for pid in roots if os.path.exists(f'/proc/{pid}')]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def _signal(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class ProcessTracker:
    """Every process started from the ones ``add``-ed, to kill them all.

    In a cgroup v2 of its own where the host has a writable one: no
    process leaves it by forking, ``setsid()`` or being re-parented.
    Elsewhere (``use_cgroup=False``, not root) it walks the process tree
    from its roots through /proc, stopping every process it finds so that
    none forks unseen, then kills them; that misses only a process that
    detached from its parent before the kill, which sshd's do not.
    """

    def __init__(self, name='sshd', use_cgroup=None):
        base = _cgroup2_base() if use_cgroup is not False else None
        if use_cgroup and base is None:
            raise RuntimeError('no writable cgroup v2 hierarchy here')
        self.cgroup = None
        self.cgroup_required = bool(use_cgroup)
        if base is not None:
            self.cgroup = pathlib.Path(tempfile.mkdtemp(
                prefix=f'blackstor-{name}-', dir=base))
        self.roots = []

    def add(self, pid):
        """Track ``pid`` and, from now on, everything it starts."""
        if self.cgroup:
            try:
                (self.cgroup / 'cgroup.procs').write_text(str(pid))
            except OSError:
                # The host's cgroup rules refuse the move (a parent with
                # controllers enabled, say): use the process tree.
                if self.cgroup_required or self.roots:
                    raise
                self.cgroup.rmdir()
                self.cgroup = None
        self.roots.append(pid)

    def pids(self):
        """The tracked processes alive now."""
        if self.cgroup:
            return {int(pid) for pid in
                    (self.cgroup / 'cgroup.procs').read_text().split()}
        return _descendants(self.roots)

    def kill_all(self, timeout=10.0):
        """SIGKILL every tracked process; return once none is left."""
        if self.cgroup:
            kill = self.cgroup / 'cgroup.kill'      # Linux 5.14 and later
            if kill.exists():
                kill.write_text('1')
            else:
                (self.cgroup / 'cgroup.freeze').write_text('1')
                _signal(self.pids(), signal.SIGKILL)
                (self.cgroup / 'cgroup.freeze').write_text('0')
        else:
            stopped = set()
            while True:
                new = _descendants(self.roots) - stopped
                if not new:
                    break
                _signal(new, signal.SIGSTOP)
                stopped |= new
            _signal(stopped, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while True:
            # Our own children stay as zombies until reaped: not counted.
            left = {pid for pid in self.pids() if not _zombie(pid)}
            if not left:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f'processes {sorted(left)} outlived '
                                   'SIGKILL')
            _signal(left, signal.SIGKILL)
            time.sleep(0.02)
        self.roots = []

    def close(self):
        """Kill what is left and remove the cgroup."""
        self.kill_all()
        if self.cgroup:
            deadline = time.monotonic() + 10
            while True:
                try:
                    self.cgroup.rmdir()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            self.cgroup = None


def _zombie(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rpartition(')')[2].split()[0] in ('Z', 'X')
    except (OSError, IndexError):
        return True                         # gone


def free_port(host='127.0.0.1'):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class SSHDFixture(fixtures.Fixture):
    """Run sshd on ``address``:<free port> with generated keys.

    After setUp: ``port``, ``address``, ``user``, ``dir``, ``private_key``
    (the client key, ``client_key_type``), ``known_hosts`` (every host key
    under ``[address]:port``), ``host_keys`` {type: public key line},
    ``log_path``, ``processes`` (the ``ProcessTracker`` of every process
    this server started; ``use_cgroup`` as there).
    """

    def __init__(self, address='127.0.0.1', *,
                 host_key_types=('ed25519', 'ecdsa', 'rsa'),
                 client_key_types=('ed25519',),
                 extra_config=(), authorized_keys_options=None,
                 log_level='VERBOSE', start_timeout=15.0,
                 use_cgroup=None):
        super().__init__()
        self.address = address
        self.host_key_types = tuple(host_key_types)
        self.client_key_types = tuple(client_key_types)
        self.extra_config = list(extra_config)
        self.authorized_keys_options = authorized_keys_options
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.use_cgroup = use_cgroup
        self.user = getpass.getuser()
        self.process = None

    @property
    def private_key(self):
        return self.client_keys[self.client_key_types[0]]

    def _setUp(self):
        why = sshd_available()
        if why:
            raise RuntimeError(why)
        self.dir = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        os.chmod(self.dir, 0o700)
        self.processes = ProcessTracker(use_cgroup=self.use_cgroup)
        self.addCleanup(self.processes.close)
        self.host_keys = {}
        host_key_paths = []
        for key_type in self.host_key_types:
            path = keygen(self.dir / f'ssh_host_{key_type}_key', key_type)
            host_key_paths.append(path)
            self.host_keys[key_type] = path.with_suffix('.pub').read_text()
        self.client_keys = {}
        lines = []
        for key_type in self.client_key_types:
            path = keygen(self.dir / f'client_{key_type}', key_type)
            self.client_keys[key_type] = str(path)
            public = path.with_name(path.name + '.pub').read_text().strip()
            if self.authorized_keys_options:
                public = f'{self.authorized_keys_options} {public}'
            lines.append(public)
        self.authorized_keys = self.dir / 'authorized_keys'
        self.authorized_keys.write_text('\n'.join(lines) + '\n')
        self.authorized_keys.chmod(0o600)
        if os.geteuid() == 0:
            # Privilege separation directory sshd insists on.
            os.makedirs('/run/sshd', mode=0o755, exist_ok=True)
        self.log_path = self.dir / 'sshd.log'
        for attempt in range(5):
            self.port = free_port(self.address)
            if self._start(host_key_paths):
                break
        else:
            raise RuntimeError(f'sshd did not start: {self.log()}')
        self.known_hosts = str(self.dir / 'known_hosts')
        self.write_known_hosts(self.known_hosts)

    def _config(self, host_key_paths):
        lines = [
            f'Port {self.port}',
            f'ListenAddress {self.address}',
            *(f'HostKey {path}' for path in host_key_paths),
            f'PidFile {self.dir / "sshd.pid"}',
            f'AuthorizedKeysFile {self.authorized_keys}',
            'PubkeyAuthentication yes',
            'PasswordAuthentication no',
            'KbdInteractiveAuthentication no',
            'PermitRootLogin prohibit-password',
            'StrictModes no',
            'UsePAM no',
            'UseDNS no',
            'X11Forwarding no',
            'AllowTcpForwarding no',
            'AllowAgentForwarding no',
            'PrintMotd no',
            f'LogLevel {self.log_level}',
        ]
        # sshd takes the first value of most keywords: extra lines first.
        return '\n'.join(self.extra_config + lines) + '\n'

    def _start(self, host_key_paths):
        config = self.dir / 'sshd_config'
        config.write_text(self._config(host_key_paths))
        check = subprocess.run([SSHD, '-t', '-f', str(config)],
                               capture_output=True, text=True, timeout=30)
        if check.returncode:
            raise RuntimeError(f'sshd rejects its config: {check.stderr}')
        log = open(self.log_path, 'ab')
        try:
            # Absolute path: sshd re-executes itself.
            self.process = subprocess.Popen(
                [SSHD, '-D', '-e', '-f', str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        finally:
            log.close()
        # Before anyone connects: sshd forks only for a connection.
        self.processes.add(self.process.pid)
        self.addCleanup(self._stop, self.process)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False        # port taken meanwhile? try another
            try:
                with socket.create_connection((self.address, self.port),
                                              timeout=1) as sock:
                    sock.settimeout(5)
                    if sock.recv(64).startswith(b'SSH-'):
                        return True
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f'sshd did not answer: {self.log()}')

    def _stop(self, process):
        # The per-connection children and their sessions call setsid():
        # killing sshd's process group would leave them answering.
        self.processes.kill_all()
        process.wait(timeout=10)

    def stop(self):
        """Kill the server and every connection and session it started.

        What a node going down does: connections already open break and
        new ones are refused. ``start`` brings it back.
        """
        self._stop(self.process)

    def start(self):
        """Start again on the same port with the same keys."""
        if self.process.poll() is None:
            return
        paths = [self.dir / f'ssh_host_{t}_key' for t in self.host_key_types]
        if not self._start(paths):
            raise RuntimeError(f'sshd did not restart: {self.log()}')

    def log(self):
        try:
            return self.log_path.read_text(errors='replace')
        except OSError:
            return ''

    def accepted_logins(self):
        """How many connections authenticated so far (from sshd's log)."""
        return self.log().count('Accepted publickey for ')

    def host_entry(self):
        """The name of this server in known_hosts."""
        return f'[{self.address}]:{self.port}'

    def write_known_hosts(self, path, key_types=None, hashed=False):
        """known_hosts with this server's keys (of ``key_types``)."""
        key_types = key_types or self.host_key_types
        with open(path, 'w') as f:
            for key_type in key_types:
                kind, blob = self.host_keys[key_type].split()[:2]
                f.write(f'{self.host_entry()} {kind} {blob}\n')
        if hashed:
            subprocess.run([SSH_KEYGEN, '-q', '-H', '-f', str(path)],
                           check=True, capture_output=True, timeout=30)
            old = pathlib.Path(str(path) + '.old')
            if old.exists():
                old.unlink()
        return str(path)

    def connection_pids(self):
        """Pids of sshd's per-connection children (to cut connections)."""
        try:
            with open(f'/proc/{self.process.pid}/task/{self.process.pid}'
                      '/children') as f:
                return [int(pid) for pid in f.read().split()]
        except OSError:
            return []
