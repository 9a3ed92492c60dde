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
one: it must parse, name the resource, have an ``on`` section for this
node with the expected backing disk, and clash with no other resource of
the node (minor, port). Only then is it renamed into place (mode 0600; the
shared secret lives in this file only). A failed check leaves the old file
untouched and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import glob
import logging
import os
import pathlib
import tempfile
from typing import Callable, Iterator

from blackstor_cinder.node import drbdconf
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import executor
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

SUFFIX = '.res'
_TMP_SUFFIX = '.tmp'
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
        return self._definition_of(result.stdout, resource, 'resource')

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
              expect_disk: str | None) -> bool:
        """Validate and install ``text`` as the resource's .res file.

        Returns False, changing nothing, when the file already holds
        exactly this content; True when it was written.
        """
        path = self.path(resource)
        _check(protocol.check_secret, 'secret', secret)
        if protocol.SECRET_PLACEHOLDER not in text:
            raise AgentError(protocol.E_INVALID,
                             f'res_text: no {protocol.SECRET_PLACEHOLDER} '
                             'where the shared secret goes', 'res_text')
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
        with self._lock():
            tmp = self._write_temp(resource, content)
            try:
                self._validate(resource, tmp, path, expect_disk, secret)
                os.rename(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self._fsync_dir()
        LOG.info('Wrote %s', path)
        return True

    def _write_temp(self, resource: str, content: str) -> str:
        # The name must not match the "*.res" include of drbd.conf.
        fd, tmp = tempfile.mkstemp(prefix=f'.{resource}.', suffix=_TMP_SUFFIX,
                                   dir=self.resource_dir)
        try:
            with os.fdopen(fd, 'w') as f:
                f.write(content)
                f.flush()
                os.fchmod(f.fileno(), 0o600)
                os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    def _validate(self, resource: str, tmp: str, path: pathlib.Path,
                  expect_disk: str | None, secret: str) -> None:
        # 1. It parses, defines the resource and has an "on" section for
        #    this node (drbdadm dump fails otherwise).
        result = self._drbdadm(['dump', resource], config=tmp, check=False)
        if result.rc != 0:
            raise AgentError(
                protocol.E_INVALID,
                f'res_text is refused by drbdadm for resource {resource} on '
                f'node {self.node_name}: '
                f'{_tail(result.stderr, tmp, secret)}', 'res_text')
        definition = self._definition_of(result.stdout, resource, 'res_text')
        if not any(h['name'] == self.node_name for h in definition['hosts']):
            raise AgentError(protocol.E_INVALID,
                             f'res_text has no "on {self.node_name}" '
                             'section', 'res_text')
        for host in definition['hosts']:
            check_node_id(host)
        # 2. The backing disk of this node is the one we expect.
        ll_dev = self._drbdadm(
            ['sh-ll-dev', f'{resource}/{protocol.VOLUME_NUMBER}'],
            config=tmp, check=False)
        disk = ll_dev.stdout.strip()
        want = expect_disk or 'none'
        if ll_dev.rc != 0 or disk != want:
            raise AgentError(
                protocol.E_INVALID,
                f'res_text gives node {self.node_name} the disk '
                f'{disk or _tail(ll_dev.stderr, tmp, secret)!r}, expected '
                f'{want!r}', 'res_text')
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
                field = 'minor'
            elif 'is also used' in stderr:
                field = 'port'
            elif 'resource section' in stderr:
                field = 'resource'
            else:
                field = 'res_text'
            code = (protocol.E_CONFLICT if clash.rc == _RC_CONFIG
                    else protocol.E_FAILED)
            raise AgentError(
                code, f'res_text for {resource} clashes with the resources '
                f'of node {self.node_name}: {_tail(stderr, tmp, secret)}',
                field)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # Serialises check-and-rename across agents running at once, so
        # two new resources cannot both pass the clash check. The lock is
        # on the directory itself: no lock file to leave behind.
        lock = os.open(self.resource_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
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

    def stale_temp_files(self) -> list[str]:
        """Temporary files left by a crash in the middle of write()."""
        return sorted(glob.glob(
            os.path.join(glob.escape(str(self.resource_dir)),
                         f'.*{_TMP_SUFFIX}')))


def check_node_id(host: dict) -> None:
    """A host of a parsed .res has a node-id DRBD can use (0..31).

    drbdadm itself accepts 32, so the range is checked here.
    """
    node_id = host['node_id']
    if node_id is None or not (protocol.NODE_ID_MIN <= node_id
                               <= protocol.NODE_ID_MAX):
        raise AgentError(
            protocol.E_INVALID,
            f'res_text: node-id of {host["name"]} must be '
            f'{protocol.NODE_ID_MIN}..{protocol.NODE_ID_MAX}, '
            f'not {node_id}', 'node_id')


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
