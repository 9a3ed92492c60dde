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
"""Data-safety checks on the real DRBD 9 of the VMs, for every VM test.

Everything here reads the VMs over the test's own SSH (``VMCluster.ssh``),
never through the product: the product is what is checked.

- :func:`status` / :func:`peer_devices`: ``drbdsetup status --json
  --statistics`` of one resource on one node.
- :func:`verify`: ``drbdadm verify`` on one replica (each of its
  connections to a diskful peer), waits until no peer device is in
  VerifyS/VerifyT on any replica, returns the ``out-of-sync`` KiB of every
  peer device of every replica.
- :func:`lv_checksums`: sha256 of the first ``size`` bytes of each
  replica's backing LV, read with O_DIRECT (internal meta data is at the
  LV's end, so these are the device's bytes).
- :func:`device_checksum`: sha256 read through a DRBD device (a client's).
- :func:`write`: bytes written through a device with ``O_DIRECT``.
- :class:`Expected`: what a volume must hold, kept on the host.
- :func:`check_replicated`: all of it for one resource, as assertions.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import time
from typing import Callable, Iterable

MiB = 1 << 20
VERIFYING = ('VerifyS', 'VerifyT')
#: drbdsetup's exit code for "No such resource".
NO_SUCH_RESOURCE = 10


def each(names: Iterable[str], fn: Callable[[str], object]) -> dict:
    """``fn(name)`` for every name, in parallel; name -> result."""
    names = list(names)
    with concurrent.futures.ThreadPoolExecutor(max(1, len(names))) as pool:
        return dict(zip(names, pool.map(fn, names)))


def status(vms, node: str, resource: str) -> dict | None:
    """The resource's ``drbdsetup status --json --statistics`` on node."""
    proc = vms.ssh(node, f'drbdsetup status --json --statistics {resource}',
                   check=False)
    if proc.returncode == NO_SUCH_RESOURCE:
        return None
    if proc.returncode != 0:
        raise AssertionError(f'{node}: drbdsetup status {resource}: rc '
                             f'{proc.returncode}: {proc.stderr.strip()}')
    data = json.loads(proc.stdout)
    return data[0] if data else None


def peer_devices(state: dict | None) -> list[tuple[str, dict]]:
    """(peer name, peer device of volume 0) of every connection."""
    found = []
    for conn in (state or {}).get('connections') or []:
        for dev in conn.get('peer_devices') or []:
            if dev.get('volume', 0) == 0:
                found.append((conn.get('name'), dev))
    return found


def brief(state: dict | None) -> str:
    """One line of a node's state, for assertion messages."""
    if not state:
        return 'not up'
    devs = state.get('devices') or [{}]
    peers = ', '.join(
        f"{c.get('name')}:{c.get('connection-state')}/"
        + '/'.join(f"{d.get('peer-disk-state')}/{d.get('replication-state')}"
                   f"/oos={d.get('out-of-sync')}"
                   for d in c.get('peer_devices') or [])
        for c in state.get('connections') or [])
    return (f"{state.get('role')} disk={devs[0].get('disk-state')} "
            f"quorum={devs[0].get('quorum')} [{peers}]")


