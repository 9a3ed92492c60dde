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
"""The node's DRBD resource files (``<resource_dir>/<resource>.res``).

:class:`ResFileStore` is shared by the agent and the os-brick connector. A
new file is checked with the real ``drbdadm`` before it replaces the old
one: it must hold one resource of the shape the renderer writes
(:mod:`.resrender`: no ``include``, ``handlers``, ``startup``, ``proxy``,
second volume or external meta-disk, checked before drbdadm reads it, as
drbdadm follows includes), parse, have an ``on`` section for this node with
the expected backing disk, and clash with no other resource of the node
(minor, port). Only then is it renamed into place (mode 0600; the shared
secret lives in this file only). A failed check leaves the old file
untouched and no temporary file behind.

Every write, whoever asks (agent op or connector), keeps the invariants
of :mod:`.resguard` (conflict, nothing changed).

A writer killed between writing the temporary file and renaming it
leaves the file behind (:mod:`.restemp`);
:meth:`ResFileStore.remove_stale_temp_files` removes such files (the
agent runs it at every ``inventory``) while it holds the lock every write
holds from creating its temporary file to renaming or removing it.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import logging
import os
import pathlib
import re
from typing import Callable, Iterator

from blackstor_cinder.node import drbd as drbd_mod
from blackstor_cinder.node import drbdconf
from blackstor_cinder.node import drbdstatus
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import executor
from blackstor_cinder.node import resguard
from blackstor_cinder.node import resrender
from blackstor_cinder.node import restemp
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

SUFFIX = '.res'
#: The comment ``drbdadm dump`` puts before each resource: "ignored" ones
#: have no section for this host (``dump <res>`` refuses them).
_NOT_IGNORED_RE = re.compile(
    r'^# resource (\S+) on \S+: not ignored,', re.MULTILINE)
#: drbdadm's exit code for a configuration it refuses.
_RC_CONFIG = 10


class ResFileStore:
    """Read, validate, write and remove the node's .res files."""

    def __init__(self, resource_dir: str, drbd_config: str, node_name: str,
                 execute: Callable = executor.default_execute,
                 root_helper: str | None = None) -> None:
        self.resource_dir = pathlib.Path(resource_dir)
        self.drbd_config = str(drbd_config)
        self.node_name = node_name
        self._execute = execute
        self._root_helper = root_helper or None

    # -- paths -------------------------------------------------------------

    def path(self, resource: str) -> pathlib.Path:
        """``<resource_dir>/<resource>.res``; the name must be valid."""
        _check_name(resource)
        return self.resource_dir / f'{resource}{SUFFIX}'

    def exists(self, resource: str) -> bool:
        return self.path(resource).is_file()

    def list_resources(self) -> list[str]:
        """Names of the .res files in the directory (sorted)."""
        try:
            names = [p.name[:-len(SUFFIX)] for p in self.resource_dir.iterdir()
                     if p.name.endswith(SUFFIX) and p.is_file()]
        except FileNotFoundError:
            return []
        return sorted(n for n in names if protocol.NAME_RE.match(n))

    # -- drbdadm -----------------------------------------------------------

    def drbdadm(self, *args: str, config: str | None = None,
                check_exit_code: bool = True) -> tuple[str, str]:
        """Run ``drbdadm -c <config> args...`` as this node."""
        result = self._drbdadm(args, config=config, check=check_exit_code)
        return result.stdout, result.stderr

    def _drbdadm(self, args, config: str | None = None,
                 check: bool = True) -> executor.Result:
        argv = ['drbdadm', '-c', config or self.drbd_config, *args]
        return executor.run(self._execute, argv,
                            env={'__DRBD_NODE__': self.node_name},
                            root_helper=self._root_helper, check=check)

    # -- the configuration as a whole --------------------------------------

    def config_problem(self) -> str | None:
        """Why drbd_config would not see our .res files, or None.

        drbdadm reads ``drbd_config`` and what it includes; a .res file in
        a directory it does not include is never brought up, and clashes
        with it go unnoticed.
        """
        conf = pathlib.Path(self.drbd_config)
        try:
            text = conf.read_text()
        except OSError as e:
            return f'cannot read the DRBD configuration {conf}: {e.strerror}'
        try:
            statements = drbdconf.parse(text)
        except drbdconf.ParseError as e:
            return f'cannot parse the DRBD configuration {conf}: {e}'
        probe = str(self.resource_dir.absolute() / f'x{SUFFIX}')
        for statement in statements:
            if statement.keyword != 'include' or not statement.args:
                continue
            pattern = statement.args[0]
            if not os.path.isabs(pattern):
                pattern = os.path.join(str(conf.absolute().parent), pattern)
            if fnmatch.fnmatchcase(probe, os.path.normpath(pattern)):
                return None
        return (f'the DRBD configuration {conf} does not include '
                f'{self.resource_dir}/*{SUFFIX}; add the line '
                f'include "{self.resource_dir}/*{SUFFIX}"; to it')

    # -- reading -----------------------------------------------------------

    def read_definition(self, resource: str) -> dict | None:
        """The resource's definition as drbdadm sees it; None if no file."""
        if not self.exists(resource):
            return None
        result = self._drbdadm(['dump', resource], check=False)
        if result.rc != 0:
            problem = self.config_problem()
            if problem:
                raise AgentError(protocol.E_MISSING, problem)
            raise AgentError(
                protocol.E_FAILED,
                f'drbdadm cannot read {self.path(resource)}: '
                f'{_tail(result.stderr)}', 'resource')
        return self._with_roles(resource, self._definition_of(
            result.stdout, resource, 'resource'))

    def _with_roles(self, resource: str, definition: dict) -> dict:
        """``definition`` with each host's ``tiebreaker`` flag, ``zones``.

        drbdadm drops comments: the tiebreaker's role (a diskless host
        only) and the zone policy are read from the file (see
        resrender.tiebreakers and resrender.zones).
        """
        try:
            text = self.path(resource).read_text(errors='replace')
        except OSError:
            text = ''
        marked = resrender.tiebreakers(text)
        definition['zones'] = resrender.zones(text)
        for host in definition['hosts']:
            host['tiebreaker'] = (host['name'] in marked
                                  and not host['diskful'])
        return definition

    def read_definitions(self, resources: list[str]
                         ) -> dict[str, dict | None | AgentError]:
        """:meth:`read_definition` of each resource, from one command.

        ``drbdadm dump all`` parses the configuration once for every
        resource (a ``dump <res>`` parses all of it too, for one). Its
        sections are those of ``dump <res>`` (less the connections'
        ``_name``, which definitions do not hold). A resource that it does
        not show as one of this node's, and every resource when it fails
        (a parse error, a clash, an address not on this host: checks a
        ``dump <res>`` makes for its own resource only, or not at all),
        is read on its own, so each gets the definition or the error it
        always had. Each value: the definition, None (no file) or the
        AgentError its read raised.
        """
        found = self._dump_all() if resources else {}
        definitions: dict[str, dict | None | AgentError] = {}
        for name in resources:
            if name in found:
                definitions[name] = self._with_roles(name, found[name])
                continue
            try:
                definitions[name] = self.read_definition(name)
            except AgentError as e:
                definitions[name] = e
        return definitions

    def _dump_all(self) -> dict[str, dict]:
        """This node's resources in ``drbdadm dump all``; {} if it fails."""
        result = self._drbdadm(['dump', 'all'], check=False)
        if result.rc != 0:
            # Its stderr may quote a .res line (a secret): each read of
            # its own reports what concerns that resource.
            LOG.info('drbdadm dump all failed (rc %s), reading each '
                     'resource on its own', result.rc)
            return {}
        try:
            found = drbdconf.resources(result.stdout)
        except drbdconf.ParseError as e:
            LOG.warning('Cannot parse drbdadm dump all output, reading each '
                        'resource on its own: %s', e)
            return {}
        mine = set(_NOT_IGNORED_RE.findall(result.stdout))
        return {name: d for name, d in found.items() if name in mine}

    def _definition_of(self, dump: str, resource: str, field: str) -> dict:
        try:
            found = drbdconf.resources(dump)
        except drbdconf.ParseError as e:
            raise AgentError(protocol.E_FAILED,
                             f'cannot parse drbdadm dump output: {e}',
                             field) from None
        if resource not in found:
            raise AgentError(protocol.E_INVALID,
                             f'the .res text does not define resource '
                             f'{resource}', field)
        return found[resource]

    # -- writing -----------------------------------------------------------

    def write(self, resource: str, text: str, secret: str, *,
              expect_disk: str | None, field: str = 'spec') -> bool:
        """Validate and install ``text`` as the resource's .res file.

        ``field`` names what the text came from in errors. Returns False,
        changing nothing, when the file already holds exactly this
        content; True when it was written.
        """
        path = self.path(resource)
        _check(protocol.check_secret, 'secret', secret)
        if protocol.SECRET_PLACEHOLDER not in text:
            raise AgentError(protocol.E_INVALID,
                             f'{field}: no {protocol.SECRET_PLACEHOLDER} '
                             'where the shared secret goes', field)
        resguard.check_shape(resource, text, field)
        content = text.replace(protocol.SECRET_PLACEHOLDER, secret)
        try:
            if path.read_text() == content:
                os.chmod(path, 0o600)
                return False
        except FileNotFoundError:
            pass
        except OSError as e:
            raise AgentError(protocol.E_FAILED,
                             f'cannot read {path}: {e.strerror}') from None
        try:
            self.resource_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise AgentError(protocol.E_FAILED, f'cannot create '
                             f'{self.resource_dir}: {e.strerror}') from None
        self._install(resource, content, lambda tmp: self._validate(
            resource, tmp, path, expect_disk, secret, field))
        LOG.info('Wrote %s', path)
        return True

    def _install(self, resource: str, content: str | bytes,
                 check: Callable[[str], None] | None = None) -> None:
        """Put ``content`` in place as the .res, atomically, under the lock.

        A temporary file (mode 0600) is written, checked by ``check`` and
        renamed over the .res; on any failure it is removed.
        """
        path = self.path(resource)  # checks the name before any I/O
        with self._lock():
            tmp = restemp.write(self.resource_dir, resource, content)
            try:
                if check is not None:
                    check(tmp)
                os.rename(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self._fsync_dir()

    def restore(self, resource: str, content: bytes) -> None:
        """Put back a .res an operation replaced: ``content``, unchecked.

        Atomic (a temporary file renamed into place, mode 0600) and under
        the directory lock, like :meth:`write`.
        """
        self._install(resource, content)
        LOG.info('Restored %s', self.path(resource))

    def _validate(self, resource: str, tmp: str, path: pathlib.Path,
                  expect_disk: str | None, secret: str, field: str) -> None:
        # 1. It parses, defines the resource and has an "on" section for
        #    this node (drbdadm dump fails otherwise).
        result = self._drbdadm(['dump', resource], config=tmp, check=False)
        if result.rc != 0:
            raise AgentError(
                protocol.E_INVALID,
                f'{field}: the .res is refused by drbdadm for resource '
                f'{resource} on node {self.node_name}: '
                f'{_tail(result.stderr, tmp, secret)}', field)
        definition = self._definition_of(result.stdout, resource, field)
        if not any(h['name'] == self.node_name for h in definition['hosts']):
            raise AgentError(protocol.E_INVALID,
                             f'{field}: no host {self.node_name} (this '
                             'node)', field)
        for host in definition['hosts']:
            resguard.check_node_id(host)
        resguard.check_invariants(resource, definition,
                                  self._current(path, resource),
                                  self.running_state(resource),
                                  self.node_name)
        # 2. The backing disk of this node is the one we expect.
        ll_dev = self._drbdadm(
            ['sh-ll-dev', f'{resource}/{protocol.VOLUME_NUMBER}'],
            config=tmp, check=False)
        disk = ll_dev.stdout.strip()
        want = expect_disk or 'none'
        if ll_dev.rc != 0 or disk != want:
            raise AgentError(
                protocol.E_INVALID,
                f'{field}: gives node {self.node_name} the disk '
                f'{disk or _tail(ll_dev.stderr, tmp, secret)!r}, expected '
                f'{want!r}', field)
        # 3. No clash with the node's other resources.
        problem = self.config_problem()
        if problem:
            raise AgentError(protocol.E_MISSING, problem)
        args = ['--config-to-test', tmp]
        if path.exists():
            args += ['--config-to-exclude', str(path)]
        clash = self._drbdadm([*args, 'sh-nop'], check=False)
        if clash.rc != 0:
            stderr = clash.stderr
            if 'device-minor' in stderr or 'minor' in stderr.lower():
                culprit = 'minor'
            elif 'is also used' in stderr:
                culprit = 'port'
            elif 'resource section' in stderr:
                culprit = 'resource'
            else:
                culprit = field
            code = (protocol.E_CONFLICT if clash.rc == _RC_CONFIG
                    else protocol.E_FAILED)
            raise AgentError(
                code, f'{resource} clashes with the resources of node '
                f'{self.node_name}: {_tail(stderr, tmp, secret)}', culprit)

    def running_state(self, resource: str) -> dict | None:
        """The resource's ``drbdsetup status`` entry here; None if down."""
        drbd = drbd_mod.Drbd(executor.Executor(self._execute,
                                               self._root_helper),
                             self.drbd_config, self.node_name)
        try:
            return drbd.state(resource)
        except AgentError as e:
            if e.code == protocol.E_MISSING:
                return None     # no module: nothing runs
            raise

    def running_size(self, resource: str) -> int | None:
        """Bytes of the resource's running device here; None if down."""
        return drbdstatus.device_size(self.running_state(resource))

    def _current(self, path: pathlib.Path, resource: str) -> dict | None:
        """The definition in the .res in place, as written; None if none."""
        try:
            return drbdconf.resources(path.read_text()).get(resource)
        except FileNotFoundError:
            return None
        except (OSError, drbdconf.ParseError) as e:
            LOG.warning('Cannot read %s for its invariants: %s', path, e)
            return None

    def stale_temp_files(self) -> list[str]:
        """Paths of the temporary files in the directory, of any age.

        Outside a write they are left by a writer that was killed in the
        middle of it.
        """
        return restemp.listed(self.resource_dir)

    def remove_stale_temp_files(self, min_age: float = restemp.STALE_AGE
                                ) -> list[str]:
        """Remove temporary files a killed writer left; their paths.

        Only regular files (a symlink is neither followed nor removed)
        whose name is one this module gives its temporary files and that
        were last changed ``min_age`` seconds ago or earlier. It runs under
        the directory lock, which every write holds while its temporary
        file exists; when a write holds it now, nothing is done (the next
        call will). A file that cannot be removed is logged and skipped.
        """
        try:
            with self._lock(blocking=False) as dir_fd:
                return restemp.remove_stale(self.resource_dir, dir_fd,
                                            min_age)
        except FileNotFoundError:
            return []
        except BlockingIOError:
            LOG.debug('%s is being written to; stale temporary files are '
                      'left for later', self.resource_dir)
            return []
        except OSError as e:
            LOG.warning('Cannot look for stale temporary files in %s: %s',
                        self.resource_dir, e)
            return []

    @contextlib.contextmanager
    def _lock(self, blocking: bool = True) -> Iterator[int]:
        # Serialises check-and-rename across agents running at once, so
        # two new resources cannot both pass the clash check, and keeps the
        # removal of stale temporary files away from a write in progress.
        # The lock is on the directory itself: no lock file to leave
        # behind. Yields the directory's descriptor; BlockingIOError when
        # not blocking and the lock is taken.
        lock = os.open(self.resource_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX |
                        (0 if blocking else fcntl.LOCK_NB))
            yield lock
        finally:
            os.close(lock)

    def _fsync_dir(self) -> None:
        fd = os.open(self.resource_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- removing ----------------------------------------------------------

    def remove(self, resource: str) -> bool:
        """Remove the resource's file; False when there was none."""
        path = self.path(resource)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise AgentError(protocol.E_FAILED,
                             f'cannot remove {path}: {e.strerror}') from None
        self._fsync_dir()
        LOG.info('Removed %s', path)
        return True


def _check(checker: Callable, field: str, value) -> None:
    try:
        checker(field, value)
    except protocol.ProtocolError as e:
        message = str(e)
        if field == 'secret':
            # The message quotes the value; a secret is never repeated.
            message = 'secret: not a valid shared secret (16..%d of ' \
                'A-Z a-z 0-9 _ -)' % protocol.SECRET_MAX_LEN
        raise AgentError(protocol.E_INVALID, message, field) from None


def _check_name(resource: str) -> None:
    _check(protocol.check_name, 'resource', resource)


def _tail(stderr: str, tmp: str | None = None,
          secret: str | None = None) -> str:
    noise = ('found __DRBD_NODE__', 'PRETENDING that I am', 'modinfo:',
             'exited with code')
    lines = [line.strip() for line in (stderr or '').splitlines()
             if line.strip() and not any(n in line for n in noise)]
    text = ' / '.join(lines[-6:]) or 'no message'
    if tmp:
        text = text.replace(tmp, '<new .res>')
        text = text.replace(os.path.basename(tmp), '<new .res>')
    if secret:
        text = text.replace(secret, '***')
    return text
