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
"""The node agent: one request in, one reply out.

:meth:`Agent.handle` validates a request against the wire contract
(:mod:`blackstor_cinder.protocol`), runs the operation's handler and turns
the outcome into a reply; it never raises. Every handler is idempotent:
it looks at what exists (LVs, the .res file, the running DRBD state)
and does only what is missing, so running it twice, or again after a
crash half-way, ends in the same state. A handler that fails undoes
what it created itself (an LV, a .res file, a resource it brought up).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from typing import Any, Callable, Iterator

from blackstor_cinder.node import client as client_mod
from blackstor_cinder.node import config as node_config
from blackstor_cinder.node import drbd as drbd_mod
from blackstor_cinder.node import drbdconf
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import executor
from blackstor_cinder.node import lease as lease_mod
from blackstor_cinder.node import lvm as lvm_mod
from blackstor_cinder.node import resfiles
from blackstor_cinder.node import resrender
from blackstor_cinder.node import sizing
from blackstor_cinder.node import zeroing
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)
GiB = 1 << 30

#: One line per operation, for ``blackstor-node --help``.
OP_HELP = {
    'inventory': 'versions, pools (total/free/provisioned), resources, '
                 'volume and snapshot LVs, used minors and ports',
    'status': 'one resource: its .res definition and running DRBD state',
    'create': 'thin LV sized for DRBD metadata, .res, create-md, up',
    'create-from-snapshot': 'thin snapshot of a snapshot as the LV, .res, '
                            'up (no create-md)',
    'adjust': 'validate and write a new .res, drbdadm adjust',
    'delete': 'down, wipe-md, lvremove, remove the .res',
    'resize': 'grow the LV (lv) and/or DRBD (drbd, assume_clean; '
              'spec: the .res with the new size first)',
    'suspend-io': 'suspend I/O of a resource (for a consistent snapshot; '
                  'lease: seconds after which it resumes by itself)',
    'resume-io': 'resume I/O of a resource (and cancel its lease)',
    'new-current-uuid': 'new current UUID (clear_bitmap: skip the '
                        'initial sync of thin replicas)',
    'forget-peer': 'free the bitmap slot of a peer removed from the '
                   'resource',
    'snapshot-create': 'thin snapshot of a resource\'s LV',
    'snapshot-delete': 'remove a snapshot LV',
    'snapshot-rollback': 'take the resource down here and make its LV a '
                         'thin snapshot of the snapshot again',
    'attach': 'bring a diskless client up (hypervisor side) -> '
              'device_path',
    'detach': 'take a diskless client down (hypervisor side)',
    'rename': 'down, rename LV and .res to new_name (spec: the renamed '
              'resource), up again (manage)',
    'wrap': 'make a bare thin LV lv the replica of a new resource: rename, '
            'tag, .res, create-md, up (undo: back to the bare LV)',
    'sync-source': 'make this replica the source of a full sync to its '
                   'peers (primary --force, secondary)',
    'snapshot-rename': 'rename a snapshot LV of the resource to new_name '
                       '(manage)',
}

#: LVs of a revert in progress: ``<res>.rollback``, the thin snapshot of
#: the snapshot that becomes ``<res>``, and ``<res>.previous``, the old
#: ``<res>`` kept until the revert is committed. No protocol name has a
#: '.', so they never clash with a resource or snapshot.
ROLLBACK_SUFFIX = '.rollback'
PREVIOUS_SUFFIX = '.previous'
REVERT_SUFFIXES = {ROLLBACK_SUFFIX: 'rollback', PREVIOUS_SUFFIX: 'previous'}


class _Undo:
    """Steps that revert what a handler did so far, run in reverse."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], Any]]] = []

    def push(self, what: str, step: Callable[[], Any]) -> None:
        self._steps.append((what, step))

    def forget(self) -> None:
        """What was done so far stays (it took effect and is right)."""
        self._steps.clear()

    @contextlib.contextmanager
    def on_failure(self) -> Iterator[_Undo]:
        """Run the steps if the block fails; the error names failed ones."""
        try:
            yield self
        except BaseException as e:
            failed = self.run()
            if failed and isinstance(e, AgentError):
                e.details['undo_failed'] = failed
            raise

    def run(self) -> list[str]:
        failed = []
        for what, step in reversed(self._steps):
            try:
                step()
            except Exception as e:
                LOG.error('Undo step "%s" failed: %s', what, e)
                failed.append(f'{what}: {e}')
        self._steps.clear()
        return failed


