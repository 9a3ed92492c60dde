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
"""What the driver's modules share: sizes, names and the error mapping.

Cinder glue like ``driver.py``: the controller's errors become Cinder's
here, once, for every module of the driver.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from cinder import exception

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport
from blackstor_cinder.i18n import _

GiB = 1 << 30


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Map the controller's errors to Cinder's, once, with the action."""
    try:
        yield
    except errors.InvalidRequest as exc:
        raise exception.InvalidInput(
            reason=_('%(action)s: %(err)s') % {'action': action,
                                               'err': exc}) from exc
    except (errors.ClusterError, transport.NodeError) as exc:
        # a node's error is a ClusterError's cause; one that escapes as
        # it is says which node and why too
        raise exception.VolumeBackendAPIException(
            data=_('%(action)s: %(err)s') % {'action': action,
                                             'err': exc}) from exc


def snapshot_name(snapshot: Any) -> str:
    """The snapshot's LV name on every replica.

    Cinder's default 'snapshot-<id>' is refused by LVM, which reserves the
    'snapshot' prefix.
    """
    return f'snap-{snapshot.id}'
