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

"""A real OpenStack block-storage stack on 127.0.0.1, for e2e tests and demo.

It runs what a production cloud runs, each as a private instance under one
work directory: MariaDB (Debian) as the database, RabbitMQ (Debian) as the
message bus, Keystone (PyPI) under a cheroot WSGI server, and the real
``cinder-api``, ``cinder-scheduler`` and ``cinder-volume`` with one
``cinder.conf`` whose backend sections the caller gives::

    stack = Stack('/tmp/work', backends={
        'fake': {'volume_driver':
                 'cinder.tests.fake_driver.FakeLoggingVolumeDriver'}})
    stack.start()
    try:
        vtype = stack.create_volume_type('T', 'fake')
        vol = stack.openstack('volume', 'create', '--size', '1',
                              '--type', 'T', 'v1')
        stack.wait_for('volume', vol['id'], 'available')
    finally:
        stack.stop()

Nothing is installed here: ``tools/stack/install.sh`` does that, and
``start()`` names the missing Debian or PyPI package if something is absent.
Every process started is in its own session and carries a marker in its
environment; ``stop()`` ends them all (also after a half-done ``start()``,
from ``atexit`` and on SIGTERM/SIGHUP) and ``leftover_processes()`` proves
none is left.
"""

import atexit
import base64
import configparser
import dataclasses
import glob
import json as jsonlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import fixtures

HOST = '127.0.0.1'
REGION = 'RegionOne'
MARKER_ENV = 'BLACKSTOR_STACK_ID'
VOLUME_API_VERSION = '3.71'
INSTALL_HINT = 'run tools/stack/install.sh (as root) to install it'

_ERROR_STATES = frozenset({
    'error', 'error_deleting', 'error_extending', 'error_restoring',
    'error_managing', 'error_backing-up', 'error_attaching',
    'error_detaching', 'error_unmanaging',
})
# kind -> (URL collection, JSON key of one object)
_KINDS = {
    'volume': ('volumes', 'volume'),
    'snapshot': ('snapshots', 'snapshot'),
    'backup': ('backups', 'backup'),
    'attachment': ('attachments', 'attachment'),
    'group': ('groups', 'group'),
    'group_snapshot': ('group_snapshots', 'group_snapshot'),
}


class StackError(Exception):
    """The stack could not be started or did not behave."""


class MissingPrerequisite(StackError):
    """A Debian or PyPI package the stack needs is not installed."""


class CommandError(StackError):
    """A command run against the stack failed."""

    def __init__(self, argv, returncode, stdout, stderr):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__('%s exited %s: %s' % (
            ' '.join(argv), returncode, (stderr or stdout).strip()[-2000:]))


@dataclasses.dataclass
class Credentials:
    """Keystone v3 password credentials."""

    auth_url: str
    username: str
    password: str
    project_name: str
    user_domain_name: str = 'Default'
    project_domain_name: str = 'Default'
    region_name: str = REGION

    def env(self) -> dict:
        """The OS_* variables the openstack client reads."""
        return {
            'OS_AUTH_URL': self.auth_url,
            'OS_AUTH_TYPE': 'password',
            'OS_USERNAME': self.username,
            'OS_PASSWORD': self.password,
            'OS_PROJECT_NAME': self.project_name,
            'OS_USER_DOMAIN_NAME': self.user_domain_name,
            'OS_PROJECT_DOMAIN_NAME': self.project_domain_name,
            'OS_REGION_NAME': self.region_name,
            'OS_IDENTITY_API_VERSION': '3',
            'OS_INTERFACE': 'public',
        }


@dataclasses.dataclass
class _Proc:
    name: str
    popen: subprocess.Popen
    log: str


# Stacks still running, stopped by the atexit/signal handlers (strong
# references: a stack dropped without stop() must still be stopped).
_LIVE = set()
_HANDLERS_INSTALLED = False


def _stop_live_stacks():
    for stack in list(_LIVE):
        try:
            stack.stop()
        except Exception as exc:  # noqa: B902 - best effort at exit
            sys.stderr.write('stack stop failed: %s\n' % exc)


def _on_signal(signum, frame):
    _stop_live_stacks()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers():
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    atexit.register(_stop_live_stacks)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)
    _HANDLERS_INSTALLED = True


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_open(port):
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def _tail(path, lines=40):
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(text.splitlines()[-lines:])


def _write_conf(path, sections):
    parser = configparser.RawConfigParser()
    parser.optionxform = str
    for section, options in sections.items():
        if section != 'DEFAULT' and not parser.has_section(section):
            parser.add_section(section)
        for key, value in options.items():
            parser.set(section, key, str(value))
    with open(path, 'w') as f:
        parser.write(f)


def _merge(base, extra):
    for section, options in (extra or {}).items():
        base.setdefault(section, {}).update(options)
    return base


