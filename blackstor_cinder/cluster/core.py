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
"""The core every flow runs on: transports, locks, fan-out, the truth.

Every step that touches several nodes sends one request to each of them in
parallel (:meth:`Core.each`). A flow that fails half-way undoes what it
did (create) or leaves a state that the same call converges from when
retried (delete, detach). The core keeps no state of its own beyond the
creates it is running: the nodes' .res files, LVs and DRBD state are the
truth, read back at the start of each flow (:meth:`Core.find`,
:meth:`Core.inventories`). The flows are plain functions taking the core
(``create``, ``snapshots``, ``attach``, ``resize``, ``delete``,
``stats``, ``tiebreaker``, ``membership``, ``heal``, ``adopt``); the
``Controller`` of :mod:`controller` is their facade.

Locks (from the ``lock`` factory: Cinder's tooz locks, shared by every
cinder-volume service of the backend): ``blackstor-allocation`` covers a
create's decision only (inventory, placement, minor/port reservation), not
its provisioning, so creates run concurrently (and the creates of this
process waiting for it are decided together, on one inventory);
``blackstor-resource-<name>`` covers every flow that changes one resource,
its create included; ``blackstor-minor-<n>`` and ``blackstor-port-<n>`` are
claims on the values of creates in flight, taken without waiting (see
``allocation``); ``blackstor-clone-<name>`` covers a clone from its
temporary snapshot's create to its removal (see
:func:`snapshots.remove_temporary_snapshots`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import inspect
import logging
import threading
from typing import Any, Callable, Iterable, Iterator, Protocol, TypeVar, cast

from blackstor_cinder.cluster import allocation
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import placement
from blackstor_cinder.cluster import resspec
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

ALLOCATION_LOCK = 'blackstor-allocation'


class NamedLock(Protocol):
    """What the lock factory returns (a tooz lock, a threading.Lock)."""

    def acquire(self, blocking: bool = True) -> bool:
        ...

    def release(self) -> Any:
        ...

    def __enter__(self) -> Any:
        ...

    def __exit__(self, *exc_info: Any) -> Any:
        ...


def resource_lock_name(name: str) -> str:
    return f'blackstor-resource-{name}'


_Flow = TypeVar('_Flow', bound=Callable[..., Any])


def one_resource(flow: _Flow) -> _Flow:
    """Run a flow on one resource (its first argument) under its lock."""
    signature = inspect.signature(flow)
    first = list(signature.parameters)[1]

    @functools.wraps(flow)
    def locked(self: Core, *args: Any, **kwargs: Any) -> Any:
        name = signature.bind(self, *args, **kwargs).arguments[first]
        with self.lock(resource_lock_name(name)):
            return flow(self, *args, **kwargs)
    return cast(_Flow, locked)


@dataclasses.dataclass(frozen=True)
class Found:
    """A resource as the storage nodes report it."""

    spec: model.ResourceSpec | None
    states: dict[str, dict | None]          # holder node -> DRBD state
    unreachable: dict[str, Exception]       # node -> why
    # the smallest size a replica's .res gives (the spec has the largest)
    smallest_size: int | None = None


@dataclasses.dataclass(eq=False)
class DecisionQueue:
    """The creates of this process waiting for their decision.

    See ``create._decided``: one thread at a time (the leader) decides
    every create queued by then, on one inventory.
    """

    pending: list = dataclasses.field(default_factory=list)
    changed: threading.Condition = dataclasses.field(
        default_factory=threading.Condition)    # guards the two others
    leading: bool = False                       # a thread decides them


class LocalLocks:
    """Named in-process locks: the default when no distributed lock."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, name: str) -> NamedLock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())


