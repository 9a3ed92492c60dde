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
"""This node's storage and DRBD, and the steps the operations share.

:class:`Node` holds what every operation works with (the LVM pools, the
DRBD tools, the .res store, the grow marks) and the steps several of
them take: find this node's host entry in a spec, write a .res with its
undo, bring a resource up or adjust it, find the LVs a request names.
The operations themselves are in the ``ops_*`` modules, one family
each; :mod:`.agent` dispatches to them.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from blackstor_cinder.node import config as node_config
from blackstor_cinder.node import drbd as drbd_mod
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import executor
from blackstor_cinder.node import lvm as lvm_mod
from blackstor_cinder.node import resfiles
from blackstor_cinder.node import resrender
from blackstor_cinder.node import sizing
from blackstor_cinder.node.undo import Undo
from blackstor_cinder.node import zeroing
from blackstor_cinder import protocol


class Replica(NamedTuple):
    """Where this node's replica of a request's resource lives."""

    pool: lvm_mod.Pool
    disk: str           # the LV's device path
    me: dict            # this node's host entry (see Node.host_entry)
    max_peers: int      # what its metadata is (or is to be) made for


class Node:
    """This node's LVM, DRBD and .res files, as the operations use them."""

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

    # -- the request's resource on this node -----------------------------

    def host_entry(self, resource: str, spec: dict) -> dict:
        """This node's host entry in ``spec``, with its disk and minor."""
        for i, host in enumerate(spec['hosts']):
            if host['name'] == self.conf.node_name:
                return dict(host, field=f'spec.hosts[{i}]',
                            minor=spec['minor'],
                            disk=resrender.disk_path(resource, host,
                                                     self.lvm.device_root))
        raise AgentError(protocol.E_INVALID, f'spec.hosts: no host '
                         f'{self.conf.node_name} (this node)', 'spec.hosts')

    def replica_here(self, req: dict,
                     resource: str | None = None) -> Replica:
        """This node's replica of ``resource`` (the request's) in its pool.

        Its host entry in the request's spec must give it that LV as its
        disk (invalid-input otherwise).
        """
        resource = resource or req['resource']
        pool = self.lvm.pool(req['pool'])
        max_peers = req.get('max_peers', self.conf.max_peers)
        disk = self.lvm.device_path(pool.vg, resource)
        me = self.host_entry(resource, req['spec'])
        self.check_disk(me, disk)
        return Replica(pool, disk, me, max_peers)

    def check_disk(self, me: dict, expected: str | None) -> None:
        if me['disk'] != expected:
            want = expected or 'none (diskless)'
            raise AgentError(
                protocol.E_INVALID,
                f'{me["field"]}: gives node {self.conf.node_name} the disk '
                f'{me["disk"] or "none"}; expected {want}', me['field'])

    def check_replica_kept(self, resource: str, me: dict) -> None:
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

    # -- the .res and the running resource --------------------------------

    def render(self, resource: str, spec: dict) -> str:
        try:
            return resrender.render(resource, spec, self.lvm.device_root)
        except protocol.ProtocolError as e:
            raise AgentError(protocol.E_INVALID, str(e), e.field) from None

    def write_res(self, resource: str, request: dict,
                  expect_disk: str | None, undo: Undo) -> bool:
        """Write the request's .res; ``undo`` restores the old one."""
        self.check_replica_kept(resource,
                                self.host_entry(resource, request['spec']))
        text = self.render(resource, request['spec'])
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

    def up_or_adjust(self, resource: str, running: bool, changed: bool,
                     undo: Undo) -> str:
        if not running:
            undo.push(f'down {resource}', lambda: self.drbd.down(resource))
            self.drbd.up(resource)
            return 'up'
        if changed:
            self.drbd.adjust(resource)
            return 'adjusted'
        return 'unchanged'

    def ensure_up(self, resource: str) -> str:
        """Up the resource of a manage step done already; what it did."""
        if self.drbd.state(resource) is not None:
            return 'unchanged'
        self.drbd.up(resource)
        return 'up'

    def take_down(self, resource: str) -> bool:
        if self.drbd.state(resource) is None:
            return False
        if self.store.exists(resource):
            self.drbd.down(resource)
        else:
            self.drbd.force_down(resource)
        return True

    # -- LVs ---------------------------------------------------------------

    def require_lv(self, pool: lvm_mod.Pool,
                   resource: str) -> lvm_mod.LogicalVolume:
        """The resource's LV in ``pool``; not-found naming it otherwise."""
        return self._require(pool, resource, 'resource', f'LV {pool.vg}/')

    def require_snapshot(self, pool: lvm_mod.Pool,
                         snapshot: str) -> lvm_mod.LogicalVolume:
        """The snapshot LV in ``pool``; not-found naming it otherwise."""
        return self._require(pool, snapshot, 'snapshot', f'{pool.vg}/')

    def _require(self, pool: lvm_mod.Pool, name: str, field: str,
                 where: str) -> lvm_mod.LogicalVolume:
        lv = self.lvm.find_ours(pool, name, field,
                                snapshot=field == 'snapshot')
        if lv is None:
            raise AgentError(protocol.E_NOT_FOUND,
                             f'{field}: {where}{name} not found', field)
        return lv

    def clone(self, pool: lvm_mod.Pool, snapshot: str, name: str) -> None:
        """A thin snapshot of ``snapshot`` as a volume LV (not a snapshot)."""
        self.lvm.snapshot(pool, snapshot, name, (lvm_mod.TAG,))
        lv = self.lvm.find(pool, name)
        if lv is not None and lv.is_snapshot:
            self.lvm.del_tag(pool, name, lvm_mod.SNAPSHOT_TAG)

    def lv_size_for(self, pool: lvm_mod.Pool, size: int, max_peers: int,
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

    def check_fits(self, lv_size: int, size: int | None,
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
