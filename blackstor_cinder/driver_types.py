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
"""The volume types' extra specs the driver reads, and their checks.

``blackstor:replicas`` and ``blackstor:zones`` decide how many replicas a
volume gets and how they spread; a type that sets them wrong is refused
with the key and the value at fault.
"""

from __future__ import annotations

from typing import Any, Callable

from cinder import exception

from blackstor_cinder.cluster import placement
from blackstor_cinder.i18n import _

SPEC_REPLICAS = 'blackstor:replicas'
SPEC_ZONES = 'blackstor:zones'
#: the vendor properties' prefix
VENDOR = 'blackstor'


def volume_policy(conf: Any, volume: Any) -> tuple[int, str]:
    """(replicas, zone policy) of the volume's type."""
    specs = {}
    if volume.volume_type_id and volume.volume_type:
        specs = volume.volume_type.extra_specs or {}
    return policy(conf, specs)


def policy(conf: Any, specs: dict) -> tuple[int, str]:
    """(replicas, zone policy) of a type's extra specs."""
    replicas = specs.get(SPEC_REPLICAS)
    zones = specs.get(SPEC_ZONES) or conf.safe_get('blackstor_zone_policy')
    try:
        replicas = int(replicas) if replicas is not None else (
            conf.blackstor_replicas)
    except ValueError:
        replicas = 0
    if not 1 <= replicas <= 8:
        raise exception.InvalidVolumeType(reason=_(
            '%(key)s must be an integer from 1 to 8, not %(val)r') % {
                'key': SPEC_REPLICAS, 'val': specs.get(SPEC_REPLICAS)})
    if zones not in placement.ZONE_POLICIES:
        raise exception.InvalidVolumeType(reason=_(
            '%(key)s must be one of %(allowed)s, not %(val)r') % {
                'key': SPEC_ZONES, 'allowed': placement.ZONE_POLICIES,
                'val': zones})
    return replicas, zones


def vendor_properties(conf: Any,
                      set_property: Callable[..., None]) -> tuple[dict, str]:
    """The extra specs above as Cinder's vendor properties.

    ``set_property`` is the driver's ``_set_property`` (BaseVD's), which
    checks and fills each entry.
    """
    properties: dict = {}
    set_property(
        properties, SPEC_REPLICAS, 'Replicas',
        _('Number of diskful DRBD replicas of the volume.'), 'integer',
        minimum=1, maximum=8,
        default=conf.safe_get('blackstor_replicas') or 3)
    set_property(
        properties, SPEC_ZONES, 'Zone placement',
        _('spread puts every replica in a distinct zone; any ignores '
          'zones.'), 'string', enum=list(placement.ZONE_POLICIES),
        default='any')
    return properties, VENDOR