class Core:
    """Transports, locks, the parallel fan-out and the nodes' reports."""

    def __init__(self, config: model.ClusterConfig,
                 transport_for: Callable[[model.Node], tp.Transport],
                 lock: Callable[[str], NamedLock] | None = None,
                 max_workers: int = 16, poll_interval: float = 0.5) -> None:
        self.config = config
        self._transports = tp.TransportPool(transport_for)
        self._locks = lock or LocalLocks()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix='blackstor')
        self.poll_interval = poll_interval
        self.allocator = allocation.Allocator(config.minors, config.ports,
                                              claim=self._claim)
        # the creates between their decision and their end
        self.in_flight = placement.InFlight()
        self.decisions = DecisionQueue()
        # node -> DRBD kernel version of its last inventory (snapshots
        # refuse nodes known to run one too old for them)
        self.kernel_versions: dict[str, str | None] = {}
        # configured client -> its last full inventory (see survey)
        self.client_reports: dict[str, inv.NodeInventory] = {}
        # configured client -> the (minors, ports) it uses, other
        # backends' included, as its last inventory of any kind said
        self._client_used: dict[str, tuple[frozenset[int],
                                           frozenset[int]]] = {}

    # -- locks --------------------------------------------------------------

    def lock(self, name: str) -> NamedLock:
        """The named lock ``name`` (of the ``lock`` factory)."""
        return self._locks(name)

    def resource_lock(self, name: str) -> Any:
        """The lock every flow that changes resource ``name`` holds.

        A tooz lock in cinder-volume (shared by Active/Active services);
        ``acquire(blocking=False)`` and ``release()`` work on it too.
        """
        return self.lock(resource_lock_name(name))

    @contextlib.contextmanager
    def resource_locks(self, *names: str) -> Iterator[None]:
        """The resource locks of ``names``, taken in a fixed order."""
        with contextlib.ExitStack() as stack:
            for name in sorted(set(names)):
                stack.enter_context(self.resource_lock(name))
            yield

    def _claim(self, kind: str, value: int) -> Callable[[], Any] | None:
        """Hold ``value`` for other controllers without waiting."""
        lock = self.lock(f'blackstor-{kind}-{value}')
        if not lock.acquire(blocking=False):
            return None
        return lock.release

    # -- plumbing -----------------------------------------------------------

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        self._transports.close()

    def call(self, node: model.Node, request: dict,
             timeout: float | None = None) -> dict:
        return self._transports.get(node).call(request, timeout=timeout)

    def each(self, nodes: Iterable[model.Node],
             request: dict | Callable[[model.Node], dict],
             timeout: float | None = None
             ) -> tuple[dict[str, dict], dict[str, tp.NodeError]]:
        """Send a request to every node in parallel.

        Returns (results, failures) keyed by node name; only the agents'
        and transports' errors are collected, anything else propagates.
        """
        futures = {}
        for node in nodes:
            req = request(node) if callable(request) else request
            futures[node.name] = self._executor.submit(
                self.call, node, req, timeout)
        results, failures = {}, {}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except tp.NodeError as exc:
                failures[name] = exc
        return results, failures

    def each_or_raise(self, step: str, nodes: Iterable[model.Node],
                      request: dict | Callable[[model.Node], dict],
                      timeout: float | None = None) -> dict[str, dict]:
        results, failures = self.each(nodes, request, timeout)
        if failures:
            raise errors.NodeOperationFailed(step, failures)
        return results

    def node(self, name: str, address: str | None = None) -> model.Node:
        """The configured node of that name, or an unlisted client."""
        known = self.config.node(name)
        if known:
            return known
        if not self.config.allow_unlisted_clients:
            raise errors.InvalidRequest(
                f'host {name} is not a configured client node and '
                f'unlisted clients are not allowed')
        if not address:
            raise errors.InvalidRequest(
                f'host {name} is not configured and has no address')
        return model.Node(name=name, replication_address=address,
                          ssh_host=address, storage=False)

    def nodes(self, hosts: Iterable[model.ResourceHost]
              ) -> list[model.Node]:
        """The nodes of ``hosts`` (a spec's)."""
        return [self.node(h.name, h.address) for h in hosts]

    def res_request(self, op: str, spec: model.ResourceSpec,
                    **fields: Any) -> dict:
        """An agent request carrying ``spec`` as fields (the agent renders)."""
        try:
            wire = resspec.to_wire(spec)
        except ValueError as exc:
            # e.g. a client whose address family differs from the replicas'
            raise errors.InvalidRequest(f'{spec.name}: {exc}') from exc
        return {'op': op, 'resource': spec.name, 'spec': wire,
                'secret': spec.secret, **fields}

    # -- reading the truth ------------------------------------------------

    def inventories(self) -> tuple[dict[str, inv.NodeInventory],
                                   dict[str, tp.NodeError]]:
        """The storage nodes' inventories, and the nodes that failed."""
        return self.inventories_of(self.config.storage_nodes)

    def inventories_of(self, nodes: Iterable[model.Node],
                       brief: bool = False, compact: bool = False
                       ) -> tuple[dict[str, inv.NodeInventory],
                                  dict[str, tp.NodeError]]:
        """Inventories in one parallel round; ``brief``: placement's only.

        A brief inventory has each resource's name, not its definition or
        state; a ``compact`` one each definition and state cut to what
        stats read (see the protocol). An agent that does not know
        ``brief`` or ``compact`` (another version, which
        ``NodeInventory.problem`` then names) is asked the full one.
        """
        nodes = list(nodes)
        request = {'op': 'inventory'}
        if brief or compact:
            request['brief' if brief else 'compact'] = True
        results, failures = self.each(nodes, request)
        older = [node for node in nodes
                 if getattr(failures.get(node.name), 'field', None)
                 in ('brief', 'compact')]
        if older:
            more, failed = self.each(older, {'op': 'inventory'})
            for name in more:
                del failures[name]
            results.update(more)
            failures.update(failed)
        reports = {name: inv.NodeInventory.from_reply(name, reply)
                   for name, reply in results.items()}
        for name, report in reports.items():
            self.kernel_versions[name] = report.drbd_kernel_version
        return reports, failures

    def survey(self, brief: bool = False, compact: bool = False
               ) -> tuple[dict[str, inv.NodeInventory],
                          dict[str, tp.NodeError],
                          tuple[set[int], set[int]]]:
        """:meth:`inventories`, and the (minors, ports) used anywhere.

        The configured clients are asked in the same parallel round: a
        hypervisor may run resources of another backend, whose minors and
        ports a new volume must not take, or its attach there would clash.
        A client that does not answer counts with its last report (the
        attach check catches what changed since). ``brief``: the
        inventories a create's decision needs (see :meth:`inventories_of`);
        a client's brief report does not replace its last full one, which
        the divergence checks of stats read; ``compact``: what stats read.
        """
        clients = self.config.client_nodes
        reports, failures = self.inventories_of(
            self.config.storage_nodes + clients, brief, compact)
        for node in clients:
            if node.name in reports:
                report = reports.pop(node.name)
                self._client_used[node.name] = (report.used_minors,
                                                report.used_ports)
                if not brief:
                    self.client_reports[node.name] = report
            elif node.name in failures:
                LOG.warning('Client %(node)s did not report the DRBD '
                            'minors and ports it uses%(last)s: %(err)s',
                            {'node': node.name,
                             'last': ' (its last report counts)'
                             if node.name in self._client_used else '',
                             'err': failures.pop(node.name)})
        minors, ports = _used(reports)
        for client_minors, client_ports in self._client_used.values():
            minors |= client_minors
            ports |= client_ports
        return reports, failures, (minors, ports)

    def clients_holding(self, name: str) -> list[model.Node]:
        """Configured clients whose last inventory has a .res of ``name``."""
        return [node for node in self.config.client_nodes
                if name in getattr(self.client_reports.get(node.name),
                                   'resources', ())]

    def find(self, name: str) -> Found:
        """Ask every storage node about a resource (one round trip each)."""
        results, failures = self.each(self.config.storage_nodes,
                                      {'op': 'status', 'resource': name})
        return self.found(results, failures)

    def found(self, results: dict[str, dict],
              failures: dict[str, tp.NodeError]) -> Found:
        """The resource as the storage nodes' ``status`` replies say.

        Also from replies that carry a ``status`` (``report``).
        """
        spec, states, sizes = None, {}, []
        # a replica's .res first: a diskless storage node (the tiebreaker)
        # may hold a copy a flow failed to update
        for node_name, reply in sorted(
                results.items(), key=lambda item: (
                    not holds_replica(item[0], item[1]), item[0])):
            if not reply.get('exists'):
                continue
            states[node_name] = reply.get('state')
            definition = reply.get('definition')
            if not definition:
                continue
            size = inv.definition_size(definition)
            if size is not None:
                sizes.append(size)
            if spec is None:
                spec = inv.spec_from_definition(definition, self.config)
        if spec is not None and sizes:
            # A grow that stopped half-way leaves the new size on some
            # replicas only, after every LV was grown: the largest size is
            # the one the replicas can all hold, and where a retry goes.
            spec = dataclasses.replace(spec, size=max(sizes))
        return Found(spec, states, failures,
                     min(sizes) if sizes else None)

    def require(self, name: str, found: Found | None = None) -> Found:
        """:meth:`find`, or ResourceNotFound (or why it cannot tell).

        ``found``: what the storage nodes already said (no new request).
        """
        found = self.find(name) if found is None else found
        if found.spec is None:
            if found.unreachable:
                raise errors.NodeOperationFailed('lookup of ' + name,
                                                 found.unreachable)
            raise errors.ResourceNotFound(f'resource {name} not found on '
                                          f'any storage node')
        return found

    def require_replicas(self, found: Found, step: str) -> None:
        """Refuse a step that must reach every replica."""
        spec = found.spec
        missing = {h.name: found.unreachable[h.name]
                   for h in spec.diskful_hosts if h.name in found.unreachable}
        if missing:
            raise errors.NodeOperationFailed(step, missing)

    def candidates(self, inventories: dict[str, inv.NodeInventory]
                   ) -> list[placement.Candidate]:
        """The nodes that may hold new replicas (see ``refused``)."""
        cands = []
        refused = self.refused(inventories)
        for node in self.config.storage_nodes:
            report = inventories.get(node.name)
            if report is None or node.name in refused:
                continue
            pool = report.pools[self.config.pool]
            cands.append(self.in_flight.apply(placement.Candidate(
                name=node.name, zone=node.zone,
                total_bytes=pool.total_bytes, free_bytes=pool.free_bytes,
                provisioned_bytes=pool.provisioned_bytes,
                resources=len(report.resources)),
                report.volumes, report.resources))
        return cands

    def unavailable(self, inventories: dict[str, inv.NodeInventory],
                    down: dict[str, tp.NodeError]) -> dict[str, str]:
        """Storage nodes that are not candidates, and why (for messages)."""
        unavailable = {node: exc.message for node, exc in down.items()}
        unavailable.update(self.refused(inventories))
        return unavailable

    def refused(self, inventories: dict[str, inv.NodeInventory]
                ) -> dict[str, str]:
        """Answering nodes that must not serve, and why.

        A DRBD kernel older than :data:`inventory.MIN_DRBD_KERNEL`, a
        missing pool, a pool that does not zero new blocks, a host name
        that is not the configured one.
        """
        return {name: why for name, report in inventories.items()
                if (why := report.problem(self.config.pool))}


