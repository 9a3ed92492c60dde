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
"""Heal a storage node down longer than ``blackstor_heal_after`` seconds.

The driver's stats task hands :class:`AutoHeal` the nodes down each
time; a node down long enough is healed as ``node lost`` heals it
(:func:`heal.node_lost`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from blackstor_cinder.cluster import heal

LOG = logging.getLogger(__name__)


class AutoHeal:
    """Heal a storage node down longer than ``after`` seconds (stats).

    One heal at a time, in a thread of its own: the stats never wait for
    a resync. A node is healed once per time it goes down.
    """

    def __init__(self, ctl, after: float, parallel: int,
                 sync_timeout: float = heal.SYNC_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctl, self.after, self.parallel = ctl, after, parallel
        self.sync_timeout = sync_timeout
        self.clock = clock
        self.progress = heal.Progress()
        self._down_since: dict[str, float] = {}
        self._healed: set[str] = set()
        self._thread: threading.Thread | None = None
        self.last: heal.Report | None = None

    def observe(self, nodes_down: Any) -> str | None:
        """Note the nodes down now; start a heal that is due (its node)."""
        now = self.clock()
        down = set(nodes_down)
        for name in list(self._down_since):
            if name not in down:
                del self._down_since[name]
                self._healed.discard(name)
        for name in down:
            self._down_since.setdefault(name, now)
        if self._thread is not None and self._thread.is_alive():
            return None
        due = sorted(n for n, since in self._down_since.items()
                     if now - since >= self.after and n not in self._healed
                     and self.ctl.config.node(n) is not None
                     and self.ctl.config.node(n).storage)
        if not due:
            return None
        node = due[0]
        self._healed.add(node)
        self._thread = threading.Thread(
            target=self._heal, args=(node,), daemon=True,
            name=f'blackstor-heal-{node}')
        self._thread.start()
        return node

    def _heal(self, node: str) -> None:
        LOG.warning('Storage node %(node)s has been down for more than '
                    '%(after)ss (blackstor_heal_after): healing its '
                    'resources', {'node': node, 'after': self.after})
        try:
            self.last = heal.node_lost(self.ctl, node, self.parallel,
                                       self.progress, self.sync_timeout)
        except Exception as exc:        # logged; retried when due again
            self._healed.discard(node)
            LOG.error('Heal of lost node %(node)s failed: %(err)s',
                      {'node': node, 'err': getattr(exc, 'message', exc)})
            return
        if not self.last.ok:
            self._healed.discard(node)  # the next stats try again

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
