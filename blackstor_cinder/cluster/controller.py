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
"""The controller: the volume, snapshot and attach flows' public facade.

``Controller`` is what the driver, ``blackstor-manage`` and the flows of
other modules (heal, membership, adopt, reconcile) use: the
:class:`core.Core` (transports, locks, the parallel fan-out, the nodes'
reports; its docstring says which lock covers what) with one method per
flow.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Iterable

from blackstor_cinder.cluster import allocation
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import create
from blackstor_cinder.cluster import divergence
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import placement
from blackstor_cinder.cluster import reconfigure
from blackstor_cinder.cluster import resize
from blackstor_cinder.cluster import snapshots
from blackstor_cinder.cluster import tiebreaker
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

ALLOCATION_LOCK = core.ALLOCATION_LOCK
CLONE_PREFIX = snapshots.CLONE_PREFIX


@dataclasses.dataclass(frozen=True)
class ClusterStats:
    total_bytes: int
    free_bytes: int
    provisioned_bytes: int          # the volumes' sizes (see stats())
    largest_volume_bytes: int
    total_volumes: int
    degraded_volumes: tuple[str, ...]
    nodes_up: tuple[str, ...]
    nodes_down: dict[str, str]
    divergent_volumes: tuple[str, ...] = ()     # replicas' .res differ
    nodes_refused: dict[str, str] = dataclasses.field(
        default_factory=dict)       # answering, but unfit (see refused())
    # values of the minor/port ranges no node uses and no create holds:
    # the smaller is how many more volumes the backend can take
    minors_free: int = 0
    ports_free: int = 0
    # the replica count the capacity is for: the default one, or fewer
    # when fewer failure domains than that can be used (see stats())
    capacity_replicas: int = 0
    # temporary clone snapshot -> the storage nodes that still hold it
    # (see remove_temporary_snapshots)
    temporary_snapshots: dict[str, tuple[str, ...]] = dataclasses.field(
        default_factory=dict)
    # two-replica volumes without a tiebreaker (see ensure_tiebreaker)
    without_tiebreaker: tuple[str, ...] = ()
    # resource -> the storage node that still runs its tiebreaker although
    # no other storage node holds it (deleted while that node was down;
    # see remove_orphan_tiebreakers)
    orphan_tiebreakers: dict[str, str] = dataclasses.field(
        default_factory=dict)


class Controller(core.Core):
    """Volume operations on a cluster of blackstor-node agents."""

    def forget_peers(self, spec: model.ResourceSpec,
                     node_ids: Iterable[int],
                     skip: Iterable[str] = ()) -> None:
        """See :func:`reconfigure.forget_peers`."""
        reconfigure.forget_peers(self, spec, node_ids, skip)

    def _lacks_tiebreaker(self, entry: dict | None) -> bool:
        """An inventory entry of a two-replica volume without tiebreaker."""
        definition = (entry or {}).get('definition')
        try:
            spec = inv.spec_from_definition(definition, self.config)
        except (KeyError, TypeError, ValueError):
            return False
        return tiebreaker.missing(self.config, spec)

    def check_setup(self) -> dict[str, str]:
        """Problems per node (empty when every node is usable)."""
        inventories, failures = self.inventories()
        problems = {name: exc.message for name, exc in failures.items()}
        problems.update(self.refused(inventories))
        return problems

    def stats(self) -> ClusterStats:
        """Capacity as placement sees it: one round trip per node.

        The configured clients are asked too, for the minors and ports
        they use: ``minors_free`` and ``ports_free`` are the values of the
        ranges no node uses and no create of this process holds.

        ``provisioned_bytes`` counts each volume once, at the size its .res
        gives the DRBD device (the size Cinder asked for); a resource whose
        .res has no size (made before sizes were written) counts at its
        LV's size, which is a little more (metadata, extent rounding).

        Capacity is for the default replica count; while fewer failure
        domains (nodes, zones with ``spread``) than that can be used (nodes
        down or refused), for as many replicas as there are usable
        domains (``capacity_replicas``): reporting nothing would make the
        scheduler refuse the creates of types with fewer replicas too,
        which can still be placed; a create that needs more fails in
        placement, naming why.
        """
        inventories, failures, used = self.survey()
        cands = self.candidates(inventories)
        cfg = self.config
        replicas = min(cfg.replicas, placement.domain_count(
            cands, cfg.zone_policy)) or cfg.replicas
        refused = self.refused(inventories)
        down = {}
        for name, exc in failures.items():
            # The agent answered that the node is not set up to serve
            # (its inventory's missing-dependency): refused, not down.
            (refused if exc.code == protocol.E_MISSING else down)[
                name] = exc.message
        minors_free, ports_free = self.allocator.room(*used)
        sizes: dict[str, int] = {}          # volume LV -> largest LV size
        requested: dict[str, int] = {}      # resource -> its .res size
        for report in inventories.values():
            for name, size in report.volumes.items():
                sizes[name] = max(size, sizes.get(name, 0))
            for name, size in report.device_sizes().items():
                requested[name] = max(size, requested.get(name, 0))
        temporary: dict[str, list[str]] = {}
        for node, report in sorted(inventories.items()):
            for snap in report.snapshots:
                if snap.startswith(snapshots.CLONE_PREFIX):
                    temporary.setdefault(snap, []).append(node)
        degraded = []
        lacking = set()
        orphans = {} if down else tiebreaker.orphaned(inventories)
        for report in inventories.values():
            for name, res in report.resources.items():
                if self._lacks_tiebreaker(res):
                    lacking.add(name)
                state = (res or {}).get('state')
                local = inv.disk_states(state).get('local')
                if name in sizes and (local not in (None, 'UpToDate',
                                                    'Diskless')
                                      or not inv.peers_connected(state)):
                    degraded.append(name)
        return ClusterStats(
            total_bytes=placement.capacity(cands, replicas,
                                           cfg.zone_policy, 'total_bytes'),
            free_bytes=placement.capacity(cands, replicas,
                                          cfg.zone_policy, 'free_bytes'),
            provisioned_bytes=sum(requested.get(name, size)
                                  for name, size in sizes.items()),
            largest_volume_bytes=placement.largest_volume(
                cands, replicas, cfg.zone_policy, cfg.over_subscription),
            capacity_replicas=replicas,
            total_volumes=len(sizes),
            degraded_volumes=tuple(sorted(set(degraded))),
            nodes_up=tuple(sorted(inventories)),
            nodes_down=down,
            nodes_refused=refused,
            minors_free=minors_free, ports_free=ports_free,
            # the clients' last reports too (see reconcile)
            temporary_snapshots={snap: tuple(nodes)
                                 for snap, nodes in temporary.items()},
            without_tiebreaker=tuple(sorted(lacking)),
            orphan_tiebreakers=orphans,
            divergent_volumes=divergence.divergent_names(
                {name: report.resources for name, report in
                 {**self.client_reports, **inventories}.items()}))

    # -- create -------------------------------------------------------------

    def create_volume(self, name: str, size: int,
                      replicas: int | None = None,
                      zone_policy: str | None = None) -> model.ResourceSpec:
        """See :func:`create.create_volume`."""
        return create.create_volume(self, name, size, replicas, zone_policy)

    # -- tiebreaker -------------------------------------------------------

    def ensure_tiebreaker(self, name: str, lost: Iterable[str] = (),
                          wait: bool = True) -> str:
        """See :func:`tiebreaker.ensure`."""
        return tiebreaker.ensure(self, name, lost, wait)

    def remove_orphan_tiebreakers(self, orphans: dict[str, str]
                                  ) -> dict[str, str]:
        """See :func:`tiebreaker.remove_orphans`."""
        return tiebreaker.remove_orphans(self, orphans)

    # -- delete -------------------------------------------------------------

    @core.one_resource
    def delete_volume(self, name: str) -> None:
        """Remove every replica and client of a volume; gone is success.

        Under the volume's resource lock: a create of the same name still
        running (its replicas not all written yet) ends first.
        """
        found = self.find(name)
        spec = found.spec
        if spec is None:
            if found.unreachable:
                # It may live only on the nodes we cannot reach: retry.
                raise errors.NodeOperationFailed('delete of ' + name,
                                                 found.unreachable)
            return
        targets = {n.name: n for n in self.nodes(spec.hosts)}
        held = spec.tiebreaker_host
        if held is not None and held.name in found.unreachable:
            # no data there: its .res goes once the node answers again
            # (stats: orphan_tiebreakers, remove_orphan_tiebreakers)
            LOG.warning('Deleting %(res)s while its tiebreaker node %(node)s '
                        'is unreachable; the periodic repair removes the '
                        'tiebreaker there when it answers',
                        {'res': name, 'node': held.name})
            del targets[held.name]
        for node in self.config.storage_nodes:
            if node.name not in found.unreachable:
                targets.setdefault(node.name, node)
        self.each_or_raise('delete', targets.values(),
                           lambda n: {'op': 'delete', 'resource': name,
                                      'pool': self.config.pool}
                           if n.storage else
                           {'op': 'delete', 'resource': name})
        LOG.info('Deleted %s', name)

    # -- snapshots ----------------------------------------------------------

    @core.one_resource
    def create_snapshot(self, volume: str, snapshot: str) -> None:
        """See :func:`snapshots.create_snapshot`."""
        snapshots.create_snapshot(self, volume, snapshot)

    def delete_snapshot(self, snapshot: str,
                        volume: str | None = None) -> None:
        """See :func:`snapshots.delete_snapshot`."""
        snapshots.delete_snapshot(self, snapshot, volume)

    def create_volume_from_snapshot(self, name: str, snapshot: str,
                                    source: str, snapshot_size: int,
                                    size: int) -> model.ResourceSpec:
        """See :func:`snapshots.create_volume_from_snapshot`."""
        return snapshots.create_volume_from_snapshot(
            self, name, snapshot, source, snapshot_size, size)

    def clone_volume(self, name: str, source: str, source_size: int,
                     size: int) -> model.ResourceSpec:
        """See :func:`snapshots.clone_volume`."""
        return snapshots.clone_volume(self, name, source, source_size, size)

    #: (its argument is named like the module: the function itself)
    remove_temporary_snapshots = snapshots.remove_temporary_snapshots

    # -- resize and revert ----------------------------------------------------

    @core.one_resource
    def extend_volume(self, name: str, size: int,
                      old_size: int | None = None) -> None:
        """See :func:`resize.extend_volume`."""
        resize.extend_volume(self, name, size, old_size)

    @core.one_resource
    def revert_to_snapshot(self, volume: str, snapshot: str,
                           snapshot_size: int, size: int) -> None:
        """See :func:`resize.revert_to_snapshot`."""
        resize.revert_to_snapshot(self, volume, snapshot, snapshot_size,
                                  size)

    def zeroing_request(self, name: str, zero_from: int | None,
                        size: int) -> dict:
        """See :func:`resize.zeroing_request`."""
        return resize.zeroing_request(self, name, zero_from, size)

    # -- attach -------------------------------------------------------------

    def attach(self, volume: str, host: str,
               address: str | None = None) -> str:
        """Make the volume usable on ``host``; its device path there.

        A host without a replica becomes a diskless client. A host that
        holds a replica (hyperconverged) keeps it: it only gets the
        current .res and its agent waits until the device is usable
        there. Either way the path comes from the host's agent.

        The host is checked first (reachable, running blackstor-node), so
        an unknown host changes nothing on the storage nodes. When the
        host makes a second possible primary (live migration), every node
        gets ``allow-two-primaries`` first (see :meth:`_two_primaries`).
        When a replica refuses the new .res or the host's attach fails,
        the replicas get their old .res back (no phantom client); one that
        cannot is left to the repair of divergent .res (stats).
        """
        client = self.node(host, address)
        try:
            report = self.call(client, {'op': 'inventory'})
            # a snapshot suspends the client too (see create_snapshot)
            self.kernel_versions[host] = report.get('drbd_kernel_version')
        except tp.NodeError as exc:
            raise errors.NodeOperationFailed(
                f'attach of {volume}: host {host} cannot be used',
                {host: exc}) from exc
        with self.lock(core.resource_lock_name(volume)):
            found = self.require(volume)
            old = found.spec
            _require_free_on(host, report, old)
            hosts = tuple(tiebreaker.as_client(h) if h.name == host else h
                          for h in old.hosts)
            if old.host(host) is None:
                node_id = allocation.next_node_id(h.node_id
                                                  for h in old.hosts)
                hosts += (model.ResourceHost(
                    name=host, node_id=node_id,
                    address=client.replication_address, diskful=False),)
                _check_peer_slots(volume, host, hosts, old.max_peers)
            spec = reconfigure.with_clients(
                old, hosts, reconfigure.two_primaries(found, hosts,
                                                      attaching=host))
            changed = spec != old
            if changed:
                try:
                    reconfigure.adjust_storage(self, spec, found)
                except errors.ClusterError:
                    # the replicas that took the new .res give it back:
                    # no phantom client, no allow-two-primaries left on
                    reconfigure.adjust_storage(self, old, found, quiet=True)
                    raise
                reconfigure.adjust_clients(self, spec, found, skip=host)
            elif spec.host(host).diskful:
                # The connector there takes the .res only when it is the
                # one the replica already has: make sure it is.
                self.each_or_raise('adjust', [client],
                                   self.res_request('adjust', spec))
            try:
                reply = self.call(client, self.res_request(
                    'attach', spec, timeout=self.config.attach_timeout),
                    timeout=self.config.attach_timeout + 30)
            except tp.NodeError as exc:
                if changed:
                    reconfigure.adjust_storage(self, old, found, quiet=True)
                    reconfigure.adjust_clients(self, old, found, skip=host)
                raise errors.NodeOperationFailed(
                    f'attach of {volume} on {host}', {host: exc}) from exc
        LOG.info('Attached %(res)s on %(host)s%(how)s',
                 {'res': volume, 'host': host,
                  'how': ' (local replica)' if spec.host(host).diskful
                  else ''})
        return reply['device_path']

    def detach(self, volume: str, host: str | None = None,
               force: bool = False) -> None:
        """Remove one client (or every client when host is None).

        A host that holds a replica is never taken down: a detach there
        only drops ``allow-two-primaries`` when it is no longer needed.

        The client's own agent takes its DRBD device down first. A host
        that cannot be reached (dead hypervisor: Nova's evacuate and local
        delete never force) does not stop the detach: removing the client
        from every replica's .res is the fence (the replicas drop its
        connection and refuse it from then on), and ``allow-two-primaries``
        goes off as in any detach; its agent call is reported in the log.
        A host that answers and refuses (device in use) fails the detach
        unless ``force``.
        """
        with self.lock(core.resource_lock_name(volume)):
            found = self.find(volume)
            spec = found.spec
            if spec is None:
                if found.unreachable:
                    raise errors.NodeOperationFailed(
                        'detach of ' + volume, found.unreachable)
                return
            targets = [h for h in spec.client_hosts
                       if host is None or h.name == host]
            # the tiebreaker attached on its own node stays up, as such
            kept = tiebreaker.kept_on_detach(self.config, spec, targets)
            targets = [h for h in targets if h.name not in kept]
            gone = {h.name for h in targets}
            if targets:
                _, failures = self.each(
                    self.nodes(targets),
                    {'op': 'detach', 'resource': volume, 'force': force})
                for node_name, exc in list(failures.items()):
                    if isinstance(exc, tp.NodeUnreachable):
                        LOG.warning('Detach of %(res)s: host %(node)s is '
                                    'unreachable; removing its client from '
                                    'the replicas fences it off: %(err)s',
                                    {'res': volume, 'node': node_name,
                                     'err': exc})
                        del failures[node_name]
                    elif force or exc.code == 'not-found':
                        LOG.warning('Detach of %(res)s on %(node)s failed, '
                                    'removing the client anyway: %(err)s',
                                    {'res': volume, 'node': node_name,
                                     'err': exc})
                        del failures[node_name]
                if failures:
                    raise errors.NodeOperationFailed('detach', failures)
            leaving = gone | kept | ({host} if host is not None else set())
            hosts = tuple(tiebreaker.restored(h) if h.name in kept else h
                          for h in spec.hosts if h.name not in gone)
            new = reconfigure.with_clients(
                spec, hosts, reconfigure.two_primaries(found, hosts,
                                                       leaving=leaving))
            if new == spec:
                return
            reconfigure.adjust_storage(self, new, found)
            self.forget_peers(new, [h.node_id for h in targets],
                              skip=found.unreachable)
            reconfigure.adjust_clients(self, new, found)
        LOG.info('Detached %(res)s from %(hosts)s',
                 {'res': volume, 'hosts': ', '.join(sorted(leaving))})


def _require_free_on(host: str, report: dict[str, Any],
                     spec: model.ResourceSpec) -> None:
    """Refuse an attach whose minor or port ``host`` uses elsewhere.

    Another resource there (of another backend sharing the host) holds
    them; checked before anything changes.
    """
    taken = inv.NodeInventory.from_reply(host, report).taken_by_others(
        spec.name, spec.minor, spec.port)
    if not taken:
        return
    raise errors.AllocationError(
        f'attach of {spec.name} on {host} refused, nothing was changed: '
        + ' and '.join(f'DRBD {kind} {value}' for kind, value in taken)
        + f' of {spec.name} is already used on {host} by another DRBD '
          f'resource (another backend sharing this host?). Backends that '
          f'share hosts need disjoint '
        + ' and '.join(allocation.RANGE_OPTIONS[kind] for kind, _ in taken)
        + f'; {spec.name} can attach on {host} once the other resource '
          f'is gone there')


def _check_peer_slots(volume: str, host: str,
                      hosts: tuple[model.ResourceHost, ...],
                      max_peers: int) -> None:
    """Refuse a new client the DRBD metadata has no bitmap slot for.

    Every replica keeps one bitmap slot per peer (``create-md
    --max-peers``): a resource has at most ``max_peers + 1`` hosts.
    Checked before any node is changed.
    """
    if len(hosts) <= max_peers + 1:
        return
    replicas = sum(1 for h in hosts if h.diskful)
    ties = sum(1 for h in hosts if h.tiebreaker)
    raise errors.InvalidRequest(
        f'attach of {volume} on {host} refused: the volume has {replicas} '
        f'replicas{", a tiebreaker" if ties else ""} and '
        f'{len(hosts) - replicas - ties - 1} clients already, and '
        f'blackstor_max_peers = {max_peers} gives a volume at most '
        f'{max_peers + 1} hosts (replicas, tiebreaker and clients '
        f'together). Detach '
        f'it from another host first; a larger blackstor_max_peers '
        f'applies to volumes created afterwards')
