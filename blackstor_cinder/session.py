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
"""Sessions: several agent requests through one agent process.

Part of the wire contract of :mod:`blackstor_cinder.protocol`. Starting
Python and the agent's imports costs more than most requests take (a
third of a second on a server, seconds on a small VM), so the SSH
transport keeps an agent process per channel and sends it one request
after another:

- the caller's first line is :func:`opening`; the agent answers with a
  framed ``{"session": 1}``;
- then each request is one line of JSON and each answer one framed line,
  ``{"exit": <exit code>, "reply": <the reply>}``: exactly what a
  one-shot agent would have printed and exited with;
- the agent reads its configuration again for every request, and ends at
  end of input or after :data:`IDLE` seconds without a request.

Any other first line is a one-shot request (the rest of the input is
read up to its end), so ``echo '{"op": "inventory"}' | blackstor-node``
and SSH forced commands keep working.
"""

from __future__ import annotations

import json

OP = 'session'
VERSION = 1
#: An agent waiting this long for the next request ends itself.
IDLE = 900
#: Longer first lines are never an opening (which is about 32 bytes).
_OPENING_MAX = 256


def opening() -> bytes:
    """The first line a caller sends to open a session."""
    return json.dumps({'op': OP, 'version': VERSION}).encode() + b'\n'


def is_opening(line: str) -> bool:
    # An opening is one short line: anything longer (a deeply nested one
    # would make json recurse to its limit) is a one-shot request.
    if len(line) > _OPENING_MAX:
        return False
    try:
        request = json.loads(line)
    except ValueError:
        return False
    return (isinstance(request, dict) and request.get('op') == OP
            and request.get('version') == VERSION)


def frame(reply: dict, exit_code: int) -> str:
    """One answer: the reply and the exit code, on one line."""
    return json.dumps({'exit': exit_code, 'reply': reply},
                      sort_keys=True) + '\n'


def unframe(line: bytes) -> tuple[int, bytes] | None:
    """(exit code, reply as JSON) of an answer; None if it is not one."""
    try:
        answer = json.loads(line.decode('utf-8'))
    except ValueError:
        return None
    if (not isinstance(answer, dict) or not isinstance(answer.get('exit'), int)
            or isinstance(answer['exit'], bool)
            or not isinstance(answer.get('reply'), dict)):
        return None
    return answer['exit'], json.dumps(answer['reply']).encode('utf-8')