def holds_replica(node: str, reply: dict) -> bool:
    """A ``status`` reply whose .res gives ``node`` a disk."""
    return any(h.get('name') == node and h.get('diskful')
               for h in (reply.get('definition') or {}).get('hosts') or ())


def never_reached(exc: tp.NodeError) -> bool:
    """The request surely did not reach the agent (not a timeout)."""
    return (isinstance(exc, tp.NodeUnreachable)
            and not isinstance(exc, tp.NodeTimeout))


def _used(inventories: dict[str, inv.NodeInventory]
          ) -> tuple[set[int], set[int]]:
    """(minors, ports) used on any of the nodes."""
    return (set().union(*(i.used_minors for i in inventories.values())),
            set().union(*(i.used_ports for i in inventories.values())))


def check_fits(snapshot_size: int, size: int) -> None:
    """A volume of ``size`` bytes can hold a snapshot of ``snapshot_size``."""
    check_size(snapshot_size, 'snapshot size')
    check_size(size, 'volume size')
    if size < snapshot_size:
        raise errors.InvalidRequest(
            f'a volume of {size} bytes cannot hold a snapshot of '
            f'{snapshot_size} bytes')


def check_size(size: int, what: str) -> None:
    """A size DRBD can give a device: whole 512-byte sectors."""
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise errors.InvalidRequest(f'{what} must be a positive number of '
                                    f'bytes, not {size!r}')
    if size % protocol.SECTOR:
        raise errors.InvalidRequest(f'{what} {size} is not a multiple of '
                                    f'{protocol.SECTOR} bytes')
