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
"""The one exception type of the node agent.

Every failure the agent reports carries a protocol error code
(:mod:`blackstor_cinder.protocol`), a message for a human and, when one
request field is to blame, the name of that field.
"""

from __future__ import annotations

from typing import Any, Sequence

from blackstor_cinder import protocol


class AgentError(Exception):
    """A failure with a protocol error code, turned into an error reply."""

    def __init__(self, code: str, message: str, field: str | None = None,
                 **details: Any) -> None:
        if code not in protocol.EXIT_CODES:
            raise ValueError(f'unknown error code {code!r}')
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = details

    @property
    def exit_code(self) -> int:
        return protocol.EXIT_CODES[self.code]

    def reply(self) -> dict:
        return protocol.error_reply(self.code, self.message, self.field,
                                    **self.details)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.code!r}, {self.message!r}, '
                f'field={self.field!r})')


class CommandError(AgentError):
    """A command that exited with a code the caller did not accept."""

    def __init__(self, argv: Sequence[str], exit_code: int, stdout: str,
                 stderr: str, code: str = protocol.E_FAILED,
                 field: str | None = None) -> None:
        self.argv = list(argv)
        self.rc = exit_code
        self.stdout = stdout
        self.stderr = stderr
        tail = _last_lines(stderr) or _last_lines(stdout)
        message = f'{" ".join(self.argv)} failed with exit code {exit_code}'
        if tail:
            message += f': {tail}'
        super().__init__(code, message, field, exit_code=exit_code)


def _last_lines(text: str, count: int = 3) -> str:
    # drbdadm chatters on stderr ("PRETENDING that I am", modinfo); keep
    # the last lines that say something.
    noise = ('found __DRBD_NODE__', 'PRETENDING that I am', 'modinfo:')
    lines = [line.strip() for line in (text or '').splitlines()
             if line.strip() and not any(n in line for n in noise)]
    return ' / '.join(lines[-count:])
