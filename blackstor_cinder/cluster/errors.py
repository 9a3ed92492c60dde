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
"""Errors of the controller core (plain exceptions; the driver maps them)."""

from __future__ import annotations


class ClusterError(Exception):
    """Base of the controller's errors; the message is for operators."""


class InvalidRequest(ClusterError):
    """The request cannot be served as asked (bad size, bad type spec)."""


class PlacementError(ClusterError):
    """Not enough suitable nodes or space to place the replicas."""


class AllocationError(ClusterError):
    """No free minor, port or node-id left in the configured ranges."""


class ResourceNotFound(ClusterError):
    """No reachable node knows the resource."""


class NodeOperationFailed(ClusterError):
    """A step failed on one or more nodes.

    ``failures`` maps node name to the transport's NodeError.
    """

    def __init__(self, step: str, failures: dict) -> None:
        self.step = step
        self.failures = failures
        detail = '; '.join(f'{node}: {getattr(err, "message", err)}'
                           for node, err in sorted(failures.items()))
        super().__init__(f'{step} failed on {len(failures)} node(s): '
                         f'{detail}')

    @property
    def conflict(self) -> bool:
        """True when a node refused because of a minor/port clash."""
        return any(getattr(e, 'code', None) == 'conflict'
                   for e in self.failures.values())