class Agent:
    """Runs protocol requests on this node."""

    def __init__(self, conf: node_config.NodeConfig,
                 execute: Callable | None = None,
                 popen: Callable | None = None) -> None:
        self.conf = conf
        #: Starts the detached suspend-lease process (tests replace it).
        self.popen = popen
        self.run = executor.Executor(execute, conf.root_helper,
                                     conf.command_timeout)
        self.store = resfiles.ResFileStore(
            conf.resource_dir, conf.drbd_config, conf.node_name,
            execute=self.run.execute, root_helper=conf.root_helper or None)
        self.lvm = lvm_mod.Lvm(self.run, conf.pools)
        self.drbd = drbd_mod.Drbd(self.run, conf.drbd_config,
                                  conf.node_name)
        self.marks = zeroing.GrowMarks(
            conf.state_dir or conf.lock_dir or zeroing.DEFAULT_DIR)

    # -- entry point -------------------------------------------------------

    def handle(self, request: Any) -> tuple[dict, int]:
        """(reply, exit code) for one request; never raises."""
        try:
            protocol.validate_request(request)
        except protocol.ProtocolError as e:
            message = str(e)
            if e.field == 'secret':
                message = 'secret: not a valid shared secret'
            return (protocol.error_reply(protocol.E_INVALID, message,
                                         e.field),
                    protocol.EXIT_CODES[protocol.E_INVALID])
        op = request['op']
        handler = getattr(self, '_op_' + op.replace('-', '_'))
        try:
            with self._lock(_lock_name(request)), self.lvm.session():
                result = handler(request)
        except AgentError as e:
            LOG.warning('%s failed: %s', op, _mask(e.message, request))
            e.message = _mask(e.message, request)
            return e.reply(), e.exit_code
        except Exception as e:
            LOG.exception('Unexpected error in %s', op)
            return (protocol.error_reply(
                protocol.E_INTERNAL,
                _mask(f'{op}: {type(e).__name__}: {e}', request)),
                protocol.EXIT_CODES[protocol.E_INTERNAL])
        return protocol.ok_reply(result), 0

    @contextlib.contextmanager
    def _lock(self, name: str | None) -> Iterator[None]:
        """Hold ``<lock_dir>/<name>.lock``; the file goes when released.

        The holder removes the file before it lets go, so no lock file
        outlives its request (one per name ever asked for, refused ones
        too, was a leak). A waiter may then get the lock of a file that is
        no longer there, or no longer the one at that path: it checks
        after locking and starts again on the current file.
        """
        if not name or not self.conf.lock_dir:
            yield
            return
        path = os.path.join(self.conf.lock_dir, f'{name}.lock')
        deadline = time.monotonic() + self.conf.lock_timeout
        while True:
            fd = self._open_lock(path)
            try:
                self._flock(fd, name, deadline)
                try:
                    current = os.stat(path).st_ino
                except FileNotFoundError:
                    current = None
                if current != os.fstat(fd).st_ino:
                    continue        # unlinked by the holder before us
                try:
                    yield
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                return
            finally:
                os.close(fd)

    def _open_lock(self, path: str) -> int:
        try:
            os.makedirs(self.conf.lock_dir, mode=0o700, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise AgentError(protocol.E_FAILED,
                             f'cannot create a lock in {self.conf.lock_dir}:'
                             f' {e.strerror}') from None

    @staticmethod
    def _flock(fd: int, name: str, deadline: float) -> None:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise AgentError(
                        protocol.E_BUSY,
                        f'{name} is busy: another blackstor-node works '
                        'on it') from None
                time.sleep(0.2)

    # -- helpers -----------------------------------------------------------

    def _me(self, resource: str, spec: dict) -> dict:
        """This node's host entry in ``spec``, with its disk and minor."""
        for i, host in enumerate(spec['hosts']):
            if host['name'] == self.conf.node_name:
                return dict(host, field=f'spec.hosts[{i}]',
                            minor=spec['minor'],
                            disk=resrender.disk_path(resource, host,
                                                     self.lvm.device_root))
        raise AgentError(protocol.E_INVALID, f'spec.hosts: no host '
                         f'{self.conf.node_name} (this node)', 'spec.hosts')

    def _check_disk(self, me: dict, expected: str | None) -> None:
        if me['disk'] != expected:
            want = expected or 'none (diskless)'
            raise AgentError(
                protocol.E_INVALID,
                f'{me["field"]}: gives node {self.conf.node_name} the disk '
                f'{me["disk"] or "none"}; expected {want}', me['field'])

    def _check_replica_kept(self, resource: str, me: dict) -> None:
        """A node with the resource's LV is never written as diskless."""
        if me['disk'] is not None:
            return
        for pool in self.lvm.pools.values():
            if self.lvm.find_ours(pool, resource, 'resource',
                                  snapshot=False) is not None:
                raise AgentError(
                    protocol.E_CONFLICT,
                    f'{me["field"]}: node {self.conf.node_name} holds a '
                    f'replica of {resource} (LV {pool.vg}/{resource}); it '
                    'is never made diskless', me['field'])

    def _render(self, resource: str, spec: dict) -> str:
        try:
            return resrender.render(resource, spec, self.lvm.device_root)
        except protocol.ProtocolError as e:
            raise AgentError(protocol.E_INVALID, str(e), e.field) from None

    def _write_res(self, resource: str, request: dict,
                   expect_disk: str | None, undo: _Undo) -> bool:
        self._check_replica_kept(resource,
                                 self._me(resource, request['spec']))
        text = self._render(resource, request['spec'])
        path = self.store.path(resource)
        try:
            old = path.read_bytes()
        except FileNotFoundError:
            old = None
        except OSError as e:
            raise AgentError(protocol.E_FAILED,
                             f'cannot read {path}: {e.strerror}') from None
        changed = self.store.write(resource, text, request['secret'],
                                   expect_disk=expect_disk)
        if changed:
            if old is None:
                undo.push(f'remove {path}',
                          lambda: self.store.remove(resource))
            else:
                undo.push(f'restore {path}',
                          lambda: self.store.restore(resource, old))
        return changed

    def _up_or_adjust(self, resource: str, running: bool, changed: bool,
                      undo: _Undo) -> str:
        if not running:
            undo.push(f'down {resource}', lambda: self.drbd.down(resource))
            self.drbd.up(resource)
            return 'up'
        if changed:
            self.drbd.adjust(resource)
            return 'adjusted'
        return 'unchanged'

    def _require_snapshot(self, pool: lvm_mod.Pool,
                          snapshot: str) -> lvm_mod.LogicalVolume:
        snap = self.lvm.find_ours(pool, snapshot, 'snapshot', snapshot=True)
        if snap is None:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'snapshot: {pool.vg}/{snapshot} not found',
                             'snapshot')
        return snap

    def _clone(self, pool: lvm_mod.Pool, snapshot: str, name: str) -> None:
        """A thin snapshot of ``snapshot`` as a volume LV (not a snapshot)."""
        self.lvm.snapshot(pool, snapshot, name, (lvm_mod.TAG,))
        lv = self.lvm.find(pool, name)
        if lv is not None and lv.is_snapshot:
            self.lvm.del_tag(pool, name, lvm_mod.SNAPSHOT_TAG)

    def _lv_size_for(self, pool: lvm_mod.Pool, size: int, max_peers: int,
                     lv: lvm_mod.LogicalVolume | None) -> int:
        """The LV size that exposes ``size``: at most ``lv.size`` if it does.

        The VG's extent (a ``vgs``) is read only when ``lv`` is missing or
        too small: an LV is a whole number of extents, so one that exposes
        ``size`` already is never smaller than the smallest such multiple.
        """
        if lv is not None and sizing.usable_size_of(lv.size,
                                                    max_peers) >= size:
            return lv.size
        return sizing.lv_size_for(size, max_peers,
                                  self.lvm.vg(pool.vg).extent)

    def _check_fits(self, lv_size: int, size: int | None,
                    field: str = 'size', what: str = 'the snapshot',
                    advice: str = 'DRBD metadata sits at the end of the LV, '
                                  'so a restored volume is grown online '
                                  'with "resize" once it is up') -> None:
        """Refuse ``size`` beyond what an LV of ``lv_size`` exposes."""
        if size is None:
            return
        usable = sizing.usable_size_of(lv_size, self.conf.max_peers)
        if size > usable:
            raise AgentError(
                protocol.E_INVALID,
                f'{field}: {size} is more than {what} holds ({usable}); '
                f'{advice}', field)

    def _take_down(self, resource: str) -> bool:
        if self.drbd.state(resource) is None:
            return False
        if self.store.exists(resource):
            self.drbd.down(resource)
        else:
            self.drbd.force_down(resource)
        return True

    # -- operations --------------------------------------------------------

    def _op_create(self, req: dict) -> dict:
        resource, size = req['resource'], req['size']
        pool = self.lvm.pool(req['pool'])
        max_peers = req.get('max_peers', self.conf.max_peers)
        disk = self.lvm.device_path(pool.vg, resource)
        me = self._me(resource, req['spec'])
        self._check_disk(me, disk)
        if len(req['spec']['hosts']) > max_peers + 1:
            raise AgentError(
                protocol.E_INVALID,
                f'spec.hosts: {len(req["spec"]["hosts"])} hosts, but the '
                f'metadata is made for max_peers {max_peers}', 'spec.hosts')
        self.lvm.thin_pool(pool)
        lv = self.lvm.find_ours(pool, resource, 'resource', snapshot=False)
        need = self._lv_size_for(pool, size, max_peers, lv)
        running = self.drbd.state(resource) is not None
        uuid = None
        if lv is not None and not running:
            uuid = self.drbd.current_uuid(me['minor'], disk, me['node_id'])
            if uuid is not None and (uuid & ~drbd_mod.UUID_FLAGS
                                     != drbd_mod.UUID_JUST_CREATED):
                # A replica that was in use: never write over it.
                raise AgentError(
                    protocol.E_CONFLICT,
                    f'resource: LV {pool.vg}/{resource} holds DRBD metadata '
                    f'of a replica that was in use (current UUID '
                    f'{uuid:016X}) and {resource} is not running here; not '
                    'creating over it', 'resource')
        grow = False
        if lv is not None and lv.size < need:
            if running or uuid is not None:
                raise AgentError(
                    protocol.E_CONFLICT,
                    f'size: LV {pool.vg}/{resource} exists with {lv.size} '
                    f'bytes and DRBD metadata; {need} are needed. Grow it '
                    'with "resize" while the resource is up', 'size')
            grow = True
        res_created = not self.store.exists(resource)
        undo = _Undo()
        try:
            changed = self._write_res(resource, req, disk, undo)
            if lv is None:
                undo.push(f'lvremove {pool.vg}/{resource}',
                          lambda: self.lvm.remove(pool, resource))
                tags = (lvm_mod.TAG,)
                if 'create_id' in req:
                    tags += (lvm_mod.create_tag(req['create_id']),)
                self.lvm.create_thin(pool, resource, need, tags)
            elif grow:
                self.lvm.extend(pool, resource, need)
            md_created = False
            if not running and (lv is None or uuid is None):
                self.drbd.create_md(resource, max_peers)
                md_created = True
            action = self._up_or_adjust(resource, running, changed, undo)
        except BaseException as e:
            failed = undo.run()
            if failed and isinstance(e, AgentError):
                e.details['undo_failed'] = failed
            raise
        lv_size = max(need, lv.size if lv is not None else 0)
        return {'resource': resource, 'lv': f'{pool.vg}/{resource}',
                'lv_size': lv_size,
                'usable_size': sizing.usable_size_of(lv_size, max_peers),
                'lv_created': lv is None, 'res_created': res_created,
                'res_changed': changed, 'md_created': md_created,
                'brought_up': action == 'up', 'drbd': action}

    def _op_create_from_snapshot(self, req: dict) -> dict:
        resource, snapshot = req['resource'], req['snapshot']
        pool = self.lvm.pool(req['pool'])
        disk = self.lvm.device_path(pool.vg, resource)
        self._check_disk(self._me(resource, req['spec']), disk)
        self.lvm.thin_pool(pool)
        snap = self._require_snapshot(pool, snapshot)
        lv = self.lvm.find_ours(pool, resource, 'resource', snapshot=False)
        if lv is not None and lv.origin != snapshot:
            raise AgentError(
                protocol.E_CONFLICT,
                f'resource: LV {pool.vg}/{resource} exists and is not a '
                f'thin snapshot of {snapshot}', 'resource')
        self._check_fits(lv.size if lv is not None else snap.size,
                         req['size'])
        running = self.drbd.state(resource) is not None
        undo = _Undo()
        try:
            changed = self._write_res(resource, req, disk, undo)
            if lv is None:
                undo.push(f'lvremove {pool.vg}/{resource}',
                          lambda: self.lvm.remove(pool, resource))
                self._clone(pool, snapshot, resource)
            action = self._up_or_adjust(resource, running, changed, undo)
        except BaseException as e:
            failed = undo.run()
            if failed and isinstance(e, AgentError):
                e.details['undo_failed'] = failed
            raise
        lv_size = lv.size if lv is not None else snap.size
        return {'resource': resource, 'lv': f'{pool.vg}/{resource}',
                'lv_size': lv_size, 'origin': snapshot,
                'lv_created': lv is None, 'res_changed': changed,
                'drbd': action}

    def _op_adjust(self, req: dict) -> dict:
        resource = req['resource']
        me = self._me(resource, req['spec'])
        disk = me['disk']
        if disk is not None:
            found = self.lvm.pool_of_device(disk)
            if found is None or found[1] != resource:
                raise AgentError(
                    protocol.E_INVALID,
                    f'{me["field"]}.vg: {me["vg"]} is not the volume group '
                    f'of a pool configured on node {self.conf.node_name}',
                    f'{me["field"]}.vg')
            lv = self.lvm.find_ours(found[0], resource, 'resource',
                                    snapshot=False)
            if lv is None:
                raise AgentError(protocol.E_NOT_FOUND,
                                 f'resource: LV {found[0].vg}/{resource} '
                                 'not found', 'resource')
            # drbdadm adjust applies the connection changes before it
            # finds the size too big, so a refusal would leave them
            # half-made (found by fuzzing): refuse before anything runs.
            self._check_fits(lv.size, req['spec'].get('size'),
                             'spec.size', f'LV {found[0].vg}/{lv.name}',
                             'with its metadata at its end; grow it '
                             'with "resize" first. Nothing changed')
        running = self.drbd.state(resource) is not None
        undo = _Undo()
        try:
            changed = self._write_res(resource, req, disk, undo)
            if running and not changed:
                action = 'unchanged'
            else:
                if not running:
                    # adjust of a resource that is down is a full up; one
                    # that fails half-way (attach refused) leaves it half
                    # up (found by fuzzing).
                    undo.push(f'down {resource}',
                              lambda: self.drbd.down(resource))
                self.drbd.adjust(resource)
                action = 'adjusted'
        except BaseException as e:
            failed = undo.run()
            if failed and isinstance(e, AgentError):
                e.details['undo_failed'] = failed
            raise
        return {'resource': resource, 'res_changed': changed,
                'drbd': action}

    def _op_delete(self, req: dict) -> dict:
        resource = req['resource']
        pool = self.lvm.pool(req['pool']) if 'pool' in req else None
        definition = None
        if self.store.exists(resource):
            try:
                definition = self.store.read_definition(resource)
            except AgentError as e:
                LOG.warning('Deleting %s with an unreadable .res: %s',
                            resource, e.message)
        mine = [h for h in (definition or {}).get('hosts', ())
                if h['name'] == self.conf.node_name]
        my_disk = mine[0]['disk'] if mine else None
        if pool is None and my_disk:
            found = self.lvm.pool_of_device(my_disk)
            if found is not None and found[1] == resource:
                pool = found[0]
        if 'create_id' in req:
            reason, pool = self._rollback_check(resource, req['create_id'],
                                                pool)
            if reason:
                LOG.warning('Not deleting %s: %s', resource, reason)
                return {'resource': resource, 'down': False,
                        'lv_removed': False, 'res_removed': False,
                        'revert_lvs_removed': [],
                        'kept': True, 'reason': reason}
        lv = (self.lvm.find_ours(pool, resource, 'resource', snapshot=False)
              if pool is not None else None)
        was_up = self._take_down(resource)
        if (lv is not None and definition is not None
                and my_disk == self.lvm.device_path(pool.vg, resource)):
            try:
                self.drbd.wipe_md(resource)
            except AgentError as e:
                # The LV goes next; a thin LV's blocks go with it.
                LOG.warning('wipe-md of %s failed: %s', resource, e.message)
        # A revert interrupted before its commit or undo leaves these; the
        # volume is going, so they go with it rather than leak.
        revert_lvs = [resource + suffix for suffix in REVERT_SUFFIXES
                      if pool is not None and self.lvm.find_ours(
                          pool, resource + suffix, 'resource',
                          snapshot=False) is not None]
        lv_removed = (self.lvm.remove(pool, resource)
                      if lv is not None else False)
        revert_removed = [name for name in revert_lvs
                          if self.lvm.remove(pool, name)]
        res_removed = self.store.remove(resource)
        # what an unfinished extend recorded goes with the LV
        self.marks.remove(resource)
        return {'resource': resource, 'down': was_up,
                'lv_removed': lv_removed, 'res_removed': res_removed,
                'revert_lvs_removed': revert_removed,
                'kept': False, 'reason': None}

    def _rollback_check(self, resource: str, create_id: str,
                        pool: lvm_mod.Pool | None
                        ) -> tuple[str | None, lvm_mod.Pool | None]:
        """(why the rollback of create ``create_id`` keeps it, its pool).

        No reason when the delete may go on: the LV was made by that
        create, or there is no LV of that name in any pool it could be in
        and the resource is not running here (the create failed before
        making the LV).
        """
        pools = [pool] if pool is not None else list(self.lvm.pools.values())
        for candidate in pools:
            lv = self.lvm.find(candidate, resource)
            if lv is None:
                continue
            if (lv.ours and lv.pool_lv == candidate.thin
                    and not lv.is_snapshot and lv.made_by(create_id)):
                return None, candidate
            return (f'LV {candidate.vg}/{resource} was not made by create '
                    f'{create_id}', pool)
        if self.drbd.state(resource) is not None:
            return (f'{resource} is running here without an LV made by '
                    f'create {create_id}', pool)
        return None, pool

    def _require_lv(self, pool: lvm_mod.Pool,
                    resource: str) -> lvm_mod.LogicalVolume:
        """The resource's LV in ``pool``; not-found naming it otherwise."""
        lv = self.lvm.find_ours(pool, resource, 'resource', snapshot=False)
        if lv is None:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'resource: LV {pool.vg}/{resource} not found',
                             'resource')
        return lv

    def _op_resize(self, req: dict) -> dict:
        resource, size = req['resource'], req['size']
        pool = self.lvm.pool(req['pool'])
        resize_drbd = req.get('drbd', False)
        disk = self.lvm.device_path(pool.vg, resource)
        if 'spec' in req or 'secret' in req:
            # The new .res carries the device's new size (disk { size }),
            # which drbdadm resize hands to drbdsetup resize --size.
            for field in ('spec', 'secret'):
                if field not in req:
                    raise AgentError(protocol.E_INVALID, f'{field}: '
                                     'missing (spec and secret go '
                                     'together)', field)
            if not resize_drbd:
                raise AgentError(protocol.E_INVALID, 'spec: only with '
                                 'drbd (a new .res for drbdadm resize)',
                                 'spec')
            self._check_disk(self._me(resource, req['spec']), disk)
        if resize_drbd and (_zeroes(req)
                            or self.marks.pending(resource)):
            self._refuse_suspended(resource)
        lv = self._require_lv(pool, resource)
        lv_size, grown = lv.size, False
        lv_size_before = lv.size
        mark = self._live_mark(resource)
        if req.get('lv', True):
            # The metadata was made with an unknown --max-peers: size for
            # the most, so the device can always expose ``size``.
            need = self._lv_size_for(pool, size, protocol.MAX_PEERS_MAX, lv)
            if lv.size < need:
                state = self.drbd.state(resource)
                if not drbd_mod.attached(state):
                    raise AgentError(
                        protocol.E_CONFLICT,
                        f'resource: {resource} is not attached on this node;'
                        ' its LV grows only while DRBD is attached (the '
                        'metadata at the end of the LV moves with "drbdadm '
                        'resize")', 'resource')
                if mark is None:
                    # Before the first lvextend: a retry after a crash
                    # must still find where the old metadata ended.
                    mark = zeroing.GrowMark(lv.size,
                                            drbd_mod.device_size(state))
                    self.marks.write(resource, mark)
                self.lvm.extend(pool, resource, need)
                lv_size, grown = need, True
        changed, zeroed, resynced = False, None, False
        if resize_drbd:
            undo = _Undo()
            try:
                if 'spec' in req:
                    changed = self._write_res(resource, req, disk, undo)
                zeroed, resynced = self._resize_drbd(resource, req, undo,
                                                     mark, lv_size_before)
            except BaseException as e:
                failed = undo.run()
                if failed and isinstance(e, AgentError):
                    e.details['undo_failed'] = failed
                raise
        return {'resource': resource, 'lv_size': lv_size,
                'lv_size_before': lv_size_before,
                'lv_size_base': (mark.lv_size if mark is not None
                                 else lv_size_before),
                'lv_grown': grown, 'drbd_resized': resize_drbd,
                'res_changed': changed, 'zeroed': zeroed,
                'resynced': resynced,
                'zero_pending': self.marks.pending(resource)}

    def _live_mark(self, resource: str) -> zeroing.GrowMark | None:
        """The resource's grow mark; a stale one is removed first."""
        mark = self.marks.read(resource)
        if mark is not None and mark.zero is None and mark.stale(
                drbd_mod.device_size(self.drbd.state(resource))):
            self.marks.remove(resource)
            return None
        return mark

    def _resize_drbd(self, resource: str, req: dict, undo: _Undo,
                     mark: zeroing.GrowMark | None, lv_size: int
                     ) -> tuple[list[int] | None, bool]:
        """drbdadm resize; (zeroed range, resynced) as the reply says.

        With --assume-clean the grown range is taken as identical on every
        replica, but where the old internal metadata was (zero_from ..
        zero_to) each replica holds its own bytes (node-id, bitmaps):
        those are overwritten with zeros through the DRBD device, which
        this node holds open (Primary, by auto-promote) from before the
        resize on, so no other node can write there first. The range is
        recorded as pending (:mod:`.zeroing`) before the resize and
        forgotten once zeroed and flushed; a pending one is finished here
        by any later resize with ``drbd``. Only a range this resize
        exposes, or one pending, is zeroed, and never below ``zero_from``
        (the size the volume has). When the device cannot be opened
        (another node is Primary), DRBD resyncs the grown range instead
        (no --assume-clean); a pending zeroing then waits.
        """
        assume_clean = req.get('assume_clean', False)
        lower, upper = req.get('zero_from'), req.get('zero_to')
        pending = mark.zero if mark is not None else None
        state = self.drbd.state(resource)
        device_size = drbd_mod.device_size(state)
        ranges = [pending] if pending else []
        if _zeroes(req) and (device_size is None or device_size <= lower):
            ranges.append((lower, upper))       # this resize exposes it
        if not ranges:
            self.drbd.resize(resource, assume_clean)
            return None, False
        start, end = min(r[0] for r in ranges), max(r[1] for r in ranges)
        if pending:
            self._check_pending(resource, pending, lower)
        minors = [d.get('minor') for d in (state or {}).get('devices') or ()
                  if d.get('volume', 0) == protocol.VOLUME_NUMBER]
        if not minors or not isinstance(minors[0], int):
            raise AgentError(protocol.E_NOT_FOUND, f'resource: {resource} '
                             'is not up on this node', 'resource')
        device = os.path.join(self.conf.device_root, f'drbd{minors[0]}')
        try:
            fd = os.open(device, os.O_WRONLY)
        except OSError as e:
            if pending:
                raise AgentError(
                    protocol.E_BUSY,
                    f'resource: a zeroing of [{pending[0]}, {pending[1]}) '
                    f'of {resource} is pending on {self.conf.node_name} '
                    f'and needs {device} open for writing, which failed '
                    f'({e.strerror}; another node Primary?): retry while '
                    'no other node uses the volume', 'resource') from None
            LOG.warning('Cannot open %(dev)s for writing (%(err)s); '
                        'resizing %(res)s without --assume-clean: DRBD '
                        'resyncs the grown range',
                        {'dev': device, 'err': e.strerror, 'res': resource})
            self.drbd.resize(resource, False)
            return None, True
        try:
            self.marks.write(resource, zeroing.GrowMark(
                mark.lv_size if mark is not None else lv_size,
                mark.device_size if mark is not None else device_size,
                (start, end)))
            if not pending or self._smaller_than_res(resource, device_size):
                self.drbd.resize(resource, True)
            # the device has its new size: the new .res stays
            undo.forget()
            end = min(end, os.lseek(fd, 0, os.SEEK_END))
            how = zeroing.zero_range(fd, start, end)
            self.marks.remove(resource)
        except OSError as e:
            raise AgentError(protocol.E_FAILED,
                             f'zeroing {device} from {start} to {end} '
                             f'failed: {e.strerror}; it stays pending on '
                             f'{self.conf.node_name} (the next resize with '
                             'drbd finishes it)') from None
        finally:
            os.close(fd)
        LOG.info('Zeroed %(dev)s from %(start)s to %(end)s (%(how)s)',
                 {'dev': device, 'start': start, 'end': end, 'how': how})
        return [start, max(start, end)], False

    def _check_pending(self, resource: str, pending: tuple[int, int],
                       lower: int | None) -> None:
        """Refuse to finish a pending zeroing that may destroy data."""
        where = (f'a zeroing of [{pending[0]}, {pending[1]}) of {resource} '
                 f'is pending on {self.conf.node_name}')
        if lower is None:
            raise AgentError(protocol.E_INVALID,
                             f'zero_from: missing; {where} and finishes '
                             'only with the size the volume has (zero_from)',
                             'zero_from')
        if pending[0] < lower:
            raise AgentError(
                protocol.E_CONFLICT,
                f'zero_from: {where}, but the volume has {lower} bytes: '
                'that range may hold data now. Not zeroing it, nothing '
                'changed; compare the replicas (drbdadm verify) and remove '
                f'{self.marks.path(resource)} once they agree', 'zero_from')

    def _smaller_than_res(self, resource: str,
                          device_size: int | None) -> bool:
        """Whether the running device is below its .res's size (or unknown).

        A pending zeroing is finished without ``drbdadm resize`` when the
        device already has its size (an older .res must not shrink it).
        """
        text = ((self.store.read_definition(resource) or {}).get('disk')
                or {}).get('size')
        if device_size is None or text is None:
            return True
        try:
            return device_size < drbd_mod.size_bytes(text)
        except ValueError:
            return True

    def _refuse_suspended(self, resource: str) -> None:
        # Writes to a device with suspended I/O wait until it resumes: the
        # zeroing would hang holding the lock (found by fuzzing).
        state = self.drbd.state(resource) or {}
        if any(value for key, value in state.items()
               if key.startswith('suspended')):
            raise AgentError(
                protocol.E_CONFLICT,
                f'resource: I/O of {resource} is suspended on this node; '
                'a resize that zeroes the old metadata area writes through '
                'the device: resume I/O first', 'resource')

    def _op_suspend_io(self, req: dict) -> dict:
        resource = req['resource']
        path = lease_mod.lease_path(self.conf, resource)
        state = self.drbd.state(resource)
        if state is None:
            lease_mod.remove(path)
            return {'resource': resource, 'running': False,
                    'suspended': False, 'lease_expires_in': None}
        seconds = req.get('lease')
        if seconds is None:
            # An explicit suspend without a lease is meant to last.
            lease_mod.remove(path)
        else:
            # The token is in place before I/O stops: whatever happens
            # to this agent or its reply from here on, the lease ends it.
            lease_id = lease_mod.new_id()
            lease_mod.write(path, lease_id, seconds)
            try:
                lease_mod.spawn(lease_mod.command(self.conf, resource,
                                                  lease_id, seconds),
                                self.popen)
            except BaseException:
                lease_mod.remove(path)
                raise
        if not _user_suspended(state):
            try:
                self.drbd.suspend_io(resource)
            except BaseException:
                lease_mod.remove(path)
                raise
        return {'resource': resource, 'running': True, 'suspended': True,
                'lease_expires_in': seconds}

    def _op_resume_io(self, req: dict) -> dict:
        return self._resume(req['resource'])

    def _resume(self, resource: str) -> dict:
        """Cancel any lease and resume; already so (or down) is success."""
        cancelled = lease_mod.remove(lease_mod.lease_path(self.conf,
                                                          resource))
        state = self.drbd.state(resource)
        if state is None:
            return {'resource': resource, 'running': False,
                    'suspended': False, 'lease_cancelled': cancelled}
        resumed = _user_suspended(state)
        if resumed:
            self.drbd.resume_io(resource)
        return {'resource': resource, 'running': True, 'suspended': False,
                'resumed': resumed, 'lease_cancelled': cancelled}

    def expire_lease(self, resource: str, lease_id: str) -> bool:
        """Resume ``resource`` if its lease file still holds ``lease_id``.

        Run by the lease process (:mod:`.lease`) when the lease is over,
        under the agent lock, as a ``resume-io`` would. True when it was
        still the current lease.
        """
        with self._lock(resource), self.lvm.session():
            path = lease_mod.lease_path(self.conf, resource)
            if lease_mod.read_id(path) != lease_id:
                return False
            self._resume(resource)
            return True

    def _op_new_current_uuid(self, req: dict) -> dict:
        resource = req['resource']
        if self.drbd.state(resource) is None:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'resource: {resource} is not up on this node',
                             'resource')
        clear = req.get('clear_bitmap', True)
        self.drbd.new_current_uuid(resource, clear)
        return {'resource': resource, 'clear_bitmap': clear}

    def _op_forget_peer(self, req: dict) -> dict:
        resource, node_id = req['resource'], req['node_id']
        if self.drbd.state(resource) is None:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'resource: {resource} is not up on this node',
                             'resource')
        definition = self.store.read_definition(resource)
        for host in (definition or {}).get('hosts') or ():
            if host.get('node_id') == node_id:
                raise AgentError(
                    protocol.E_CONFLICT,
                    f'node_id: {node_id} is {host.get("name")}, still a '
                    f'host of {resource} here; remove it from the .res '
                    'first', 'node_id')
        self.drbd.forget_peer(resource, node_id)
        return {'resource': resource, 'node_id': node_id}

    def _op_snapshot_create(self, req: dict) -> dict:
        resource, snapshot = req['resource'], req['snapshot']
        pool = self.lvm.pool(req['pool'])
        lv = self._require_lv(pool, resource)
        snap = self.lvm.find_ours(pool, snapshot, 'snapshot', snapshot=True)
        if snap is not None and snap.origin != resource:
            raise AgentError(
                protocol.E_CONFLICT,
                f'snapshot: {pool.vg}/{snapshot} exists and is a snapshot '
                f'of {snap.origin or "nothing"}, not of {resource}',
                'snapshot')
        if snap is None:
            self.lvm.snapshot(pool, resource, snapshot,
                              (lvm_mod.TAG, lvm_mod.SNAPSHOT_TAG))
        return {'snapshot': snapshot, 'pool': pool.name,
                'size_bytes': snap.size if snap else lv.size,
                'origin': resource, 'created': snap is None}

    def _op_snapshot_delete(self, req: dict) -> dict:
        snapshot = req['snapshot']
        pool = self.lvm.pool(req['pool'])
        snap = self.lvm.find_ours(pool, snapshot, 'snapshot', snapshot=True)
        removed = self.lvm.remove(pool, snapshot) if snap else False
        return {'snapshot': snapshot, 'pool': pool.name, 'removed': removed}

    def _op_snapshot_rollback(self, req: dict) -> dict:
        phase = req.get('phase')
        if phase is not None:
            return getattr(self, '_revert_' + phase)(
                req['resource'], self.lvm.pool(req['pool']), req)
        resource, snapshot = req['resource'], req['snapshot']
        pool = self.lvm.pool(req['pool'])
        snap = self._require_snapshot(pool, snapshot)
        self._check_fits(snap.size, req.get('size'))
        temp = resource + ROLLBACK_SUFFIX
        lv = self.lvm.find_ours(pool, resource, 'resource', snapshot=False)
        temp_lv = self.lvm.find_ours(pool, temp, 'resource', snapshot=False)
        if lv is None and temp_lv is None:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'resource: LV {pool.vg}/{resource} not found',
                             'resource')
        was_up = self._take_down(resource)
        # The new LV is made under a temporary name first, so a crash at
        # any point leaves the old LV or the new one (a rerun finishes).
        if lv is not None:
            if temp_lv is not None and temp_lv.origin != snapshot:
                self.lvm.remove(pool, temp)
                temp_lv = None
            if temp_lv is None:
                self._clone(pool, snapshot, temp)
            self.lvm.remove(pool, resource)
        self.lvm.rename(pool, temp, resource)
        return {'resource': resource, 'snapshot': snapshot,
                'lv_size': snap.size, 'down': was_up}

    # -- two-phase revert: prepare, swap, then commit or undo -------------

    def _revert_lvs(self, pool: lvm_mod.Pool, resource: str) -> tuple:
        find = self.lvm.find_ours
        return (find(pool, resource, 'resource', snapshot=False),
                find(pool, resource + ROLLBACK_SUFFIX, 'resource',
                     snapshot=False),
                find(pool, resource + PREVIOUS_SUFFIX, 'resource',
                     snapshot=False))

    def _revert_reply(self, phase: str, resource: str, pool: lvm_mod.Pool,
                      **extra: Any) -> dict:
        lv, rollback, previous = self._revert_lvs(pool, resource)
        return {'resource': resource, 'phase': phase,
                'lv': lv is not None, 'rollback_lv': rollback is not None,
                'previous_lv': previous is not None, **extra}

    def _revert_prepare(self, resource: str, pool: lvm_mod.Pool,
                        req: dict) -> dict:
        """``<res>.rollback`` = the snapshot; nothing else is touched."""
        snapshot = req['snapshot']
        lv, rollback, previous = self._revert_lvs(pool, resource)
        temp = resource + ROLLBACK_SUFFIX
        if previous is not None and rollback is None and lv is not None:
            # Swapped already: a late rerun of prepare changes nothing.
            return self._revert_reply('prepare', resource, pool,
                                      created=False, swapped=True)
        if lv is None:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'resource: LV {pool.vg}/{resource} not found',
                             'resource')
        snap = self._require_snapshot(pool, snapshot)
        self._check_fits(snap.size, req.get('size'))
        created = False
        if rollback is not None and rollback.origin != snapshot:
            self.lvm.remove(pool, temp)     # ours, of another revert
            rollback = None
        if rollback is None:
            self._clone(pool, snapshot, temp)
            created = True
        return self._revert_reply('prepare', resource, pool,
                                  created=created, swapped=False,
                                  lv_size=snap.size)

    def _revert_swap(self, resource: str, pool: lvm_mod.Pool,
                     req: dict) -> dict:
        """Down here; ``<res>`` -> ``.previous``, ``.rollback`` -> ``<res>``.

        Each rename is done only when still needed, so a rerun after a
        crash between them finishes the swap.
        """
        lv, rollback, previous = self._revert_lvs(pool, resource)
        if rollback is None and previous is not None and lv is not None:
            return self._revert_reply('swap', resource, pool, down=False,
                                      swapped=False)
        if rollback is None:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'resource: LV {pool.vg}/{resource}'
                             f'{ROLLBACK_SUFFIX} not found (prepare first)',
                             'resource')
        if lv is not None and previous is not None:
            raise AgentError(
                protocol.E_CONFLICT,
                f'resource: {pool.vg}/{resource}, its {ROLLBACK_SUFFIX} and '
                f'its {PREVIOUS_SUFFIX} LV all exist; undo or commit the '
                'earlier revert first', 'resource')
        was_up = self._take_down(resource)
        if lv is not None:
            self.lvm.rename(pool, resource, resource + PREVIOUS_SUFFIX)
        self.lvm.rename(pool, resource + ROLLBACK_SUFFIX, resource)
        return self._revert_reply('swap', resource, pool, down=was_up,
                                  swapped=True)

    def _revert_undo(self, resource: str, pool: lvm_mod.Pool,
                     req: dict) -> dict:
        """The old ``<res>`` back, whatever prepare and swap did here."""
        lv, rollback, previous = self._revert_lvs(pool, resource)
        was_up = restored = False
        if previous is not None:
            was_up = self._take_down(resource)
            if lv is not None:
                if rollback is not None:
                    # The swapped-in LV goes first: only one can be kept
                    # under the temporary name.
                    self.lvm.remove(pool, resource + ROLLBACK_SUFFIX)
                self.lvm.rename(pool, resource, resource + ROLLBACK_SUFFIX)
                rollback = True
            self.lvm.rename(pool, resource + PREVIOUS_SUFFIX, resource)
            restored = True
        removed = (self.lvm.remove(pool, resource + ROLLBACK_SUFFIX)
                   if rollback is not None else False)
        return self._revert_reply('undo', resource, pool, down=was_up,
                                  restored=restored, rollback_removed=removed)

    def _revert_commit(self, resource: str, pool: lvm_mod.Pool,
                       req: dict) -> dict:
        """Remove ``<res>.previous``: the revert is final here."""
        lv, rollback, previous = self._revert_lvs(pool, resource)
        if rollback is not None and previous is None:
            raise AgentError(
                protocol.E_CONFLICT,
                f'resource: {pool.vg}/{resource} was not swapped here yet '
                f'({resource}{ROLLBACK_SUFFIX} is still there); swap or '
                'undo, not commit', 'resource')
        removed = (self.lvm.remove(pool, resource + PREVIOUS_SUFFIX)
                   if previous is not None else False)
        return self._revert_reply('commit', resource, pool,
                                  previous_removed=removed)

    # -- manage (adopt) ----------------------------------------------------

    def _op_rename(self, req: dict) -> dict:
        """Rename a resource of ours here: LV, .res and DRBD resource.

        DRBD knows a resource by its name on this node only (peers match
        by node-id and address), so each replica is renamed on its own:
        down, ``lvrename``, the .res under the new name, up. Refused while
        the resource is Primary here (in use). Run again after it ended
        half-way, it converges: a done rename is brought up and reported.
        """
        old, new = req['resource'], req['new_name']
        pool = self.lvm.pool(req['pool'])
        disk = self.lvm.device_path(pool.vg, new)
        self._check_disk(self._me(new, req['spec']), disk)
        old_lv = self.lvm.find_ours(pool, old, 'resource', snapshot=False)
        new_lv = self.lvm.find_ours(pool, new, 'new_name', snapshot=False)
        if old_lv is None and new_lv is not None and self.store.exists(new):
            return {'resource': new, 'renamed': False,
                    'drbd': self._ensure_up(new)}
        if old_lv is None or not self.store.exists(old):
            raise AgentError(protocol.E_NOT_FOUND,
                             f'resource: {old} (LV {pool.vg}/{old} and its '
                             '.res) not found', 'resource')
        if new_lv is not None or self.lvm.find(pool, new) is not None \
                or self.store.exists(new):
            raise AgentError(protocol.E_CONFLICT,
                             f'new_name: {new} exists here', 'new_name')
        state = self.drbd.state(old)
        if state is not None and state.get('role') == 'Primary':
            raise AgentError(protocol.E_BUSY,
                             f'resource: {old} is in use here (Primary); '
                             'not renamed', 'resource')
        old_text = self.store.path(old).read_bytes()
        with _Undo().on_failure() as undo:
            if state is not None:
                self.drbd.down(old)
                undo.push(f'up {old}', lambda: self.drbd.up(old))
            self.lvm.rename(pool, old, new)
            undo.push(f'lvrename {new} {old}',
                      lambda: self.lvm.rename(pool, new, old))
            # the old .res goes first: drbdadm checks the new one against
            # the others, and the minor and port are the same
            self.store.remove(old)
            undo.push(f'restore the .res of {old}',
                      lambda: self.store.restore(old, old_text))
            self._write_res(new, req, disk, undo)
            self.marks.remove(old)
            self.drbd.up(new)
        return {'resource': new, 'renamed': True, 'drbd': 'up'}

    def _op_wrap(self, req: dict) -> dict:
        """Make the bare thin LV ``lv`` this node's replica of a new resource.

        The LV keeps its data: it is renamed to the resource, tagged, and
        gets internal metadata in the room past ``size`` (refused, saying
        how much is missing, when there is not enough). ``undo`` takes it
        back to the bare LV it was (metadata left in its tail).
        """
        resource, name = req['resource'], req['lv']
        pool = self.lvm.pool(req['pool'])
        max_peers = req.get('max_peers', self.conf.max_peers)
        disk = self.lvm.device_path(pool.vg, resource)
        me = self._me(resource, req['spec'])
        self._check_disk(me, disk)
        self.lvm.thin_pool(pool)
        if req.get('undo'):
            return self._unwrap(pool, resource, name)
        ours = self.lvm.find_ours(pool, resource, 'resource',
                                  snapshot=False)
        lv = self.lvm.find(pool, name)
        if lv is None and ours is not None and self.store.exists(resource):
            return {'resource': resource, 'wrapped': False,
                    'drbd': self._ensure_up(resource)}
        if lv is None or lv.pool_lv != pool.thin:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'lv: no thin LV {pool.vg}/{name} in pool '
                             f'{pool.name}', 'lv')
        if lv.ours:
            raise AgentError(protocol.E_CONFLICT,
                             f'lv: {pool.vg}/{name} is a BlackStor LV, not '
                             'a bare one', 'lv')
        if ours is not None or self.store.exists(resource):
            raise AgentError(protocol.E_CONFLICT,
                             f'resource: {resource} exists here',
                             'resource')
        if len(lv.attr) > 5 and lv.attr[5] == 'o':
            raise AgentError(protocol.E_BUSY,
                             f'lv: {pool.vg}/{name} is open (in use)', 'lv')
        need = sizing.lv_size_for(req['size'], max_peers,
                                  self.lvm.vg(pool.vg).extent)
        if lv.size < need:
            raise AgentError(
                protocol.E_INVALID, f'lv: {missing_room(lv.size, need)}',
                'lv')
        if self.drbd.current_uuid(me['minor'],
                                  self.lvm.device_path(pool.vg, name),
                                  me['node_id']) is not None:
            raise AgentError(
                protocol.E_CONFLICT,
                f'lv: {pool.vg}/{name} holds DRBD metadata (a replica of '
                'some resource); not wrapping it', 'lv')
        with _Undo().on_failure() as undo:
            self.lvm.rename(pool, name, resource)
            undo.push(f'lvrename {resource} {name}',
                      lambda: self.lvm.rename(pool, resource, name))
            self.lvm.add_tag(pool, resource, lvm_mod.TAG)
            undo.push(f'untag {resource}', lambda: self.lvm.del_tag(
                pool, resource, lvm_mod.TAG))
            self._write_res(resource, req, disk, undo)
            self.drbd.create_md(resource, max_peers)
            undo.push(f'down {resource}', lambda: self.drbd.down(resource))
            self.drbd.up(resource)
        return {'resource': resource, 'wrapped': True, 'drbd': 'up',
                'lv_size': lv.size}

    def _ensure_up(self, resource: str) -> str:
        """Up the resource of a manage step done already; what it did."""
        if self.drbd.state(resource) is not None:
            return 'unchanged'
        self.drbd.up(resource)
        return 'up'

    def _unwrap(self, pool: lvm_mod.Pool, resource: str, name: str) -> dict:
        lv = self.lvm.find_ours(pool, resource, 'resource', snapshot=False)
        if lv is None:
            if self.lvm.find(pool, name) is None:
                raise AgentError(protocol.E_NOT_FOUND,
                                 f'lv: neither {pool.vg}/{resource} nor '
                                 f'{pool.vg}/{name} exists', 'lv')
            return {'resource': resource, 'unwrapped': False}
        if self.lvm.find(pool, name) is not None:
            # checked before anything changes: the rename back would fail
            raise AgentError(protocol.E_CONFLICT,
                             f'lv: {pool.vg}/{name} exists: {resource} '
                             'cannot get that name back', 'lv')
        self._take_down(resource)
        self.store.remove(resource)
        self.lvm.del_tag(pool, resource, lvm_mod.TAG)
        self.lvm.rename(pool, resource, name)
        return {'resource': resource, 'unwrapped': True}

    def _op_snapshot_rename(self, req: dict) -> dict:
        """Rename a snapshot of ``resource`` here; done already is fine."""
        resource, old, new = req['resource'], req['snapshot'], req['new_name']
        pool = self.lvm.pool(req['pool'])
        snap = self.lvm.find_ours(pool, old, 'snapshot', snapshot=True)
        if snap is None:
            done = self.lvm.find_ours(pool, new, 'new_name', snapshot=True)
            if done is not None and done.origin == resource:
                return {'snapshot': new, 'renamed': False}
            raise AgentError(protocol.E_NOT_FOUND,
                             f'snapshot: {pool.vg}/{old} not found',
                             'snapshot')
        if snap.origin != resource:
            raise AgentError(
                protocol.E_CONFLICT,
                f'snapshot: {pool.vg}/{old} is a snapshot of '
                f'{snap.origin or "an LV that is gone"}, not of {resource}',
                'snapshot')
        if self.lvm.find(pool, new) is not None:
            raise AgentError(protocol.E_CONFLICT,
                             f'new_name: {pool.vg}/{new} exists',
                             'new_name')
        self.lvm.rename(pool, old, new)
        return {'snapshot': new, 'renamed': True}

    def _bare_lv(self, pool: lvm_mod.Pool,
                 lv: lvm_mod.LogicalVolume) -> dict:
        """An inventory entry of a thin LV not ours, with its wrap room.

        ``volume_bytes``: the largest whole GiB below its size (what a
        manage makes of it); ``missing_bytes``: how much the LV lacks for
        DRBD's metadata past that (0: it can be wrapped).
        """
        volume = lv.size // GiB * GiB
        missing = None
        if volume:
            need = sizing.lv_size_for(volume, self.conf.max_peers,
                                      self.lvm.vg(pool.vg).extent)
            missing = max(0, need - lv.size)
        return {'name': lv.name, 'pool': pool.name, 'size_bytes': lv.size,
                'volume_bytes': volume, 'missing_bytes': missing,
                'open': lv.attr[5:6] == 'o'}

    def _op_sync_source(self, req: dict) -> dict:
        """Make this replica's data the resource's: a full sync to peers.

        ``primary --force`` on an Inconsistent replica makes it UpToDate
        with a new data generation; peers whose metadata was just created
        take a full sync from it. Then back to Secondary. Nothing to do
        when the replica is UpToDate already (a retry).
        """
        resource = req['resource']
        state = self.drbd.state(resource)
        if state is None:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'resource: {resource} is not running here',
                             'resource')
        disk = next((d.get('disk-state') for d in state.get('devices') or ()
                     if d.get('volume', 0) == protocol.VOLUME_NUMBER), None)
        if disk == 'UpToDate':
            return {'resource': resource, 'forced': False}
        if disk != 'Inconsistent':
            raise AgentError(protocol.E_CONFLICT,
                             f'resource: {resource} is {disk} here, not '
                             'Inconsistent; not forcing it', 'resource')
        self.drbd.drbdadm('primary', '--force', resource)
        self.drbd.drbdadm('secondary', resource)
        return {'resource': resource, 'forced': True}

    def _op_attach(self, req: dict) -> dict:
        resource = req['resource']
        self._check_replica_kept(resource, self._me(resource, req['spec']))
        path = self._client(req.get('timeout')).connect(
            resource, self._render(resource, req['spec']), req['secret'],
            req.get('device_path'))
        return {'resource': resource, 'device_path': path}

    def _op_detach(self, req: dict) -> dict:
        resource = req['resource']
        self._client(None).disconnect(resource,
                                      force=req.get('force', False))
        return {'resource': resource}

    def _client(self, timeout: float | None) -> client_mod.DisklessClient:
        # The agent's own per-resource lock is held around every request.
        return client_mod.DisklessClient(
            self.run.execute, self.conf.root_helper,
            resource_dir=self.conf.resource_dir,
            drbd_config=self.conf.drbd_config,
            node_name=self.conf.node_name,
            device_root=self.conf.device_root,
            attach_timeout=timeout or self.conf.attach_timeout)

    def _op_status(self, req: dict) -> dict:
        resource = req['resource']
        exists = self.store.exists(resource)
        definition = self.store.read_definition(resource) if exists else None
        state = self.drbd.state(resource)
        return {'resource': resource, 'exists': exists,
                'definition': definition, 'state': state,
                'device_size': drbd_mod.device_size(state),
                'zero_pending': self.marks.pending(resource)}

    def _op_inventory(self, req: dict) -> dict:
        # The controller asks regularly: a good time to remove what a
        # killed writer left in the resource directory (it may hold a
        # shared secret).
        removed = self.store.remove_stale_temp_files()
        missing: list[str] = []

        def gather(what: Callable[[], Any], default: Any = None) -> Any:
            try:
                return what()
            except AgentError as e:
                if e.code != protocol.E_MISSING:
                    raise
                missing.append(e.message)
                return default

        utils_version = gather(self.drbd.utils_version)
        problem = self.store.config_problem()
        if problem:
            missing.append(problem)
        # Storage nodes only: a client (no pools) never runs LVM, so no
        # command of ours can scan a device whose I/O is suspended there.
        if self.lvm.pools and (problem := gather(
                self.lvm.drbd_scan_problem)):
            missing.append(problem)
        pools, volumes, snapshots, revert_lvs = [], [], [], []
        bare: list[dict] = []       # thin LVs not ours (manage)
        for name in sorted(self.lvm.pools):
            pool = self.lvm.pools[name]
            usage = gather(lambda: self.lvm.pool_usage(pool))
            if usage is None:
                continue
            pools.append(usage)
            for lv in self.lvm.lvs(pool.vg):
                if lv.pool_lv == pool.thin and not lv.ours:
                    bare.append(self._bare_lv(pool, lv))
                if lv.pool_lv != pool.thin or not lv.ours:
                    continue
                entry = {'name': lv.name, 'pool': name,
                         'size_bytes': lv.size, 'origin': lv.origin or None}
                base, dot, suffix = lv.name.rpartition('.')
                if dot and '.' + suffix in REVERT_SUFFIXES:
                    # Not a volume: a revert in progress (or left behind).
                    revert_lvs.append(dict(
                        entry, resource=base,
                        role=REVERT_SUFFIXES['.' + suffix]))
                    continue
                if not lv.is_snapshot:
                    entry['create_ids'] = sorted(
                        t[len(lvm_mod.CREATE_TAG_PREFIX):] for t in lv.tags
                        if t.startswith(lvm_mod.CREATE_TAG_PREFIX))
                (snapshots if lv.is_snapshot else volumes).append(entry)
        states = gather(self.drbd.status, [])
        if missing:
            raise AgentError(protocol.E_MISSING,
                             'this node cannot serve: ' + '; '.join(missing),
                             missing=missing)
        names = self.store.list_resources()
        resources = ({name: {} for name in names} if req.get('brief')
                     else self._resources(names, states))
        minors, ports = self._used_minors_ports(states)
        return {
            'brief': bool(req.get('brief')),
            'hostname': self.conf.node_name,
            'protocol_version': protocol.PROTOCOL_VERSION,
            'drbd_utils_version': utils_version,
            'drbd_kernel_version': self.drbd.kernel_version(),
            'pools': pools, 'resources': resources,
            'volumes': volumes, 'snapshots': snapshots,
            'revert_lvs': revert_lvs, 'bare_lvs': bare,
            'used_minors': sorted(minors), 'used_ports': sorted(ports),
            'removed_temp_files': removed,
        }

    def _resources(self, names: list[str], states: list[dict]
                   ) -> dict[str, dict]:
        """The inventory's ``resources``: one drbdadm for all of them."""
        running = {s.get('name'): s for s in states}
        definitions = self.store.read_definitions(names)
        resources = {}
        for name in names:
            definition = definitions[name]
            entry: dict[str, Any] = {'definition': definition}
            if isinstance(definition, AgentError):
                entry = {'definition': None, 'error': definition.message}
            elif definition is not None:
                definition.pop('secret', None)
            state = running.get(name)
            resources[name] = dict(entry, state=state,
                                   device_size=drbd_mod.device_size(state),
                                   zero_pending=self.marks.pending(name))
        return resources

    def _used_minors_ports(self, states: list[dict]
                           ) -> tuple[set[int], set[int]]:
        minors: set[int] = set()
        ports: set[int] = set()
        try:
            files = sorted(self.store.resource_dir.glob('*' +
                                                        resfiles.SUFFIX))
        except OSError:
            files = []
        for path in files:
            try:
                found = drbdconf.used_minors_ports(path.read_text())
            except (OSError, drbdconf.ParseError) as e:
                LOG.warning('Cannot read %s: %s', path, e)
                continue
            minors |= found[0]
            ports |= found[1]
        for state in states:
            for device in state.get('devices') or ():
                if isinstance(device.get('minor'), int):
                    minors.add(device['minor'])
        return minors, ports


