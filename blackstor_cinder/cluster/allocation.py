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
"""Allocation of the identities of a DRBD resource.

Minor and port are the same on every node of a resource and unique across
the cluster (any hypervisor may attach any volume later): a value is free
when no storage node and no configured client uses it, since a client may
also run the resources of another backend, which share its DRBD minors and
ports. The nodes' .res files are the truth; a value on no node yet is held
by a :class:`Reservation` from the moment a create picks it until the create
has either written its .res files (they hold it from then on) or been
rolled back. In this process the :class:`Allocator` remembers what it
handed out; for other processes (Active/Active) each value is also held as
a *claim*, a distributed lock taken without waiting: a value claimed
elsewhere is skipped. The agents refuse a clash on one node anyway.

Visibility rule, kept by the caller: reserving (inventory read, then
``reserve``) and releasing a reservation whose .res files were written
happen under the same allocation lock. A decision then either ran before
the release, while the value was still reserved and claimed, or after it,
with the .res files already there for its inventory to see.
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Callable, Iterable

from blackstor_cinder.cluster import errors
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

#: Takes the claim on ``(kind, value)`` without waiting: a function that
#: gives it back, or None when it is held elsewhere.
Claim = Callable[[str, int], Callable[[], None] | None]

#: The backend options each range comes from (named in errors: they are
#: what an operator widens or moves).
RANGE_OPTIONS = {'minor': 'blackstor_minor_range',
                 'port': 'blackstor_port_range'}


def parse_range(text: str, low: int, high: int, what: str) -> range:
    """'1000-1999' -> range(1000, 2000), checked against [low, high]."""
    try:
        first, last = (int(part) for part in text.split('-'))
    except ValueError:
        raise errors.InvalidRequest(
            f'{what} range {text!r} is not of the form low-high') from None
    if not low <= first <= last <= high:
        raise errors.InvalidRequest(
            f'{what} range {text!r} must lie within {low}-{high}')
    return range(first, last + 1)


def overlap(first: range, second: range) -> range:
    """The values two ranges share (an empty range when none)."""
    return range(max(first.start, second.start),
                 min(first.stop, second.stop))


def room(values: range, used: Iterable[int]) -> int:
    """How many values of ``values`` are not in ``used``."""
    return len(values) - sum(1 for value in set(used) if value in values)


def lowest_free(candidates: Iterable[int], used: set) -> int | None:
    return next((value for value in candidates if value not in used), None)


def next_node_id(used: Iterable[int]) -> int:
    node_id = lowest_free(
        range(protocol.NODE_ID_MIN, protocol.NODE_ID_MAX + 1), set(used))
    if node_id is None:
        raise errors.AllocationError('all 32 DRBD node-ids of the resource '
                                     'are in use')
    return node_id


def new_secret() -> str:
    """A random shared secret DRBD accepts (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


class Reservation:
    """A (minor, port) pair handed out and not given back yet."""

    def __init__(self, allocator: Allocator, minor: int, port: int,
                 releases: list[Callable[[], None]]) -> None:
        self.minor = minor
        self.port = port
        self._allocator = allocator
        self._releases = releases
        self._released = False

    def __repr__(self) -> str:
        return (f'Reservation(minor={self.minor}, port={self.port}, '
                f'released={self._released})')

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        """Give the pair back (claims included); later calls do nothing.

        Call it once the create's .res files are on the nodes (under the
        allocation lock, see the module's doc), or once the create was
        rolled back.
        """
        with self._allocator._lock:
            if self._released:
                return
            self._released = True
            self._allocator._minors_out.discard(self.minor)
            self._allocator._ports_out.discard(self.port)
        _release_all(self._releases)


class Allocator:
    """Hands out (minor, port) pairs free on every node.

    A pair stays out (in this process, and claimed for the others) until
    its :class:`Reservation` is released: an inventory read just before
    another create's .res files landed must not make it look free again.
    """

    def __init__(self, minors: range, ports: range,
                 claim: Claim | None = None) -> None:
        self._minors = minors
        self._ports = ports
        self._claim = claim
        self._lock = threading.Lock()
        self._minors_out: set[int] = set()
        self._ports_out: set[int] = set()

    def reserve(self, used_minors: Iterable[int],
                used_ports: Iterable[int]) -> Reservation:
        """The lowest pair not used, not out here and not claimed."""
        with self._lock:
            releases: list[Callable[[], None]] = []
            try:
                minor = self._pick('minor', self._minors,
                                   set(used_minors) | self._minors_out,
                                   releases)
                port = self._pick('port', self._ports,
                                  set(used_ports) | self._ports_out,
                                  releases)
            except BaseException:
                _release_all(releases)
                raise
            self._minors_out.add(minor)
            self._ports_out.add(port)
        return Reservation(self, minor, port, releases)

    def _pick(self, kind: str, values: range, taken: set,
              releases: list[Callable[[], None]]) -> int:
        for value in values:
            if value in taken:
                continue
            if self._claim is None:
                return value
            release = self._claim(kind, value)
            if release is not None:
                releases.append(release)
                return value
            LOG.debug('%(kind)s %(value)s is claimed by another '
                      'controller', {'kind': kind, 'value': value})
        what = 'DRBD minor' if kind == 'minor' else 'DRBD port'
        raise errors.AllocationError(
            f'no free {what} left in {values.start}-{values.stop - 1} '
            f'(every one is used on a storage node or a client, or held '
            f'by a create in flight): widen {RANGE_OPTIONS[kind]}, or '
            f'delete volumes; nothing was created')

    def room(self, used_minors: Iterable[int],
             used_ports: Iterable[int]) -> tuple[int, int]:
        """(minors, ports) still free: not used and not reserved here.

        The smaller of the two is how many more volumes fit.
        """
        with self._lock:
            return (room(self._minors, set(used_minors) | self._minors_out),
                    room(self._ports, set(used_ports) | self._ports_out))

    def outstanding(self) -> tuple[frozenset[int], frozenset[int]]:
        """(minors, ports) reserved and not released."""
        with self._lock:
            return frozenset(self._minors_out), frozenset(self._ports_out)


def _release_all(releases: list[Callable[[], None]]) -> None:
    for release in releases:
        try:
            release()
        except Exception:
            # A claim that cannot be given back expires with its holder
            # (the coordination backend's session); nothing else to do.
            LOG.exception('Releasing an allocation claim failed')