def wait(what: str, predicate: Callable[[], object], timeout: float,
         interval: float = 1.0):
    """Poll ``predicate`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'{what}: not within {timeout:.0f}s')
        time.sleep(interval)


def states(vms, resource: str, nodes: Iterable[str]) -> dict:
    return each(nodes, lambda n: status(vms, n, resource))


def in_sync_states(vms, resource: str, nodes: Iterable[str],
                   timeout: float = 300) -> dict:
    """Wait until every node sees every peer Connected, none resyncing."""
    nodes = list(nodes)
    last = {}

    def settled():
        last.update(states(vms, resource, nodes))
        for state in last.values():
            if not state:
                return False
            for conn in state.get('connections') or []:
                if conn.get('connection-state') != 'Connected':
                    return False
            for _, dev in peer_devices(state):
                if dev.get('replication-state') != 'Established':
                    return False
        return dict(last)
    try:
        return wait(f'{resource} connected and in sync', settled, timeout)
    except AssertionError as exc:
        raise AssertionError(f'{exc}: ' + '; '.join(
            f'{n}: {brief(s)}' for n, s in last.items())) from None


def verify(vms, resource: str, replicas: list[str],
           timeout: float = 600) -> dict[str, dict[str, int]]:
    """Online verify from ``replicas[0]``; node -> peer -> out-of-sync KiB.

    Needs ``verify-alg`` in the resource's net section. The out-of-sync
    figures are read on every replica once no peer device of any of them
    is in VerifyS/VerifyT.
    """
    in_sync_states(vms, resource, replicas)
    # Towards each other replica only: a diskless client has nothing to
    # compare (drbdadm would start one toward it too). replicas[0] equal
    # to every other replica means all are equal.
    for peer in replicas[1:]:
        _start_verify(vms, replicas[0], f'{resource}:{peer}')
    last = {}

    def done():
        last.update(states(vms, resource, replicas))
        return all(dev.get('replication-state') not in VERIFYING
                   for state in last.values()
                   for _, dev in peer_devices(state))
    try:
        wait(f'verify of {resource}', done, timeout)
    except AssertionError as exc:
        raise AssertionError(f'{exc}: ' + '; '.join(
            f'{n}: {brief(s)}' for n, s in last.items())) from None
    return {node: {peer: int(dev.get('out-of-sync', -1))
                   for peer, dev in peer_devices(state)}
            for node, state in last.items()}


def _start_verify(vms, node: str, target: str, tries: int = 4) -> None:
    """``drbdadm verify target`` on node, again when drbdadm timed out.

    drbdadm gives drbdsetup 5 s; on the loaded TCG VMs starting a verify
    (a state change on both ends) took longer. A verify that started
    meanwhile answers that it runs already: that is success.
    """
    for attempt in range(tries):
        proc = vms.ssh(node, f'drbdadm verify {target}', check=False)
        if proc.returncode == 0 or 'already' in proc.stderr.lower():
            return
        if 'did not terminate' not in proc.stderr or attempt == tries - 1:
            raise AssertionError(f'{node}: drbdadm verify {target}: rc '
                                 f'{proc.returncode}: {proc.stderr.strip()}')
        time.sleep(2)


def lv_checksums(vms, lv_path: str, size: int,
                 nodes: Iterable[str]) -> dict[str, str]:
    """sha256 of the first ``size`` bytes of ``lv_path`` on every node.

    Read with O_DIRECT: DRBD writes the backing LV with bios that bypass
    the page cache, so a buffered read can return what an earlier read
    cached (zeros) instead of what DRBD wrote since.
    """
    assert size % MiB == 0, size
    return each(nodes, lambda n: vms.ssh(
        n, f'dd if={lv_path} bs=1M count={size // MiB} iflag=direct '
           f'status=none | sha256sum').stdout.split()[0])


def device_checksum(vms, node: str, device: str, size: int) -> str:
    """sha256 of the first ``size`` bytes read through ``device``."""
    return vms.ssh(node, f'dd if={device} bs=1M count={size // MiB} '
                         f'iflag=direct status=none | sha256sum'
                   ).stdout.split()[0]


def device_size(vms, node: str, device: str) -> int:
    return int(vms.ssh(node, f'blockdev --getsize64 {device}').stdout)


def write(vms, node: str, device: str, offset: int, data: bytes) -> None:
    """Write ``data`` at ``offset`` through ``device`` (whole MiBs)."""
    assert offset % MiB == 0 and len(data) % MiB == 0
    vms.ssh_bytes(node, f'dd of={device} bs=1M seek={offset // MiB} '
                        f'iflag=fullblock oflag=direct conv=notrunc '
                        f'status=none', data)


class Expected:
    """The bytes a volume must hold, kept on the host (thin: zeros)."""

    def __init__(self, size: int, data: bytes | None = None) -> None:
        self.data = bytearray(size)
        if data is not None:
            self.data[:len(data)] = data[:size]

    @property
    def size(self) -> int:
        return len(self.data)

    def copy(self, size: int | None = None) -> Expected:
        """What a snapshot, clone or volume from it holds."""
        return Expected(size or self.size, bytes(self.data))

    def grow(self, size: int) -> None:
        self.data.extend(bytes(size - self.size))

    def write(self, offset: int, data: bytes) -> None:
        assert offset + len(data) <= self.size
        self.data[offset:offset + len(data)] = data

    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def check_replicated(test, vms, resource: str, lv_path: str,
                     replicas: list[str], size: int,
                     expected: Expected | None = None,
                     clients: dict[str, str] | None = None) -> dict:
    """Assert the resource is one consistent copy on every replica.

    ``drbdadm verify`` finds 0 out-of-sync on every peer device of every
    replica; the replicas' first ``size`` bytes agree, and equal
    ``expected`` when given; every client (node -> device path) reads the
    same bytes through its device. Returns the checksums (node -> sha256).
    """
    oos = verify(vms, resource, replicas)
    for node, peers in oos.items():
        test.assertTrue(peers, f'{resource} on {node}: no peer devices')
        for peer, kib in peers.items():
            test.assertEqual(0, kib, f'{resource}: {node} finds {kib} KiB '
                                     f'out of sync with {peer}: {oos}')
    sums = lv_checksums(vms, lv_path, size, replicas)
    test.assertEqual(1, len(set(sums.values())),
                     f'{resource}: replicas hold different data: {sums}')
    want = expected.sha256() if expected is not None else None
    if want is not None:
        test.assertEqual(size, expected.size)
        test.assertEqual(want, next(iter(sums.values())),
                         f'{resource}: replicas do not hold what was '
                         f'written')
    for node, device in (clients or {}).items():
        got = device_checksum(vms, node, device, size)
        test.assertEqual(want or next(iter(sums.values())), got,
                         f'{resource}: client {node} reads other data '
                         f'through {device}')
    return sums
