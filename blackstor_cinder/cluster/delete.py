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
"""Delete: every replica, client and tiebreaker of a volume.

Gone is success. A storage node that does not answer fails the delete
(the volume may live only there: Cinder retries), except the node of the
tiebreaker, which holds no data: its .res goes once it answers again (the
stats list it, ``tiebreaker.remove_orphans`` removes it).
"""

from __future__ import annotations

import logging

from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors

LOG = logging.getLogger(__name__)


def delete_volume(ctl: core.Core, name: str) -> None:
    """Remove every replica and client of a volume; gone is success.

    Under the volume's resource lock (the facade's ``core.one_resource``
    takes it): a create of the same name still running (its replicas not
    all written yet) ends first.
    """
    found = ctl.find(name)
    spec = found.spec
    if spec is None:
        if found.unreachable:
            # It may live only on the nodes we cannot reach: retry.
            raise errors.NodeOperationFailed('delete of ' + name,
                                             found.unreachable)
        return
    targets = {n.name: n for n in ctl.nodes(spec.hosts)}
    held = spec.tiebreaker_host
    if held is not None and held.name in found.unreachable:
        # no data there: its .res goes once the node answers again
        # (stats: orphan_tiebreakers, remove_orphan_tiebreakers)
        LOG.warning('Deleting %(res)s while its tiebreaker node %(node)s '
                    'is unreachable; the periodic repair removes the '
                    'tiebreaker there when it answers',
                    {'res': name, 'node': held.name})
        del targets[held.name]
    for node in ctl.config.storage_nodes:
        if node.name not in found.unreachable:
            targets.setdefault(node.name, node)
    ctl.each_or_raise('delete', targets.values(),
                      lambda n: {'op': 'delete', 'resource': name,
                                 'pool': ctl.config.pool}
                      if n.storage else
                      {'op': 'delete', 'resource': name})
    LOG.info('Deleted %s', name)
