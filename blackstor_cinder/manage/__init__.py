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
"""``blackstor-manage``: the operator's view of a BlackStor backend.

Reads the backend's section of cinder.conf (no Cinder code needed) and asks
the nodes' agents, one ``inventory`` round trip per node, in parallel::

    blackstor-manage [--config-file F] [--backend NAME] nodes list
    blackstor-manage ... resources list
    blackstor-manage ... resource show NAME
    blackstor-manage ... check [--cinder-volumes FILE] [--fix
                                [--fix-orphan-lvs]]
    blackstor-manage ... node lost|evacuate NODE [--parallel N]

The commands are cliff commands (:mod:`.app`), as in openstackclient:
each takes ``-f table|json|yaml|csv|value``, ``-c COLUMN`` (repeatable)
and ``--help``. Everything is read-only except ``check --fix``
(:mod:`.check`) and ``node lost|evacuate`` (:mod:`.node`).

Exit codes: 0 success (``check``: nothing left to repair); 1 problems found
or an operation failed; 2 bad usage or configuration. Lists show an
unreachable node as such (and exit 1 only when no node answered).

What ``check`` reports (``*``: repaired by ``--fix``; ``**``: only with
``--fix-orphan-lvs`` too, never while a storage node is unreachable, never
an LV other LVs are snapshots of or DRBD still runs):

- ``node-unreachable`` / ``node-error`` / ``node-setup`` (pool, host name)
- ``orphan-lv`` ``**``: a volume LV without .res that no replica lists
- ``res-without-lv``: a .res gives the node a disk that does not exist
- ``divergent-res`` ``*``: a replica's .res differs (minor, port, hosts)
  from the majority's; the majority's is pushed with ``adjust``, or, for a
  replica the majority no longer lists (a node lost and healed that came
  back), that replica is removed once the listed ones are UpToDate (as the
  driver's periodic repair does: cluster.reconcile, on a fresh read of
  every storage node; the volume's lock is this process's, not Cinder's)
- ``zeroing-pending`` ``*``: an extend left the zeroing of the old DRBD
  metadata area unfinished on this replica (the replicas may differ there
  while DRBD believes them in sync); the node is asked to finish it, as
  the periodic repair does, before any .res is pushed
- ``replica-missing-res`` ``*``: the LV is there, the .res is gone
- ``missing-replica``: listed as a replica, neither LV nor .res exists
- ``clone-snapshot`` ``*``: a temporary ``clone-*`` snapshot left behind
- ``orphan-snapshot``: no volume LV of its origin family on the node
- ``leftover-lv``: the ``.rollback`` / ``.previous`` LV of an interrupted
  revert (revert again or delete the volume), or an LV name the agent does
  not handle
- ``unreadable-res``, ``res-not-for-node``,
  ``unknown-replica-node``, ``degraded`` (DRBD state)
- ``no-cinder-volume`` (with ``--cinder-volumes``): not a Cinder volume
"""
