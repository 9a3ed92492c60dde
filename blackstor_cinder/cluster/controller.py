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
"""The controller: the public facade of the flows over the node agents.

``Controller`` is what the driver, ``blackstor-manage`` and the flows of
other modules (heal, membership, adopt, reconcile, retype) use: the
:class:`core.Core` (transports, locks, the parallel fan-out, the nodes'
reports; its docstring says which lock covers what) with one method per
flow, each handing over to the module of its flow:

* ``create``: a new volume, its placement decision and provisioning;
* ``snapshots``: snapshots, volumes from them, clones;
* ``resize``: extend and revert;
* ``attach``: attach and detach (clients);
* ``delete``: a volume's removal;
* ``tiebreaker``: the third vote of two-replica volumes;
* ``stats``: capacity and what the periodic repair works on.

The flows that change one resource run under its resource lock: the
methods below marked ``core.one_resource`` take it; the others take what
they need themselves (see each flow).
"""

from __future__ import annotations

from typing import Iterable

from blackstor_cinder.cluster import attach
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import create
from blackstor_cinder.cluster import delete
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import reconfigure
from blackstor_cinder.cluster import resize
from blackstor_cinder.cluster import snapshots
from blackstor_cinder.cluster import stats
from blackstor_cinder.cluster import tiebreaker

# what the callers of the controller name (see each module)
CLONE_PREFIX = snapshots.CLONE_PREFIX
ClusterStats = stats.ClusterStats


class Controller(core.Core):
    """Volume operations on a cluster of blackstor-node agents."""

    # -- create and delete --------------------------------------------------

    def create_volume(self, name: str, size: int,
                      replicas: int | None = None,
                      zone_policy: str | None = None) -> model.ResourceSpec:
        """See :func:`create.create_volume`."""
        return create.create_volume(self, name, size, replicas, zone_policy)

    @core.one_resource
    def delete_volume(self, name: str) -> None:
        """See :func:`delete.delete_volume`."""
        delete.delete_volume(self, name)

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

    #: the function itself: its argument is named like the module
    remove_temporary_snapshots = snapshots.remove_temporary_snapshots

    # -- resize and revert --------------------------------------------------

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

    # -- attach and detach --------------------------------------------------

    def attach(self, volume: str, host: str,
               address: str | None = None) -> str:
        """See :func:`attach.attach`."""
        return attach.attach(self, volume, host, address)

    def detach(self, volume: str, host: str | None = None,
               force: bool = False) -> None:
        """See :func:`attach.detach`."""
        attach.detach(self, volume, host, force)

    def forget_peers(self, spec: model.ResourceSpec,
                     node_ids: Iterable[int],
                     skip: Iterable[str] = ()) -> None:
        """See :func:`reconfigure.forget_peers`."""
        reconfigure.forget_peers(self, spec, node_ids, skip)

    # -- tiebreaker ---------------------------------------------------------

    def ensure_tiebreaker(self, name: str, lost: Iterable[str] = (),
                          wait: bool = True) -> str:
        """See :func:`tiebreaker.ensure`."""
        return tiebreaker.ensure(self, name, lost, wait)

    def remove_orphan_tiebreakers(self, orphans: dict[str, str]
                                  ) -> dict[str, str]:
        """See :func:`tiebreaker.remove_orphans`."""
        return tiebreaker.remove_orphans(self, orphans)

    # -- stats --------------------------------------------------------------

    def stats(self) -> ClusterStats:
        """See :func:`stats.collect`."""
        return stats.collect(self)

    def check_setup(self) -> dict[str, str]:
        """See :func:`stats.setup_problems`."""
        return stats.setup_problems(self)
