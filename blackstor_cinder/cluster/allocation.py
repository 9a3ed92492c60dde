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
the cluster (any hypervisor may attach any volume later). The nodes' .res
files are the truth; this allocator only remembers what it handed out and
what is not on the nodes yet, so that concurrent creates in this process
never pick the same values. Across processes (Active/Active) the caller
holds a distributed lock, and the agents refuse a clash anyway.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from typing import Iterable, Iterator

from blackstor_cinder.cluster import errors
from blackstor_cinder import protocol


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


class Allocator:
    """Hands out (minor, port) pairs free on every node.

    Values handed out stay remembered until ``forget``: an inventory read
    just before another thread's create landed must not make them look
    free again.
    """

    def __init__(self, minors: range, ports: range) -> None:
        self._minors = minors
        self._ports = ports
        self._lock = threading.Lock()
        self._minors_out: set[int] = set()
        self._ports_out: set[int] = set()

    @contextlib.contextmanager
    def reserve(self, used_minors: set, used_ports: set
                ) -> Iterator[tuple[int, int]]:
        """Reserve a free pair; given back if the block raises."""
        with self._lock:
            minor = lowest_free(self._minors, used_minors | self._minors_out)
            port = lowest_free(self._ports, used_ports | self._ports_out)
            if minor is None:
                raise errors.AllocationError(
                    f'no free DRBD minor left in {self._minors.start}-'
                    f'{self._minors.stop - 1}')
            if port is None:
                raise errors.AllocationError(
                    f'no free port left in {self._ports.start}-'
                    f'{self._ports.stop - 1}')
            self._minors_out.add(minor)
            self._ports_out.add(port)
        try:
            yield minor, port
        except BaseException:
            self.forget(minor, port)
            raise

    def forget(self, minor: int, port: int) -> None:
        """The resource holding ``minor``/``port`` is gone."""
        with self._lock:
            self._minors_out.discard(minor)
            self._ports_out.discard(port)