def _marked_pids(marker):
    """Pids of processes whose environment carries marker."""
    needle = ('%s=%s' % (MARKER_ENV, marker)).encode() + b'\0'
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open('/proc/%s/environ' % entry, 'rb') as f:
                environ = f.read() + b'\0'
        except OSError:
            continue
        if b'\0' + needle in b'\0' + environ:
            pids.append(int(entry))
    return pids


class Stack:
    """MariaDB + RabbitMQ + Keystone + Cinder services on 127.0.0.1.

    :param workdir: directory for every file the stack writes (data,
        configuration, logs); created if missing.
    :param backends: backend section name -> options of that cinder.conf
        section (``volume_driver`` at least); ``volume_backend_name``
        defaults to the section name. All go into ``enabled_backends``.
    :param extra_conf: section -> options merged last into cinder.conf.
    :param debug: run the services with ``debug = True``.
    :param bindir: where the cinder/keystone/openstack console scripts are;
        default: the directory of the running interpreter (its venv).
    """

    def __init__(self, workdir, backends, extra_conf=None, debug=True,
                 bindir=None):
        if not backends:
            raise ValueError('at least one backend is needed')
        self.workdir = os.path.abspath(workdir)
        self.backends = {name: dict(opts) for name, opts in backends.items()}
        self.extra_conf = extra_conf or {}
        self.debug = debug
        self.python = sys.executable
        self.bindir = bindir or os.path.dirname(sys.executable)
        self.stack_id = secrets.token_hex(4)
        self.logdir = os.path.join(self.workdir, 'logs')
        self.timings = {}
        self.logs = {}
        self.ports = {}
        self.admin = None
        self.cinder_conf = os.path.join(self.workdir, 'cinder', 'cinder.conf')
        self.keystone_conf = os.path.join(self.workdir, 'keystone',
                                          'keystone.conf')
        self._procs = []
        self._lock = threading.RLock()
        self._session = None
        self._tmpdirs = []
        self._secrets = {name: secrets.token_hex(12) for name in (
            'mysql_cinder', 'mysql_keystone', 'rabbit', 'admin', 'cinder')}
        self._bins = {}
        self._last_poll_error = None
        self.started = False

    # ----------------------------------------------------------- prerequisites

    def _find(self, name, package, candidates=()):
        path = os.pathsep.join(
            [self.bindir, os.environ.get('PATH', ''),
             '/usr/sbin', '/sbin', '/usr/bin'])
        for cand in candidates:
            hits = sorted(glob.glob(cand))
            if hits and os.access(hits[-1], os.X_OK):
                return hits[-1]
        found = shutil.which(name, path=path)
        if not found:
            raise MissingPrerequisite(
                '%s not found: install %s (%s)' % (name, package,
                                                   INSTALL_HINT))
        return found

    def check_prerequisites(self):
        """Find every binary and module; raise naming what is missing."""
        wanted = {
            'mariadbd': ('Debian package mariadb-server', ()),
            'mariadb-install-db': ('Debian package mariadb-server', ()),
            'mariadb': ('Debian package mariadb-client', ()),
            'rabbitmq-server': (
                'Debian package rabbitmq-server',
                ('/usr/lib/rabbitmq/bin/rabbitmq-server',
                 '/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/'
                 'rabbitmq-server')),
            'epmd': ('Debian package erlang-base (rabbitmq-server)', ()),
            'keystone-manage': ('PyPI package keystone', ()),
            'cinder-api': ('PyPI package cinder', ()),
            'cinder-scheduler': ('PyPI package cinder', ()),
            'cinder-volume': ('PyPI package cinder', ()),
            'cinder-manage': ('PyPI package cinder', ()),
            'openstack': ('PyPI package python-openstackclient', ()),
        }
        missing = []
        for name, (package, candidates) in wanted.items():
            try:
                self._bins[name] = self._find(name, package, candidates)
            except MissingPrerequisite:
                missing.append('%s (%s)' % (name, package))
        probe = ('import importlib.util, sys; '
                 'sys.stdout.write(" ".join(m for m in sys.argv[1:] '
                 'if importlib.util.find_spec(m) is None))')
        modules = {'keystone': 'keystone', 'cinder': 'cinder',
                   'pymysql': 'PyMySQL', 'cheroot': 'cheroot',
                   'keystoneauth1': 'keystoneauth1'}
        out = subprocess.run([self.python, '-c', probe, *modules],
                             capture_output=True, text=True, check=True)
        for mod in out.stdout.split():
            missing.append('Python module %s (PyPI package %s)'
                           % (mod, modules[mod]))
        if missing:
            raise MissingPrerequisite(
                'missing: %s; %s' % (', '.join(missing), INSTALL_HINT))
        self._cinder_etc = self._find_cinder_etc()

    def _find_cinder_etc(self):
        prefix = os.path.dirname(self.bindir)
        for cand in (os.path.join(prefix, 'etc', 'cinder'),
                     os.path.join(sys.prefix, 'etc', 'cinder'),
                     os.path.join(prefix, 'share', 'cinder', 'etc'),
                     '/etc/cinder'):
            if os.path.isfile(os.path.join(cand, 'api-paste.ini')):
                return cand
        raise MissingPrerequisite(
            'api-paste.ini of cinder not found under %s/etc/cinder: '
            'reinstall PyPI package cinder' % prefix)

    # --------------------------------------------------------------- processes

    def _env(self, extra=None):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('OS_', 'RABBITMQ_', 'ERL_'))}
        env[MARKER_ENV] = self.stack_id
        env['PATH'] = os.pathsep.join(
            [self.bindir, env.get('PATH', '/usr/bin:/bin'), '/usr/sbin',
             '/sbin'])
        env.update(extra or {})
        return env

    def _spawn(self, name, argv, env=None, cwd=None):
        log = os.path.join(self.logdir, '%s.out' % name)
        with open(log, 'ab') as out:
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=self._env(env),
                cwd=cwd or self.workdir, start_new_session=True)
        proc = _Proc(name, popen, log)
        with self._lock:
            self._procs.append(proc)
        self.logs.setdefault(name, log)
        return proc

    def _check_alive(self, *procs):
        for proc in procs:
            rc = proc.popen.poll()
            if rc is not None:
                raise StackError('%s exited with %s during start-up; log %s:'
                                 '\n%s' % (proc.name, rc, proc.log,
                                           _tail(proc.log)))

    def _finish(self, proc, timeout):
        """Wait for a one-shot process; raise with its log if it failed."""
        try:
            rc = proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StackError('%s did not finish in %ss; log %s:\n%s' % (
                proc.name, timeout, proc.log, _tail(proc.log)))
        if rc != 0:
            raise StackError('%s failed with %s; log %s:\n%s' % (
                proc.name, rc, proc.log, _tail(proc.log)))

    def _run(self, name, argv, env=None, timeout=120):
        self._finish(self._spawn(name, argv, env), timeout)

    def _wait(self, what, predicate, timeout, watch=()):
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            self._check_alive(*watch)
            if predicate():
                return
            if time.monotonic() > deadline:
                detail = ''.join('\n--- %s (%s):\n%s' % (
                    p.name, p.log, _tail(p.log)) for p in watch)
                if self._last_poll_error is not None:
                    detail = '\nlast error: %r%s' % (self._last_poll_error,
                                                     detail)
                raise StackError('timed out after %ss waiting for %s%s'
                                 % (round(timeout, 1), what, detail))
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _mark(self, step, since):
        self.timings[step] = round(time.monotonic() - since, 2)

    # ---------------------------------------------------------------- services

    def _start_mysql(self):
        base = os.path.join(self.workdir, 'mysql')
        datadir = os.path.join(base, 'data')
        os.makedirs(base, exist_ok=True)
        sock = os.path.join(base, 'mysqld.sock')
        if len(sock) > 100:  # AF_UNIX path limit
            short = tempfile.mkdtemp(prefix='bs-my-')
            self._tmpdirs.append(short)
            sock = os.path.join(short, 'mysqld.sock')
        self._mysql_socket = sock
        port = self.ports['mysql'] = _free_port()
        user = ['--user=root'] if os.geteuid() == 0 else []
        if not os.path.isdir(os.path.join(datadir, 'mysql')):
            self._run('mariadb-install-db', [
                self._bins['mariadb-install-db'], '--no-defaults',
                '--datadir=%s' % datadir, '--skip-test-db',
                '--auth-root-authentication-method=socket'] + user)
        self._mysqld = self._spawn('mariadbd', [
            self._bins['mariadbd'], '--no-defaults',
            '--datadir=%s' % datadir, '--socket=%s' % sock,
            '--port=%d' % port, '--bind-address=%s' % HOST,
            '--pid-file=%s' % os.path.join(base, 'mysqld.pid'),
            '--log-error=%s' % os.path.join(self.logdir, 'mariadb.log'),
            '--skip-name-resolve', '--skip-log-bin',
            '--max-connections=500',
            '--innodb-buffer-pool-size=128M',
            '--innodb-flush-log-at-trx-commit=0', '--innodb-doublewrite=0',
            '--character-set-server=utf8mb4',
            '--collation-server=utf8mb4_general_ci'] + user)
        self.logs['mariadb'] = os.path.join(self.logdir, 'mariadb.log')

    def _mysql_ready(self):
        if not os.path.exists(self._mysql_socket):
            return False
        return _port_open(self.ports['mysql'])

    def _create_databases(self):
        sql = []
        for db in ('cinder', 'keystone'):
            sql.append('CREATE DATABASE IF NOT EXISTS %s '
                       'CHARACTER SET utf8mb4;' % db)
            sql.append("CREATE USER IF NOT EXISTS '%s'@'%s' "
                       "IDENTIFIED BY '%s';"
                       % (db, HOST, self._secrets['mysql_' + db]))
            sql.append("GRANT ALL PRIVILEGES ON %s.* TO '%s'@'%s';"
                       % (db, db, HOST))
        result = subprocess.run(
            [self._bins['mariadb'], '--no-defaults',
             '--socket=%s' % self._mysql_socket, '-uroot',
             '-e', ' '.join(sql)],
            capture_output=True, text=True, timeout=60,
            env=self._env())
        if result.returncode:
            raise StackError('creating the databases failed: %s'
                             % result.stderr.strip())

    def _db_url(self, db):
        return 'mysql+pymysql://%s:%s@%s:%d/%s?charset=utf8mb4' % (
            db, self._secrets['mysql_' + db], HOST, self.ports['mysql'], db)

    def _start_rabbit(self):
        base = os.path.join(self.workdir, 'rabbit')
        for sub in ('home', 'mnesia', 'log'):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        epmd_port = self.ports['epmd'] = _free_port()
        amqp_port = self.ports['amqp'] = _free_port()
        dist_port = self.ports['rabbit_dist'] = _free_port()
        conf = os.path.join(base, 'rabbitmq.conf')
        with open(conf, 'w') as f:
            f.write('listeners.tcp.default = %s:%d\n' % (HOST, amqp_port)
                    + 'loopback_users = none\n'
                    + 'default_user = stack\n'
                    + 'default_pass = %s\n' % self._secrets['rabbit']
                    + 'log.console = false\n'
                    + 'log.file.level = info\n'
                    + 'disk_free_limit.absolute = 50MB\n')
        plugins = os.path.join(base, 'enabled_plugins')
        with open(plugins, 'w') as f:
            f.write('[].\n')
        envfile = os.path.join(base, 'rabbitmq-env.conf')
        open(envfile, 'w').close()
        env = {
            'HOME': os.path.join(base, 'home'),
            'ERL_EPMD_ADDRESS': HOST,
            'ERL_EPMD_PORT': str(epmd_port),
        }
        # Our own epmd in the foreground, so that it is ours to stop (the
        # one erl would start daemonizes and outlives the broker).
        self._epmd = self._spawn('epmd', [
            self._bins['epmd'], '-address', HOST, '-port', str(epmd_port)],
            env=env)
        env.update({
            'RABBITMQ_NODENAME': 'bs%s@localhost' % self.stack_id,
            'RABBITMQ_USE_LONGNAME': 'false',
            'RABBITMQ_NODE_IP_ADDRESS': HOST,
            'RABBITMQ_NODE_PORT': str(amqp_port),
            'RABBITMQ_DIST_PORT': str(dist_port),
            'RABBITMQ_CONFIG_FILE': conf,
            'RABBITMQ_ADVANCED_CONFIG_FILE': os.path.join(base,
                                                          'advanced.config'),
            'RABBITMQ_CONF_ENV_FILE': envfile,
            'RABBITMQ_ENABLED_PLUGINS_FILE': plugins,
            'RABBITMQ_MNESIA_BASE': os.path.join(base, 'mnesia'),
            'RABBITMQ_LOG_BASE': os.path.join(base, 'log'),
            'RABBITMQ_PID_FILE': os.path.join(base, 'rabbit.pid'),
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS':
                '-kernel inet_dist_use_interface {127,0,0,1}',
        })
        self._rabbit = self._spawn('rabbitmq', [self._bins['rabbitmq-server']],
                                   env=env)
        self.logs['rabbitmq'] = os.path.join(
            base, 'log', 'bs%s@localhost.log' % self.stack_id)

    def _rabbit_ready(self):
        """True once the broker answers the AMQP 0-9-1 protocol header."""
        try:
            with socket.create_connection((HOST, self.ports['amqp']),
                                          timeout=2) as sock:
                sock.sendall(b'AMQP\x00\x00\x09\x01')
                frame = sock.recv(7)
        except OSError:
            return False
        return len(frame) == 7 and frame[0] == 1  # METHOD (Connection.Start)

    def _write_keystone_conf(self):
        base = os.path.dirname(self.keystone_conf)
        os.makedirs(base, exist_ok=True)
        repos = {}
        for repo in ('fernet-keys', 'credential-keys'):
            path = repos[repo] = os.path.join(base, repo)
            os.makedirs(path, mode=0o700, exist_ok=True)
            # The layout keystone-manage fernet_setup writes: key 0 is
            # staged, the highest index is the primary key.
            for index in ('0', '1'):
                key = os.path.join(path, index)
                if not os.path.exists(key):
                    fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
                    with os.fdopen(fd, 'wb') as f:
                        f.write(base64.urlsafe_b64encode(os.urandom(32)))
        self.ports['keystone'] = _free_port()
        _write_conf(self.keystone_conf, {
            'DEFAULT': {'debug': self.debug, 'log_dir': self.logdir,
                        'log_file': 'keystone.log'},
            'database': {'connection': self._db_url('keystone')},
            'identity': {'password_hash_rounds': 4},
            'token': {'provider': 'fernet'},
            'fernet_tokens': {'key_repository': repos['fernet-keys']},
            'fernet_receipts': {'key_repository': repos['fernet-keys']},
            'credential': {'key_repository': repos['credential-keys']},
        })
        self.logs['keystone'] = os.path.join(self.logdir, 'keystone.log')

    @property
    def keystone_url(self):
        return 'http://%s:%d/v3' % (HOST, self.ports['keystone'])

    @property
    def cinder_endpoint(self):
        """The block storage API, without the project (to show)."""
        return 'http://%s:%d/v3' % (HOST, self.ports['cinder'])

    @property
    def cinder_url(self):
        """The catalog's URL template (Keystone fills in the project)."""
        return self.cinder_endpoint + '/%(project_id)s'

    def _bring_up(self, t0, left):
        """Migrations, Keystone and Cinder, each as soon as it can start.

        keystone db_sync and cinder db sync run side by side; Keystone's
        server and bootstrap start when its schema is there; the Cinder
        services when their schema is there and the broker answers.
        """
        syncs = {
            'keystone': self._spawn('keystone-db-sync', [
                self._bins['keystone-manage'], '--config-file',
                self.keystone_conf, 'db_sync']),
            'cinder': self._spawn('cinder-db-sync', [
                self._bins['cinder-manage'], '--config-file',
                self.cinder_conf, 'db', 'sync']),
        }
        bootstrap = None
        rabbit_up = False
        self._cinder = []
        delay = 0.05
        while bootstrap is None or not self._cinder:
            if left() <= 1.0:
                raise StackError('timed out starting the services')
            self._check_alive(self._rabbit, self._epmd, self._mysqld)
            for name, proc in list(syncs.items()):
                if proc.popen.poll() is not None:
                    self._finish(proc, 0)
                    del syncs[name]
                    self._mark('%s db sync' % name, t0)
            if bootstrap is None and 'keystone' not in syncs:
                self._start_keystone()
                bootstrap = self._keystone_bootstrap()
            if not rabbit_up and self._rabbit_ready():
                rabbit_up = True
                self._mark('rabbitmq', t0)
            if not self._cinder and rabbit_up and 'cinder' not in syncs:
                self._start_cinder()
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        self._finish(bootstrap, left())
        self._mark('keystone bootstrap', t0)

    def _keystone_bootstrap(self):
        url = self.keystone_url
        self.admin = Credentials(url, 'admin', self._secrets['admin'],
                                 'admin')
        return self._spawn('keystone-bootstrap', [
            self._bins['keystone-manage'], '--config-file',
            self.keystone_conf, 'bootstrap',
            '--bootstrap-username', 'admin',
            '--bootstrap-project-name', 'admin',
            '--bootstrap-role-name', 'admin',
            '--bootstrap-admin-url', url, '--bootstrap-public-url', url,
            '--bootstrap-internal-url', url,
            '--bootstrap-region-id', REGION],
            env={'OS_BOOTSTRAP_PASSWORD': self._secrets['admin']})

    def _start_keystone(self):
        here = os.path.dirname(os.path.abspath(__file__))
        self._keystone = self._spawn('keystone-wsgi', [
            self.python, os.path.join(here, 'wsgi_server.py'),
            '--app', 'keystone', '--config-file', self.keystone_conf,
            '--host', HOST, '--port', str(self.ports['keystone']),
            '--threads', '16'])

    def _keystone_ready(self):
        try:
            with urllib.request.urlopen(self.keystone_url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def session(self):
        """A keystoneauth1 session authenticated as the admin."""
        if self._session is None:
            from keystoneauth1.identity import v3
            from keystoneauth1 import session as ks_session
            auth = v3.Password(
                auth_url=self.admin.auth_url, username=self.admin.username,
                password=self.admin.password,
                project_name=self.admin.project_name,
                user_domain_name=self.admin.user_domain_name,
                project_domain_name=self.admin.project_domain_name)
            self._session = ks_session.Session(auth=auth)
        return self._session

    def _keystone_api(self, method, path, body=None):
        # log=False: bodies carry passwords.
        resp = self.session().request(
            self.keystone_url + path, method, json=body,
            raise_exc=True, log=False)
        return resp.json() if resp.content else None

    def _register_cinder(self):
        """Service project, cinder user, block-storage endpoints."""
        ks = self._keystone_api
        project = ks('POST', '/projects', {'project': {
            'name': 'service', 'domain_id': 'default'}})['project']
        user = ks('POST', '/users', {'user': {
            'name': 'cinder', 'domain_id': 'default',
            'default_project_id': project['id'],
            'password': self._secrets['cinder']}})['user']
        roles = {r['name']: r['id'] for r in ks('GET', '/roles')['roles']}
        for role in ('admin', 'service'):
            ks('PUT', '/projects/%s/users/%s/roles/%s'
               % (project['id'], user['id'], roles[role]))
        service = ks('POST', '/services', {'service': {
            'type': 'block-storage', 'name': 'cinder',
            'description': 'Cinder Volume Service'}})['service']
        for interface in ('public', 'internal', 'admin'):
            ks('POST', '/endpoints', {'endpoint': {
                'service_id': service['id'], 'interface': interface,
                'region_id': REGION, 'url': self.cinder_url}})

    def _write_cinder_conf(self):
        base = os.path.dirname(self.cinder_conf)
        state = os.path.join(base, 'state')
        locks = os.path.join(base, 'locks')
        coord = os.path.join(base, 'coordination')
        for path in (state, locks, coord):
            os.makedirs(path, exist_ok=True)
        etc = self._cinder_etc
        rootwrap = os.path.join(base, 'rootwrap.conf')
        _write_conf(rootwrap, {'DEFAULT': {
            'filters_path': os.path.join(etc, 'rootwrap.d'),
            'exec_dirs': ','.join([self.bindir, '/sbin', '/usr/sbin',
                                   '/bin', '/usr/bin', '/usr/local/bin',
                                   '/usr/local/sbin']),
            'use_syslog': 'False',
        }})
        self.ports['cinder'] = _free_port()
        sections = {
            'DEFAULT': {
                'debug': self.debug,
                'log_dir': self.logdir,
                'state_path': state,
                'my_ip': HOST,
                'transport_url': 'rabbit://stack:%s@%s:%d/' % (
                    self._secrets['rabbit'], HOST, self.ports['amqp']),
                'auth_strategy': 'keystone',
                'osapi_volume_listen': HOST,
                'osapi_volume_listen_port': self.ports['cinder'],
                'osapi_volume_workers': 2,
                'api_paste_config': os.path.join(etc, 'api-paste.ini'),
                'rootwrap_config': rootwrap,
                'resource_query_filters_file': os.path.join(
                    etc, 'resource_filters.json'),
                'enabled_backends': ','.join(self.backends),
                'report_interval': 5,
                # Run periodic tasks (the volume service's capability
                # report among them) right at start instead of after a
                # random delay of up to 60 s: if the scheduler's start-up
                # request for capabilities raced past the volume service,
                # that report is what makes the backend schedulable.
                'periodic_fuzzy_delay': 0,
                'graceful_shutdown_timeout': 5,
            },
            'database': {'connection': self._db_url('cinder'),
                         'max_pool_size': 10, 'max_overflow': 20},
            'oslo_concurrency': {'lock_path': locks},
            'coordination': {'backend_url': 'file://%s' % coord},
            'keystone_authtoken': {
                'www_authenticate_uri': self.keystone_url,
                'auth_url': self.keystone_url,
                'auth_type': 'password',
                'username': 'cinder',
                'password': self._secrets['cinder'],
                'project_name': 'service',
                'user_domain_name': 'Default',
                'project_domain_name': 'Default',
                'region_name': REGION,
                'service_token_roles_required': True,
            },
        }
        for name, opts in self.backends.items():
            section = {'volume_backend_name': name}
            section.update(opts)
            sections[name] = section
        _write_conf(self.cinder_conf, _merge(sections, self.extra_conf))
        for svc in ('cinder-api', 'cinder-scheduler', 'cinder-volume',
                    'cinder-manage'):
            self.logs[svc] = os.path.join(self.logdir, '%s.log' % svc)

    def _start_cinder(self):
        conf = ['--config-file', self.cinder_conf]
        self._cinder = [
            self._spawn(svc, [self._bins[svc]] + conf)
            for svc in ('cinder-api', 'cinder-scheduler', 'cinder-volume')]

    def _cinder_ready(self):
        try:
            with urllib.request.urlopen(
                    'http://%s:%d/' % (HOST, self.ports['cinder']),
                    timeout=2) as r:
                return r.status in (200, 300)
        except urllib.error.HTTPError as exc:
            return exc.code == 300
        except OSError:
            return False

    def _pools_ready(self):
        try:
            pools = self.pools()
        except Exception as exc:  # noqa: B902 - poll until the deadline
            self._last_poll_error = exc
            return False
        seen = {p['name'].split('@', 1)[-1].split('#', 1)[0] for p in pools}
        return set(self.backends) <= seen

    # -------------------------------------------------------------- lifecycle

    def start(self, timeout=180):
        """Bring the whole stack up; on any failure stop what was started."""
        if self.started:
            raise StackError('stack already started')
        t0 = time.monotonic()
        self.check_prerequisites()
        for path in (self.workdir, self.logdir):
            os.makedirs(path, exist_ok=True)
        _install_handlers()
        _LIVE.add(self)
        self.started = True
        deadline = t0 + timeout

        def left():
            return max(1.0, deadline - time.monotonic())

        try:
            self._start_rabbit()
            self._start_mysql()
            self._write_keystone_conf()
            self._wait('MariaDB', self._mysql_ready, left(),
                       watch=[self._mysqld])
            self._create_databases()
            self._mark('mariadb', t0)
            self._write_cinder_conf()
            self._bring_up(t0, left)
            self._wait('Keystone', self._keystone_ready, left(),
                       watch=[self._keystone])
            self._register_cinder()
            self._session = None  # its token's catalog predates cinder's
            self._mark('keystone', t0)
            self._wait('cinder-api', self._cinder_ready, left(),
                       watch=self._cinder)
            self._mark('cinder-api', t0)
            self._wait('the scheduler to see backends %s'
                       % ', '.join(self.backends), self._pools_ready,
                       left(), watch=self._cinder)
            self._mark('backends', t0)
            self._write_client_files()
        except BaseException:
            self.stop()
            raise
        self._mark('total', t0)
        return self

    def stop(self, timeout=15):
        """Stop every process this stack started; safe to call twice.

        Processes are forgotten only once ended, so a stop() cut short
        (a second Ctrl-C) is finished by the next one (atexit).
        """
        with self._lock:
            if not self.started:
                return
            procs = list(self._procs)
            self._session = None
            # Cinder first (it would log reconnect noise), then Keystone,
            # the broker and the database.
            order = [('cinder', 'cinder-'), ('keystone', 'keystone'),
                     ('rabbitmq', 'rabbitmq'), ('epmd', 'epmd'),
                     ('mariadb', 'mariadb')]

            def rank(proc):
                for i, (_label, prefix) in enumerate(order):
                    if proc.name.startswith(prefix):
                        return i
                return 0

            groups = {}
            for proc in procs:
                groups.setdefault(rank(proc), []).append(proc)
            for index in sorted(groups):
                t = time.monotonic()
                self._terminate(groups[index], timeout)
                self.timings['stop:%s' % order[index][0]] = round(
                    time.monotonic() - t, 2)
            # Anything that escaped its process group (a daemonized child).
            for pid in _marked_pids(self.stack_id):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + 5
            while _marked_pids(self.stack_id) and time.monotonic() < end:
                time.sleep(0.1)
            for path in self._tmpdirs:
                shutil.rmtree(path, ignore_errors=True)
            self._tmpdirs = []
            self._procs = [p for p in self._procs if p not in procs]
            self.started = False
            _LIVE.discard(self)

    @staticmethod
    def _signal_group(proc, sig):
        try:
            os.killpg(proc.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _terminate(self, procs, timeout):
        for proc in procs:
            self._signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in procs:
            # Reap the leader and kill whatever is left in its group.
            self._signal_group(proc, signal.SIGKILL)
            try:
                proc.popen.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def stop_service(self, name, timeout=15):
        """Stop one Cinder service (``cinder-volume`` ...).

        Its processes end; the rest of the stack runs on.
        """
        with self._lock:
            procs = [p for p in self._procs if p.name == name]
        if not procs:
            raise StackError('%s is not running' % name)
        self._terminate(procs, timeout)
        with self._lock:
            self._procs = [p for p in self._procs if p not in procs]

    def start_service(self, name):
        """Start one Cinder service again with the stack's cinder.conf."""
        return self._spawn(name, [self._bins[name], '--config-file',
                                  self.cinder_conf])

    def leftover_processes(self):
        """Pids of processes started by this stack that still run."""
        return _marked_pids(self.stack_id)

    def listening_addresses(self):
        """{(address, port)} of TCP sockets this stack's processes listen on.

        Read from /proc, so it sees every process of the stack (including
        Erlang's and MariaDB's), not only what the configuration says.
        """
        inodes = set()
        for pid in _marked_pids(self.stack_id):
            fd_dir = '/proc/%d/fd' % pid
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(os.path.join(fd_dir, fd))
                except OSError:
                    continue
                if target.startswith('socket:['):
                    inodes.add(target[8:-1])
        found = set()
        for table, family in (('/proc/net/tcp', socket.AF_INET),
                              ('/proc/net/tcp6', socket.AF_INET6)):
            try:
                with open(table) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                if fields[3] != '0A' or fields[9] not in inodes:  # LISTEN
                    continue
                hexaddr, hexport = fields[1].split(':')
                raw = bytes.fromhex(hexaddr)
                # /proc prints each 32-bit word in host (little-endian) order
                raw = b''.join(raw[i:i + 4][::-1]
                               for i in range(0, len(raw), 4))
                found.add((socket.inet_ntop(family, raw), int(hexport, 16)))
        return found

    # ------------------------------------------------------------------ client

    def _write_client_files(self):
        """clouds.yaml and openrc in the work dir, for a human at a shell."""
        env = self.admin.env()
        env['OS_VOLUME_API_VERSION'] = VOLUME_API_VERSION
        with open(os.path.join(self.workdir, 'openrc'), 'w') as f:
            for key, value in sorted(env.items()):
                f.write('export %s=%s\n' % (key, value))
        clouds = {'clouds': {'blackstor-e2e': {
            'auth': {'auth_url': self.admin.auth_url,
                     'username': self.admin.username,
                     'password': self.admin.password,
                     'project_name': self.admin.project_name,
                     'user_domain_name': self.admin.user_domain_name,
                     'project_domain_name': self.admin.project_domain_name},
            'region_name': REGION, 'identity_api_version': 3,
            'volume_api_version': VOLUME_API_VERSION}}}
        # JSON is YAML.
        with open(os.path.join(self.workdir, 'clouds.yaml'), 'w') as f:
            jsonlib.dump(clouds, f, indent=2)

    def client_env(self):
        """Environment for the openstack CLI talking to this stack."""
        env = self._env(self.admin.env())
        env['OS_VOLUME_API_VERSION'] = VOLUME_API_VERSION
        env.pop(MARKER_ENV, None)
        return env

    def openstack(self, *args, json=True, timeout=300, check=True):
        """Run ``openstack ARGS``; return parsed JSON (or the stdout text).

        With ``json=True`` ``-f json`` is appended, so pass it only to
        commands that print something (create/show/list/set with output).
        """
        argv = [self._bins.get('openstack') or os.path.join(self.bindir,
                                                            'openstack')]
        argv += [str(a) for a in args]
        if json:
            argv += ['-f', 'json']
        result = subprocess.run(argv, capture_output=True, text=True,
                                env=self.client_env(), timeout=timeout)
        if check and result.returncode != 0:
            raise CommandError(argv, result.returncode, result.stdout,
                               result.stderr)
        if json and result.returncode == 0:
            return jsonlib.loads(result.stdout) if result.stdout.strip() \
                else None
        return result.stdout

    def api(self, method, path, body=None, microversion=VOLUME_API_VERSION,
            raise_exc=True):
        """Call the Cinder API (path under /v3/<project>) as the admin.

        Returns ``(status_code, parsed JSON body or None)``.
        """
        resp = self.session().request(
            path, method, json=body, raise_exc=raise_exc, log=False,
            endpoint_filter={'service_type': 'block-storage',
                             'interface': 'public',
                             'region_name': REGION},
            headers={'OpenStack-API-Version': 'volume %s' % microversion})
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = None
        return resp.status_code, data

    def pools(self):
        """The scheduler's pools (``get_pools?detail=True``)."""
        _status, data = self.api('GET', '/scheduler-stats/get_pools'
                                 '?detail=True')
        return data['pools']

    def wait_for(self, kind, id, status, timeout=300, interval=0.5):
        """Poll the API until the object has ``status`` (or is gone).

        ``status='deleted'`` waits for a 404. Any error state other than
        the awaited one raises StackError at once. Returns the object's
        last representation (None for deleted).
        """
        collection, key = _KINDS[kind]
        deadline = time.monotonic() + timeout
        last = None
        while True:
            code, data = self.api('GET', '/%s/%s' % (collection, id),
                                  raise_exc=False)
            if code == 404:
                if status == 'deleted':
                    return None
                raise StackError('%s %s not found (waiting for %s)'
                                 % (kind, id, status))
            if code >= 400:
                raise StackError('GET %s %s: HTTP %s %s'
                                 % (kind, id, code, data))
            obj = data[key]
            last = obj.get('status')
            if last == status:
                return obj
            if last in _ERROR_STATES:
                raise StackError('%s %s went to %s (waiting for %s): %s%s'
                                 % (kind, id, last, status, obj,
                                    self._messages_for(id)))
            if time.monotonic() > deadline:
                raise StackError('%s %s still %s after %ss (waiting for %s)'
                                 % (kind, id, last, timeout, status))
            time.sleep(interval)

    def _messages_for(self, resource_id):
        """User messages Cinder recorded for a resource (for errors)."""
        try:
            _code, data = self.api('GET', '/messages?resource_uuid=%s'
                                   % resource_id, raise_exc=False)
            texts = [m.get('user_message') for m in
                     (data or {}).get('messages', [])]
        except Exception:  # noqa: B902 - diagnostics only
            return ''
        return '; messages: %s' % texts if texts else ''

    def create_volume_type(self, name, backend_name, extra_specs=None):
        """``openstack volume type create`` bound to a backend."""
        args = ['volume', 'type', 'create', name, '--property',
                'volume_backend_name=%s' % backend_name]
        for key, value in (extra_specs or {}).items():
            args += ['--property', '%s=%s' % (key, value)]
        return self.openstack(*args)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class StackFixture(fixtures.Fixture):
    """A started Stack for the duration of a test (class).

    ``workdir`` defaults to a new temporary directory, removed at cleanup
    unless ``keep`` is true or BLACKSTOR_E2E_KEEP is set (then its path is
    printed, with the logs inside).
    """

    def __init__(self, backends, extra_conf=None, workdir=None, keep=None,
                 **kwargs):
        super().__init__()
        self._backends = backends
        self._extra_conf = extra_conf
        self._workdir = workdir
        self._keep = (bool(os.environ.get('BLACKSTOR_E2E_KEEP'))
                      if keep is None else keep)
        self._kwargs = kwargs
        self.stack = None

    def _setUp(self):
        workdir = self._workdir
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix='blackstor-e2e-')
            if self._keep:
                self.addCleanup(sys.stderr.write,
                                'e2e stack work dir kept: %s\n' % workdir)
            else:
                self.addCleanup(shutil.rmtree, workdir, True)
        self.stack = Stack(workdir, self._backends, self._extra_conf,
                           **self._kwargs)
        self.addCleanup(self.stack.stop)
        self.stack.start()
