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
"""LVM thin volumes, confined to the pools the node is configured with.

Every LV the agent creates carries the tag ``blackstor``; snapshots also
carry ``blackstor-snapshot``. The agent changes or removes only LVs that
carry its tag and live in a configured thin pool, so an operator's own LV
that happens to have a resource's name is never touched.

Inside :meth:`Lvm.session` (one agent operation) each volume group's
``lvs`` and ``vgs`` reports are read once and kept until a command of the
session changes the group; the next read after a change asks LVM again.
Each LVM command costs a second or two on a small machine, and ``lvs``
on a node with many LVs is not free either.

LVM must never open a DRBD device: :meth:`Lvm.drbd_scan_problem` reads
the device filters LVM applies and :mod:`.lvmfilter` tells whether they
let a DRBD device through.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from typing import Callable, Iterator

from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node.errors import CommandError
from blackstor_cinder.node import executor
from blackstor_cinder.node import lvmfilter
from blackstor_cinder import protocol

TAG = 'blackstor'
SNAPSHOT_TAG = 'blackstor-snapshot'
#: Prefix of the tag naming the create request that made an LV.
CREATE_TAG_PREFIX = 'blackstor-create-'

#: lvs/vgs exit code and message when the volume group does not exist.
_RC_NOT_FOUND = 5
_VG_NOT_FOUND_RE = re.compile(r'Volume group "?[^"\s]*"? not found')
_LV_NOT_FOUND = 'Failed to find logical volume'
# Names of LVs the agent may create: protocol names plus the rollback
# temporary (a '.' suffix no protocol name can have).
_LV_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]{0,62}(\.[a-z]+)?$')

# ``zero``: whether a thin pool zeroes newly provisioned blocks (LVM prints
# "zero" or "", 1 or 0 with --binary); read with the rest, in the one lvs.
LV_FIELDS = ('lv_name,vg_name,lv_size,lv_attr,pool_lv,origin,data_percent,'
             'lv_tags,zero')


@dataclasses.dataclass
class LogicalVolume:
    name: str
    vg: str
    size: int
    attr: str
    pool_lv: str
    origin: str
    data_percent: float
    tags: list[str]
    zero: bool = False

    @property
    def is_thin_pool(self) -> bool:
        return self.attr.startswith('t')

    @property
    def ours(self) -> bool:
        return TAG in self.tags

    @property
    def is_snapshot(self) -> bool:
        return SNAPSHOT_TAG in self.tags

    def made_by(self, create_id: str) -> bool:
        """Whether the create request ``create_id`` made this LV."""
        return create_tag(create_id) in self.tags


@dataclasses.dataclass
class VolumeGroup:
    name: str
    size: int
    free: int
    extent: int


@dataclasses.dataclass(frozen=True)
class Pool:
    """A configured thin pool: ``<vg>/<thin>``."""
    vg: str
    thin: str

    @property
    def name(self) -> str:
        return f'{self.vg}/{self.thin}'


class Lvm:
    """LVM commands for the configured thin pools."""

    def __init__(self, run: executor.Executor, pools: list[str],
                 device_root: str = '/dev') -> None:
        self._run = run
        self.pools = {p: Pool(*p.split('/')) for p in pools}
        self.device_root = device_root.rstrip('/') or '/'
        #: (command, vg) -> parsed report, while a session is open.
        self._cache: dict[tuple[str, str], list] | None = None

    # -- one operation -----------------------------------------------------

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Read each VG's reports once; again only after a change.

        Sessions do not nest: an inner one shares the outer one's reports.
        """
        if self._cache is not None:
            yield
            return
        self._cache = {}
        try:
            yield
        finally:
            self._cache = None

    def _cached(self, command: str, vg: str,
                read: Callable[[], list]) -> list:
        if self._cache is None:
            return read()
        key = (command, vg)
        if key not in self._cache:
            self._cache[key] = read()
        return list(self._cache[key])

    def _changing(self, vg: str) -> None:
        """Forget what was read of ``vg``: a command is about to change it.

        Forgotten before the command runs, so a command that fails half
        way is never hidden behind an old report either.
        """
        if self._cache is not None:
            self._cache.pop(('lvs', vg), None)
            self._cache.pop(('vgs', vg), None)

    # -- confinement -------------------------------------------------------

    def pool(self, name: str, field: str = 'pool') -> Pool:
        """The configured pool called ``name``; invalid-input otherwise."""
        try:
            return self.pools[name]
        except (KeyError, TypeError):
            configured = ', '.join(sorted(self.pools)) or 'none'
            raise AgentError(
                protocol.E_INVALID,
                f'{field}: {name!r} is not a pool of this node '
                f'(configured: {configured})', field) from None

    def device_path(self, vg: str, lv: str) -> str:
        return f'{self.device_root}/{vg}/{lv}'

    def pool_of_device(self, path: str | None) -> tuple[Pool, str] | None:
        """(pool, LV name) of a <device_root>/<vg>/<lv> path, or None.

        None also when the VG is not a configured pool's.
        """
        if not path:
            return None
        prefix = f'{self.device_root}/'
        if not path.startswith(prefix):
            return None
        parts = path[len(prefix):].split('/')
        if len(parts) != 2 or not protocol.NAME_RE.match(parts[1]):
            return None
        for pool in self.pools.values():
            if pool.vg == parts[0]:
                return pool, parts[1]
        return None

    # -- reading -----------------------------------------------------------

    def _report(self, argv: list[str], vg: str, key: str) -> list[dict]:
        result = self._run(argv, check=False)
        if result.rc != 0:
            if (result.rc == _RC_NOT_FOUND
                    and _VG_NOT_FOUND_RE.search(result.stderr)):
                raise AgentError(protocol.E_MISSING,
                                 f'volume group {vg} not found', 'pool',
                                 vg=vg)
            raise CommandError(result.argv, result.rc, result.stdout,
                               result.stderr)
        try:
            report = json.loads(result.stdout)
            return list(report['report'][0].get(key, []))
        except (ValueError, KeyError, IndexError, TypeError,
                AttributeError) as e:
            raise AgentError(protocol.E_FAILED,
                             f'cannot read the output of {argv[0]}: '
                             f'{e}') from None

    def vg(self, vg: str) -> VolumeGroup:
        rows = self._cached('vgs', vg, lambda: self._report(
            ['vgs', '--reportformat', 'json', '--units', 'b', '--nosuffix',
             '-o', 'vg_name,vg_size,vg_free,vg_extent_size', vg], vg, 'vg'))
        for row in rows:
            if row.get('vg_name') == vg:
                return VolumeGroup(vg, _int(row.get('vg_size')),
                                   _int(row.get('vg_free')),
                                   _int(row.get('vg_extent_size')) or 1)
        raise AgentError(protocol.E_MISSING, f'volume group {vg} not found',
                         'pool', vg=vg)

    def lvs(self, vg: str) -> list[LogicalVolume]:
        return self._cached('lvs', vg, lambda: self._read_lvs(vg))

    def _read_lvs(self, vg: str) -> list[LogicalVolume]:
        rows = self._report(
            ['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix',
             '-o', LV_FIELDS, vg], vg, 'lv')
        return [LogicalVolume(
            name=row.get('lv_name', ''), vg=row.get('vg_name', vg),
            size=_int(row.get('lv_size')), attr=row.get('lv_attr', ''),
            pool_lv=row.get('pool_lv', ''), origin=row.get('origin', ''),
            data_percent=_float(row.get('data_percent')),
            tags=[t for t in (row.get('lv_tags') or '').split(',') if t],
            zero=str(row.get('zero', '')).strip() in ('zero', '1'))
            for row in rows]

    def thin_pool(self, pool: Pool,
                  lvs: list[LogicalVolume] | None = None) -> LogicalVolume:
        """The pool's thin pool LV; missing-dependency if it is absent.

        ``lvs``: the VG's LVs when the caller has them already.
        """
        for lv in self.lvs(pool.vg) if lvs is None else lvs:
            if lv.name == pool.thin and lv.is_thin_pool:
                return lv
        raise AgentError(protocol.E_MISSING,
                         f'thin pool {pool.name} not found', 'pool',
                         pool=pool.name)

    def check_pool(self, pool: Pool) -> tuple[VolumeGroup, LogicalVolume]:
        """The pool's VG and thin pool LV; missing-dependency if absent."""
        vg = self.vg(pool.vg)
        return vg, self.thin_pool(pool)

    def find(self, pool: Pool, name: str) -> LogicalVolume | None:
        for lv in self.lvs(pool.vg):
            if lv.name == name:
                return lv
        return None

    def find_ours(self, pool: Pool, name: str, field: str,
                  snapshot: bool | None = None) -> LogicalVolume | None:
        """The LV ``name`` if it is ours, None if there is none.

        An LV of that name that is not ours (or, when ``snapshot`` is not
        None, not of that kind) is a conflict.
        """
        lv = self.find(pool, name)
        if lv is None:
            return None
        if not lv.ours or lv.pool_lv != pool.thin:
            raise AgentError(
                protocol.E_CONFLICT,
                f'{field}: LV {pool.vg}/{name} exists but was not made by '
                f'blackstor in {pool.name}; not touching it', field)
        if snapshot is not None and lv.is_snapshot != snapshot:
            kind = 'a snapshot' if lv.is_snapshot else 'a volume'
            raise AgentError(protocol.E_CONFLICT,
                             f'{field}: LV {pool.vg}/{name} is {kind}',
                             field)
        return lv

    def pool_usage(self, pool: Pool) -> dict:
        """{name, total_bytes, free_bytes, provisioned_bytes, ...}.

        ``zero_new_blocks``: the thin pool overwrites newly provisioned
        blocks with zeros (LVM's default), so a thin LV never shows
        another volume's old data.
        """
        vg = self.vg(pool.vg)
        lvs = self.lvs(pool.vg)
        thin = self.thin_pool(pool, lvs)
        used = min(max(thin.data_percent, 0.0), 100.0)
        provisioned = sum(lv.size for lv in lvs if lv.pool_lv == pool.thin)
        return {'name': pool.name, 'total_bytes': thin.size,
                'free_bytes': int(thin.size * (100.0 - used) / 100.0),
                'provisioned_bytes': provisioned,
                'extent_bytes': vg.extent, 'vg_free_bytes': vg.free,
                'zero_new_blocks': thin.zero}

    def device_filters(self) -> dict[str, str]:
        """The filter options LVM applies, as lvmconfig prints their values.

        ``--typeconfig full`` gives the effective value: lvm.conf (and
        lvmlocal.conf) where set, LVM's default otherwise.
        """
        keys = [f'devices/{option}' for option in lvmfilter.FILTER_OPTIONS]
        result = self._run(['lvmconfig', '--typeconfig', 'full', *keys],
                           check=False)
        if result.rc != 0:
            raise AgentError(
                protocol.E_MISSING,
                f'cannot read LVM\'s device filters (lvmconfig exited '
                f'{result.rc}: {result.stderr.strip()[:300]})')
        return lvmfilter.parse_lvmconfig(result.stdout)

    def drbd_scan_problem(self) -> str | None:
        """Why LVM would open this node's DRBD devices, or None.

        Reads the filters (one lvmconfig) and tests them with the names a
        DRBD device of this node has (:func:`.lvmfilter.drbd_device_names`).
        """
        vg = min((p.vg for p in self.pools.values()), default='vg')
        names = lvmfilter.drbd_device_names(
            lvmfilter.SAMPLE_MINOR, lvmfilter.SAMPLE_RESOURCE,
            self.device_path(vg, lvmfilter.SAMPLE_RESOURCE))
        return lvmfilter.scan_problem(self.device_filters(), names)

    # -- changing ----------------------------------------------------------

    def create_thin(self, pool: Pool, name: str, size: int,
                    tags: tuple[str, ...] = (TAG,)) -> None:
        self._changing(pool.vg)
        self._run(['lvcreate', '--yes', '--type', 'thin', '--virtualsize',
                   f'{size}b', '--thinpool', pool.thin, '--name',
                   _lv_name(name), *_tag_args(tags), pool.vg])

    def snapshot(self, pool: Pool, origin: str, name: str,
                 tags: tuple[str, ...]) -> None:
        self._changing(pool.vg)
        self._run(['lvcreate', '--yes', '--snapshot', '--setactivationskip',
                   'n', '--activate', 'y', '--name', _lv_name(name),
                   *_tag_args(tags), f'{pool.vg}/{_lv_name(origin)}'])

    def remove(self, pool: Pool, name: str) -> bool:
        """lvremove; False when the LV was already gone."""
        self._changing(pool.vg)
        result = self._run(['lvremove', '--force',
                            f'{pool.vg}/{_lv_name(name)}'], check=False)
        if result.rc == 0:
            return True
        if _LV_NOT_FOUND in result.stderr:
            return False
        raise CommandError(result.argv, result.rc, result.stdout,
                           result.stderr)

    def extend(self, pool: Pool, name: str, size: int) -> None:
        self._changing(pool.vg)
        self._run(['lvextend', '--size', f'{size}b',
                   f'{pool.vg}/{_lv_name(name)}'])

    def rename(self, pool: Pool, old: str, new: str) -> None:
        self._changing(pool.vg)
        self._run(['lvrename', pool.vg, _lv_name(old), _lv_name(new)])

    def add_tag(self, pool: Pool, name: str, tag: str) -> None:
        self._changing(pool.vg)
        self._run(['lvchange', '--addtag', tag,
                   f'{pool.vg}/{_lv_name(name)}'])

    def del_tag(self, pool: Pool, name: str, tag: str) -> None:
        self._changing(pool.vg)
        self._run(['lvchange', '--deltag', tag,
                   f'{pool.vg}/{_lv_name(name)}'])


def create_tag(create_id: str) -> str:
    """The LV tag of the create request ``create_id`` (32 hex digits)."""
    protocol.check_create_id('create_id', create_id)
    return CREATE_TAG_PREFIX + create_id


def _lv_name(name: str) -> str:
    # Belt and braces: every caller passes validated names already.
    if not isinstance(name, str) or not _LV_NAME_RE.match(name):
        raise AgentError(protocol.E_INVALID, f'{name!r} is not an LV name '
                         'the agent may use')
    return name


def _tag_args(tags: tuple[str, ...]) -> list[str]:
    args = []
    for tag in tags:
        args += ['--addtag', tag]
    return args


def _int(value) -> int:
    try:
        return int(str(value).strip().rstrip('Bb') or 0)
    except ValueError:
        return 0


def _float(value) -> float:
    try:
        return float(str(value).strip() or 0)
    except ValueError:
        return 0.0