def missing_room(lv_size: int, need: int) -> str:
    """Why an LV of ``lv_size`` bytes is too small, and by how much."""
    mib = -(-(need - lv_size) // (1 << 20))
    return (f'has {lv_size} bytes, no room for DRBD\'s internal metadata '
            f'past the volume ({need} bytes needed): extend it by {mib} '
            'MiB')


def _zeroes(req: dict) -> bool:
    """Whether a resize request asks to zero the old metadata area."""
    start, end = req.get('zero_from'), req.get('zero_to')
    return bool(req.get('assume_clean') and start is not None
                and end is not None and end > start)


def _user_suspended(state: dict) -> bool:
    """Whether DRBD reports I/O suspended by the user (suspend-io).

    Versions without ``suspended-user`` count as suspended when
    ``suspended`` is set, so a resume is never skipped.
    """
    if 'suspended-user' in state:
        return bool(state['suspended-user'])
    return bool(state.get('suspended', True))


def _lock_name(request: dict) -> str | None:
    if request['op'] in ('inventory', 'status'):
        return None
    if 'resource' in request:
        return request['resource']
    return 'snapshot-' + request['snapshot']


def _mask(message: str, request: dict) -> str:
    secret = request.get('secret') if isinstance(request, dict) else None
    if isinstance(secret, str) and secret:
        message = message.replace(secret, '***')
    # Imported when needed: compiling its patterns costs a tenth of a
    # second on a server (seconds on a small VM), at every agent start.
    from oslo_utils import strutils
    return strutils.mask_password(message)
