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
"""DRBD 9 commands of the agent: drbdadm, drbdsetup status, drbdmeta.

Everything that reads or changes a resource goes through ``drbdadm -c
<drbd_config>`` as this node (``__DRBD_NODE__``); the running state comes
from ``drbdsetup status --json``; ``drbdmeta ... get-gi`` tells whether a
backing device already holds DRBD metadata (create-md is never run on one
that does).
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import logging
import re

from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node.errors import CommandError
from blackstor_cinder.node import executor
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

#: The current UUID of metadata no replica has used yet (drbdmeta
#: create-md); bit 0 of a UUID is a flag, not part of it.
UUID_JUST_CREATED = 4
UUID_FLAGS = 1
#: drbdsetup's exit code for "No such resource" and similar.
_RC_NO_RESOURCE = 10
_NO_MODULE_RE = re.compile(
    r'modprobe|generic netlink|Could not connect to .drbd.|'
    r'not loaded|No such device or address', re.I)
_PROC_DRBD = ('/sys/module/drbd/version', '/proc/drbd')


class Drbd:
    """drbdadm/drbdsetup/drbdmeta for one node."""

    def __init__(self, run: executor.Executor, drbd_config: str,
                 node_name: str, proc_files: tuple[str, ...] = _PROC_DRBD
                 ) -> None:
        self._run = run
        self.drbd_config = drbd_config
        self.node_name = node_name
        self._proc_files = proc_files

    # -- drbdadm -----------------------------------------------------------

    def drbdadm(self, *args: str, check: bool = True) -> executor.Result:
        return self._run(['drbdadm', '-c', self.drbd_config, *args],
                         env={'__DRBD_NODE__': self.node_name},
                         check=check)

    def up(self, resource: str) -> None:
        self.drbdadm('up', resource)

    def adjust(self, resource: str) -> None:
        self.drbdadm('adjust', resource)

    def down(self, resource: str) -> None:
        self.drbdadm('down', resource)

    def create_md(self, resource: str, max_peers: int) -> None:
        self.drbdadm('--', f'--max-peers={max_peers}', '--force',
                     'create-md', resource)

    def wipe_md(self, resource: str) -> None:
        self.drbdadm('--', '--force', 'wipe-md', resource)

    def resize(self, resource: str, assume_clean: bool) -> None:
        volume = f'{resource}/{protocol.VOLUME_NUMBER}'
        if assume_clean:
            self.drbdadm('--', '--assume-clean', 'resize', volume)
        else:
            self.drbdadm('resize', volume)

    def suspend_io(self, minors: Sequence[int],
                   timeout: float | None = None) -> None:
        """``drbdsetup suspend-io`` of each minor, under ``timeout``.

        Not through drbdadm: it gives drbdsetup 5 s (SLEEPS_SHORT) and
        kills it, and since DRBD 9.2.14 suspend-io returns only when the
        writes in flight have drained, which takes longer on a busy node.
        """
        for minor in minors:
            self._run(['drbdsetup', 'suspend-io', str(minor)],
                      timeout=timeout)

    def resume_io(self, minors: Sequence[int],
                  timeout: float | None = None) -> None:
        for minor in minors:
            self._run(['drbdsetup', 'resume-io', str(minor)],
                      timeout=timeout)

    def new_current_uuid(self, resource: str, clear_bitmap: bool) -> None:
        volume = f'{resource}/{protocol.VOLUME_NUMBER}'
        if clear_bitmap:
            self.drbdadm('new-current-uuid', '--clear-bitmap', volume)
        else:
            self.drbdadm('new-current-uuid', volume)

    # -- drbdsetup ---------------------------------------------------------

    def status(self, resource: str | None = None) -> list[dict]:
        """``drbdsetup status --json`` entries ([] when not running).

        With ``--statistics``, so every device reports its ``size``
        (drbd-utils prints the kernel's statistics only when asked or when
        the kernel sent them).
        """
        argv = ['drbdsetup', 'status', '--json', '--statistics']
        if resource:
            argv.append(resource)
        result = self._run(argv, check=False)
        if result.rc != 0:
            if _NO_MODULE_RE.search(result.stderr):
                raise AgentError(
                    protocol.E_MISSING,
                    'the DRBD kernel module is not loaded (drbdsetup: '
                    f'{_first_line(result.stderr)})', module='drbd')
            if resource and result.rc == _RC_NO_RESOURCE:
                return []
            raise CommandError(result.argv, result.rc, result.stdout,
                               result.stderr)
        try:
            entries = json.loads(result.stdout or '[]')
        except ValueError as e:
            raise AgentError(protocol.E_FAILED,
                             f'drbdsetup status output is not JSON: {e}'
                             ) from None
        if not isinstance(entries, list):
            raise AgentError(protocol.E_FAILED,
                             'drbdsetup status output is not a list')
        return [e for e in entries if isinstance(e, dict)
                and (resource is None or e.get('name') == resource)]

    def state(self, resource: str) -> dict | None:
        """The resource's running state, None when it is down here."""
        entries = self.status(resource)
        return entries[0] if entries else None

    def forget_peer(self, resource: str, node_id: int) -> None:
        """``drbdsetup forget-peer``: free a removed peer's bitmap slot.

        The kernel refuses it while a connection to that node-id exists
        (drbd_nl.c, drbd_adm_forget_peer: ERR_NET_CONFIGURED); drbdadm
        cannot name a peer its .res no longer lists, so the node-id goes
        to drbdsetup directly.
        """
        self._run(['drbdsetup', 'forget-peer', resource, str(node_id)])

    def force_down(self, resource: str) -> None:
        """``drbdsetup down`` for a resource that has no .res file left."""
        self._run(['drbdsetup', 'down', resource])

    # -- drbdmeta ----------------------------------------------------------

    def has_metadata(self, minor: int, disk: str, node_id: int) -> bool:
        """Whether ``disk`` holds valid v09 internal metadata."""
        return self.current_uuid(minor, disk, node_id) is not None

    def current_uuid(self, minor: int, disk: str,
                     node_id: int) -> int | None:
        """The current data generation UUID on ``disk``; None: no metadata.

        From ``drbdmeta ... get-gi``, whose line starts with it in hex
        (``0000000000000004:0000000000000000:...`` after create-md).
        """
        result = self._run(['drbdmeta', str(minor), 'v09', disk, 'internal',
                            'get-gi', '--node-id', str(node_id)],
                           check=False)
        if result.rc == 0:
            first = result.stdout.strip().split(':', 1)[0]
            try:
                return int(first, 16)
            except ValueError:
                raise AgentError(
                    protocol.E_FAILED, f'drbdmeta get-gi of {disk} printed '
                    f'{_first_line(result.stdout)!r}, not generation '
                    'UUIDs') from None
        # The real drbdmeta 9.22 exits 255 and prints nothing when the disk
        # has no metadata; other versions say so with rc 1.
        if result.rc in (1, 255) or 'No valid meta data' in result.stderr:
            return None
        raise CommandError(result.argv, result.rc, result.stdout,
                           result.stderr)

    # -- versions ----------------------------------------------------------

    def utils_version(self) -> str | None:
        result = self._run(['drbdadm', '--version'], check=False)
        match = re.search(r'^DRBDADM_VERSION=(\S+)', result.stdout, re.M)
        return match.group(1) if match else None

    def kernel_version(self) -> str | None:
        """The loaded module's version, None when there is none."""
        for name in self._proc_files:
            try:
                with open(name) as f:
                    text = f.read(4096)
            except OSError:
                continue
            match = re.search(r'(?:version:\s*)?(\d+\.\d+\.\d+\S*)', text)
            if match:
                return match.group(1)
        # drbdsetup asks the module itself (and the test stand-in answers).
        try:
            result = self._run(['drbdsetup', '--version'], check=False)
        except AgentError:
            return None
        match = re.search(r'^DRBD_KERNEL_VERSION=(\d\S*)', result.stdout,
                          re.M)
        if result.rc == 0 and match and match.group(1) != '0':
            return match.group(1)
        return None


_SIZE_UNITS = {'': 512, 's': 512, 'k': 1 << 10, 'm': 1 << 20,
               'g': 1 << 30, 't': 1 << 40}
_SIZE_RE = re.compile(r'^(\d+)([sSkKmMgGtT]?)\Z')


def size_bytes(text: str) -> int:
    """Bytes of a DRBD size (``disk { size }``): sectors unless a unit."""
    match = _SIZE_RE.match(str(text).strip())
    if not match:
        raise ValueError(f'{text!r} is not a DRBD size')
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and 'modprobe: not found' not in line]
    return lines[0] if lines else 'no message'
