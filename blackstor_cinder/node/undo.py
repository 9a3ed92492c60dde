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
"""Undo steps: what a failing handler created itself goes again."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Iterator

from blackstor_cinder.node.errors import AgentError

LOG = logging.getLogger(__name__)


class Undo:
    """Steps that revert what a handler did so far, run in reverse."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], Any]]] = []

    def push(self, what: str, step: Callable[[], Any]) -> None:
        self._steps.append((what, step))

    def forget(self) -> None:
        """What was done so far stays (it took effect and is right)."""
        self._steps.clear()

    @contextlib.contextmanager
    def on_failure(self) -> Iterator[Undo]:
        """Run the steps if the block fails; the error names failed ones."""
        try:
            yield self
        except BaseException as e:
            failed = self.run()
            if failed and isinstance(e, AgentError):
                e.details['undo_failed'] = failed
            raise

    def run(self) -> list[str]:
        failed = []
        for what, step in reversed(self._steps):
            try:
                step()
            except Exception as e:
                LOG.error('Undo step "%s" failed: %s', what, e)
                failed.append(f'{what}: {e}')
        self._steps.clear()
        return failed
