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
"""Manage / unmanage: Cinder's references and listings (cluster/adopt.py).

A reference names a resource of this driver or a bare thin LV
(``source-name``); one that names nothing manageable is Cinder's
ManageExistingInvalidReference, with the reason.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from cinder import exception
from cinder.volume import volume_utils

from blackstor_cinder.cluster import adopt
from blackstor_cinder.cluster import errors
from blackstor_cinder import driver_common
from blackstor_cinder.driver_common import GiB
from blackstor_cinder import driver_types
from blackstor_cinder.i18n import _


def manage_existing(ctl: Any, conf: Any, volume: Any,
                    existing_ref: Any) -> dict:
    """Adopt a resource of this driver or a bare thin LV (renamed)."""
    name = _reference(existing_ref)
    replicas, zones = driver_types.volume_policy(conf, volume)
    with _manage_translated(existing_ref, _('Manage of volume %s')
                            % volume.id):
        spec = adopt.adopt(ctl, name, volume.name, replicas, zones)
        if spec.size and spec.size % GiB:
            # Cinder sizes are whole GiB: the device grows to it
            ctl.extend_volume(volume.name, -(-spec.size // GiB) * GiB,
                              old_size=spec.size)
    return {}


def manage_existing_get_size(ctl: Any, volume: Any, existing_ref: Any) -> int:
    name = _reference(existing_ref)
    with _manage_translated(existing_ref, _('Manage of volume %s')
                            % volume.id):
        entry = adopt.find(ctl, name)
    if entry.reason_not_safe:
        raise exception.ManageExistingInvalidReference(
            existing_ref=existing_ref, reason=entry.reason_not_safe)
    return entry.size // GiB


def manageable_volumes(ctl: Any, cinder_volumes: list, marker: Any,
                       limit: int | None, offset: int | None,
                       sort_keys: list[str],
                       sort_dirs: list[str]) -> list[dict]:
    managed = {v.name: v.id for v in cinder_volumes}
    with driver_common.translated(_('Listing of manageable volumes')):
        found = adopt.manageable(ctl)
    entries = [dict(_manageable_row(e, managed),
                    extra_info={'kind': e.kind, 'nodes': ','.join(e.nodes)})
               for e in found]
    return volume_utils.paginate_entries_list(
        entries, marker, limit, offset, sort_keys, sort_dirs)


def manage_existing_snapshot(ctl: Any, snapshot: Any,
                             existing_ref: Any) -> dict:
    """Adopt a snapshot LV of the volume's replicas (renamed)."""
    name = _reference(existing_ref)
    with _manage_translated(existing_ref, _('Manage of snapshot %s')
                            % snapshot.id):
        adopt.adopt_snapshot(ctl, snapshot.volume.name, name,
                             driver_common.snapshot_name(snapshot))
    return {}


def manage_existing_snapshot_get_size(ctl: Any, snapshot: Any,
                                      existing_ref: Any) -> int:
    name = _reference(existing_ref)
    with _manage_translated(existing_ref, _('Manage of snapshot %s')
                            % snapshot.id):
        entry = adopt.find_snapshot(ctl, name, snapshot.volume.name)
    return entry.size // GiB


def manageable_snapshots(ctl: Any, cinder_snapshots: list, marker: Any,
                         limit: int | None, offset: int | None,
                         sort_keys: list[str],
                         sort_dirs: list[str]) -> list[dict]:
    managed = {driver_common.snapshot_name(s): s.id
               for s in cinder_snapshots}
    with driver_common.translated(_('Listing of manageable snapshots')):
        found = adopt.manageable_snapshots(ctl)
    entries = [dict(_manageable_row(e, managed),
                    source_reference={'source-name': e.volume},
                    extra_info={'nodes': ','.join(e.nodes)})
               for e in found]
    return volume_utils.paginate_entries_list(
        entries, marker, limit, offset, sort_keys, sort_dirs)


def _manageable_row(entry: Any, managed: dict[str, str]) -> dict:
    """One entry of get_manageable_*, as Cinder lists it.

    ``extra_info`` is a dict of strings: the manager turns the entries
    into ManageableVolume/Snapshot objects, whose field is a dict.
    """
    cinder_id = managed.get(entry.name)
    reason = 'already managed' if cinder_id else entry.reason_not_safe
    return {'reference': {'source-name': entry.name},
            'size': entry.size // GiB, 'safe_to_manage': not reason,
            'reason_not_safe': reason, 'cinder_id': cinder_id}


def _reference(existing_ref: Any) -> str:
    """The name a manage reference gives, or ManageExistingInvalidReference."""
    name = (existing_ref or {}).get('source-name') if isinstance(
        existing_ref, dict) else None
    if not name:
        raise exception.ManageExistingInvalidReference(
            existing_ref=existing_ref,
            reason=_('the reference needs source-name: a resource or thin '
                     'LV name on the storage nodes'))
    return name


@contextlib.contextmanager
def _manage_translated(existing_ref: Any, action: str) -> Iterator[None]:
    """A reference that names nothing manageable is an invalid one."""
    with driver_common.translated(action):
        try:
            yield
        except (errors.InvalidRequest, errors.ResourceNotFound) as exc:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref, reason=str(exc)) from exc
