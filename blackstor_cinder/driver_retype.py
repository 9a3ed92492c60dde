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
"""Retype in place: the replica count and zones, live (cluster/retype.py).

Anything else a retype changes is Cinder's to do by migration: the
driver answers False and says why.
"""

from __future__ import annotations

from typing import Any

from cinder.volume import volume_utils
from oslo_log import log as logging

from blackstor_cinder.cluster import heal
from blackstor_cinder.cluster import retype as retyping
from blackstor_cinder import driver_common
from blackstor_cinder import driver_types
from blackstor_cinder.i18n import _

LOG = logging.getLogger(__name__)

#: extra specs a retype changes in place (the backend's name: the manager
#: calls retype only when the volume stays on this backend)
_RETYPED_SPECS = frozenset((driver_types.SPEC_REPLICAS,
                            driver_types.SPEC_ZONES, 'volume_backend_name'))


def retype(ctl: Any, conf: Any, volume: Any, new_type: Any, diff: dict,
           host: dict) -> tuple[bool, dict | None]:
    """The driver's retype: (True, {}) when done here, else (False, None)."""
    why = needs_migration(volume, diff or {}, host)
    if not why:
        replicas, zones = driver_types.policy(conf,
                                              new_type.extra_specs or {})
        with driver_common.translated(_('Retype of volume %s') % volume.id):
            why = retyping.retype(
                ctl, volume.name, replicas, zones,
                conf.safe_get('blackstor_heal_sync_timeout')
                or heal.SYNC_TIMEOUT).migrate
    if why:
        LOG.warning('Volume %(id)s is not retyped in place, Cinder '
                    'migrates it: %(why)s', {'id': volume.id, 'why': why})
        return False, None
    return True, {}


def needs_migration(volume: Any, diff: dict, host: dict) -> str | None:
    """Why a retype is not ours to do in place, or None."""
    same = (volume.cluster_name and volume.cluster_name
            == host.get('cluster_name')) or (
        volume_utils.extract_host(volume.host)
        == volume_utils.extract_host(host.get('host')))
    if not same:
        return f'it goes to another backend ({host.get("host")})'
    changed = {f'{kind} {key}' for kind in ('qos_specs', 'encryption')
               for key, (old, new) in (diff.get(kind) or {}).items()
               if old != new}
    changed |= {f'extra spec {key}' for key, (old, new) in (
        diff.get('extra_specs') or {}).items()
        if old != new and key not in _RETYPED_SPECS}
    if changed:
        return ('BlackStor changes only the replicas and zones in place, '
                'not ' + ', '.join(sorted(changed)))
    return None
