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
"""Fuzzing the node agent through its real request path.

Requests go to the real ``blackstor-node`` executable of a cluster-in-a-box
node, as the SSH forced command runs it: most through one session per node
(the loop the SSH transport talks to), some as one-shot processes (stdin
in, one JSON document out, an exit code), which also carry what a session
cannot (non-UTF-8 bytes, raw line breaks, more than the size limit).

What is sent is made by a seeded :class:`random.Random` from *examples*:

- the requests the real controller sent to the node during a flow
  (create, attach, snapshot, clone, resize, revert, detach, delete), so
  whatever the resource schema becomes, the examples follow it;
- for every op of :data:`protocol.OPS` and every optional field, a value
  its own checker accepts, found by offering the checker candidates (the
  controller's values first): the schema, not a hand-written list, says
  which fields exist.

Each example is sent unchanged now and then (so the node's state moves on)
and mostly mutated: values of other types, sizes past any bound, names with
``/``, ``..``, NUL, unicode, shell metacharacters, node-ids out of range,
missing and unknown fields, fields of other ops, deep nesting, long
strings; or as text: random JSON, truncated, non-UTF-8, blank, nested
thousands deep.

:class:`Checker` asserts for every request: one JSON object as the answer
(a session frame or the one-shot stdout), an error code of
:data:`protocol.EXIT_CODES` and the exit code that goes with it, no
traceback on the agent's stderr, no request over :data:`MAX_SECONDS`, no
lock file left, and after a refused request nothing changed on the node:
its LVs, its .res files, its DRBD state in the stand-in (a ``timeout``
reply means "unknown", not refused).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import fcntl
import json
import os
import pathlib
import random
import re
import select
import subprocess
import time
from typing import Any, Callable

from blackstor_cinder.node import cli
from blackstor_cinder import protocol
from blackstor_cinder import session
from tests.standin import state as standin_state

#: No request may take longer (the issue's bound).
MAX_SECONDS = 10.0
#: How long to wait for an answer before calling the agent hung.
HANG_SECONDS = 60.0

# -- values ------------------------------------------------------------------

NAMES = ['', ' ', '/', '..', '.', 'a/b', '../../etc/passwd', '/etc/shadow',
         'r0\0', '\0', 'r0\n', 'r0 ', '-rf', '--force', '$(id)', '`id`',
         'a;rm -rf /', 'a|b', 'a&&b', "a'b", 'a"b', 'a\\b', '*', '?',
         'r\u00e9', '\u5377', '\u202eab', '\ud800', '\U0001f4a9', 'x' * 63,
         'x' * 64, 'x' * 300, 'snapshot-1', 'pvmove0',
         protocol.SECRET_PLACEHOLDER, 'volume-1', 'all', 'drbd0', 'r0\r',
         '%s%s%n', '{', '}', ';', '#']
INTS = [0, -1, 1, 2, 7, 31, 32, 33, 63, 64, 255, 256, 1000, 1023, 65535,
        65536, (1 << 20) - 1, 1 << 20, 1 << 30, (1 << 31) - 1, 1 << 31,
        1 << 32, (1 << 63) - 1, 1 << 63, protocol.SIZE_MAX,
        protocol.SIZE_MAX + 1, 10 ** 19, 10 ** 20, 10 ** 30, -(1 << 64),
        4095, 4097, 512]
OTHER = [None, True, False, 0.0, 1.5, -0.5, 1e308, float('inf'),
         float('nan'), [], {}, [1], ['x'], {'a': 1}, [None], {'': ''},
         [[[]]], '1', 'true', 'null', '0x10', '1e3']
FRAGMENTS = ['\0', '/', '..', '\n', '\r', ';', '$(', '`', '"', "'", '\\',
             '}', '{', 'handlers { before-resync-target "/bin/sh -c id"; }',
             'include "/etc/shadow";', 'volume 1 { disk "/dev/sda"; }',
             '\u5377', '\ud800', '\x7f', '\t', ' ' * 100, '#', '%n']


def _atom(rng: random.Random) -> Any:
    # A copy: a mutation may add to a list or object of OTHER (shared
    # ones grew into a structure too large to serialise).
    return copy.deepcopy(rng.choice(rng.choice((NAMES, INTS, OTHER))))


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value, nested a few levels at most."""
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind <= 2:
        return _atom(rng)
    if kind == 3:
        return ''.join(chr(rng.randrange(1, 0x3000))
                       for _ in range(rng.randrange(12)))
    if kind == 4:
        return rng.randrange(-1 << 70, 1 << 70)
    if kind in (5, 6):
        return {rng.choice(['op', 'resource', 'pool', 'size', 'x', '',
                            random_name(rng)]): random_json(rng, depth + 1)
                for _ in range(rng.randrange(5))}
    return [random_json(rng, depth + 1) for _ in range(rng.randrange(5))]


def random_name(rng: random.Random) -> str:
    alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_'
    return rng.choice('abcxyz') + ''.join(
        rng.choice(alphabet) for _ in range(rng.randrange(12)))


def evil_value(rng: random.Random, old: Any) -> Any:
    """Something the field must refuse, or a valid-looking neighbour."""
    kind = rng.randrange(6)
    if kind <= 2:
        return _atom(rng)
    if kind == 3 and isinstance(old, str):
        return mutate_string(rng, old)
    if kind == 3 and isinstance(old, int) and not isinstance(old, bool):
        return rng.choice([old + 1, old - 1, -old, old * 1024,
                           old + protocol.SIZE_MAX, old // 2])
    if kind == 4:
        return random_name(rng)
    return random_json(rng, 2)


def mutate_string(rng: random.Random, text: str) -> str:
    kind = rng.randrange(6)
    at = rng.randrange(len(text) + 1)
    numbers = list(re.finditer(r'\d+', text))
    if kind == 5 and numbers:
        # A number inside text (a node-id, minor, port or size of a
        # rendered file) out of range.
        match = rng.choice(numbers)
        return (text[:match.start()] + str(rng.choice(INTS))
                + text[match.end():])
    if kind == 0:
        return text[:at] + rng.choice(FRAGMENTS) + text[at:]
    if kind == 1:
        return text[:at]
    if kind == 2:
        return text * rng.choice((2, 100, 5000))
    if kind == 3 and text:
        chars = list(text)
        chars[rng.randrange(len(chars))] = chr(rng.randrange(0x110000))
        return ''.join(chars)
    return text[at:] + text[:at]


# -- examples from the schema -------------------------------------------------

#: Offered to a checker, after the controller's own values of that field.
CANDIDATES = (['fuzz-r0', 'volume-1', 'blackstor/thinpool', 1 << 30,
               64 << 20, 1, 7, 5, 30, 1.5, True, False, 'prepare',
               '0123456789abcdef0123456789abcdef',
               '/dev/drbd/by-res/fuzz-r0/0', 'Secret-0123456789abcdef',
               '127.0.0.1', 'stor-a'] + INTS + NAMES)


def _accepts(check: Callable, field: str, value: Any) -> bool:
    try:
        check(field, value)
    except (protocol.ProtocolError, ValueError, TypeError):
        return False
    return True


def schema_examples(seeds: list[dict]) -> dict[str, list[dict]]:
    """{op: valid requests}: the seeds, plus what the schema lets us make.

    Every op of :data:`protocol.OPS` gets one request with the required
    fields only and one with every optional field as well, each value the
    first candidate its checker accepts (the seeds' values of that field
    first, so names of resources that exist come first). An op whose
    required field no candidate satisfies has only its seeds.
    """
    by_field = collections.defaultdict(list)
    for seed in seeds:
        for field, value in seed.items():
            if value not in by_field[field]:
                by_field[field].append(value)
    examples = collections.defaultdict(list)
    for seed in seeds:
        examples[seed['op']].append(seed)
    for op, (required, optional) in protocol.OPS.items():
        request = {'op': op}
        for fields in (required, optional):
            for field, check in fields.items():
                value = next((v for v in by_field[field] + CANDIDATES
                              if _accepts(check, field, v)), _MISSING)
                if value is not _MISSING:
                    request[field] = value
            if not all(f in request for f in required):
                break
            if _valid(request):
                examples[op].append(dict(request))
    return dict(examples)


_MISSING = object()


def _valid(request: dict) -> bool:
    try:
        protocol.validate_request(request)
    except protocol.ProtocolError:
        return False
    return True


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key / index path in a request, nested ones too."""
    found = []
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return found
    for key, child in items:
        found.append(prefix + (key,))
        found += _paths(child, prefix + (key,))
    return found


def _parent(request: Any, path: tuple) -> Any:
    for key in path[:-1]:
        request = request[key]
    return request


# -- mutations ----------------------------------------------------------------

#: Seconds an attach may wait for its peers here: the harness does not
#: fuzz how long a caller lets it wait (the box's nodes default to it too).
ATTACH_WAIT = 2


def _bound_wait(request: Any) -> None:
    # A valid attach waits up to its ``timeout`` for a peer, as documented;
    # out-of-range values still go out (and are refused at once).
    if isinstance(request, dict) and request.get('op') == 'attach':
        timeout = request.get('timeout')
        if isinstance(timeout, (int, float)) and not isinstance(
                timeout, bool) and ATTACH_WAIT < timeout <= 3600:
            request['timeout'] = ATTACH_WAIT


@dataclasses.dataclass
class Case:
    """One request to send: as text (str) or bytes, and how it was made."""
    kind: str
    payload: str | bytes
    one_shot: bool
    request: Any = None


class Generator:
    """Cases from the examples, reproducible from the seed."""

    def __init__(self, examples: dict[str, list[dict]], seed: int) -> None:
        self.rng = random.Random(seed)
        self.examples = examples
        self.flat = [e for op in sorted(examples) for e in examples[op]]

    def example(self) -> dict:
        op = self.rng.choice(sorted(self.examples))
        return copy.deepcopy(self.rng.choice(self.examples[op]))

    def case(self) -> Case:
        rng = self.rng
        roll = rng.random()
        if roll < 0.06:
            return self._text('valid', self.example())
        if roll < 0.70:
            request = self.example()
            names = []
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                names.append(self._mutate(request))
            return self._text('mutated:' + names[0], request)
        if roll < 0.86:
            return self._text('random-json', random_json(rng))
        return self._raw()

    def _text(self, kind: str, request: Any) -> Case:
        rng = self.rng
        _bound_wait(request)
        text = json.dumps(request, ensure_ascii=rng.random() < 0.7)
        try:
            text.encode('utf-8')
        except UnicodeEncodeError:
            # A lone surrogate cannot be UTF-8: as an escape it parses.
            text = json.dumps(request)
        # A session answers a line longer than the limit and ends (it
        # cannot find the next request): such lines go one-shot.
        return Case(kind, text, rng.random() < 0.01
                    or len(text) > cli.MAX_REQUEST, request)

    def _mutate(self, request: dict) -> str:
        rng = self.rng
        paths = _paths(request)
        kind = rng.randrange(9)
        if kind <= 2 and paths:
            path = rng.choice(paths)
            parent = _parent(request, path)
            parent[path[-1]] = evil_value(rng, parent[path[-1]])
            return 'value'
        if kind == 3 and paths:
            path = rng.choice(paths)
            del _parent(request, path)[path[-1]]
            return 'missing'
        if kind == 4:
            targets = [request] + [
                _parent(request, p + ('x',)) for p in paths
                if isinstance(_parent(request, p + ('x',)), dict)]
            rng.choice(targets)[rng.choice(
                ['x', 'extra', 'handlers', 'include', 'disk', 'volume',
                 'op ', 'Op', random_name(rng)])] = random_json(rng, 2)
            return 'unknown-field'
        if kind == 5:
            request['op'] = rng.choice(
                sorted(protocol.OPS) + [evil_value(rng, 'status'),
                                        'session', 'OPS', 'inventory '])
            return 'op'
        if kind == 6:
            # Fields of another op (or another resource) mixed in.
            other = self.rng.choice(self.flat)
            field = rng.choice(sorted(other))
            request[field] = copy.deepcopy(other[field])
            return 'crossover'
        if kind == 7:
            ints = [p for p in paths if isinstance(_parent(request, p)[p[-1]],
                                                   int)]
            if ints:
                path = rng.choice(ints)
                _parent(request, path)[path[-1]] = rng.choice(INTS)
                return 'int'
        strings = [p for p in paths
                   if isinstance(_parent(request, p)[p[-1]], str)]
        if strings:
            path = rng.choice(strings)
            parent = _parent(request, path)
            parent[path[-1]] = mutate_string(rng, parent[path[-1]])
            return 'string'
        request[random_name(rng)] = None
        return 'unknown-field'

    def _raw(self) -> Case:
        rng = self.rng
        text = json.dumps(self.example())
        kind = rng.randrange(10)
        if kind <= 2:
            cut = text[:rng.randrange(len(text))]
            return Case('truncated', cut, rng.random() < 0.1)
        if kind == 3:
            depth = rng.choice((cli.MAX_DEPTH, cli.MAX_DEPTH + 1, 1000,
                                5000, 100000))
            opener = rng.choice(('[', '{"a": '))
            closer = ']' if opener == '[' else '}'
            inner = opener * depth + '1' + closer * depth
            if rng.random() < 0.5:
                inner = '{"op": "status", "resource": ' + inner + '}'
            elif rng.random() < 0.5:
                inner = opener * depth       # never closed
            return Case('deep', inner, rng.random() < 0.1)
        if kind == 4:
            data = bytearray(text.encode())
            for _ in range(rng.randrange(1, 4)):
                data.insert(rng.randrange(len(data) + 1),
                            rng.choice((0x80, 0xff, 0xc3, 0xed, 0xfe)))
            return Case('non-utf8', bytes(data), True)
        if kind == 5:
            return Case('blank', rng.choice(('', ' ', '\t', '  \t ')),
                        rng.random() < 0.2)
        if kind == 6:
            number = rng.choice(('1' * 5000, '-' + '9' * 4300, '1e400',
                                 'NaN', '-Infinity', '1.' + '0' * 10000))
            return Case('number', text.replace('1', number, 1)
                        if '1' in text else number, rng.random() < 0.1)
        if kind == 7:
            data = text[:-1] + ', "op": ' + json.dumps(
                rng.choice(sorted(protocol.OPS))) + '}'
            return Case('duplicate-key', data, rng.random() < 0.1)
        if kind == 8:
            at = rng.randrange(len(text) + 1)
            data = text[:at] + rng.choice(('\n', '\r', '\r\n', '\n\n'))
            return Case('line-break', data + text[at:], True)
        size = rng.choice((cli.MAX_REQUEST - 100, cli.MAX_REQUEST + 1,
                           2 * cli.MAX_REQUEST))
        data = '{"op": "inventory", "x": "' + 'a' * size + '"}'
        return Case('large', data, len(data) > cli.MAX_REQUEST
                    or rng.random() < 0.5)


# -- running and checking ----------------------------------------------------

class Failure(AssertionError):
    pass


class Session:
    """One ``blackstor-node`` process answering lines, as over SSH."""

    def __init__(self, argv: list[str], env: dict[str, str],
                 stderr_path: pathlib.Path) -> None:
        self.stderr = open(stderr_path, 'ab')
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=env,
                                     start_new_session=True)
        self.buffer = b''
        answer = self.ask(session.opening())
        if answer != {'exit': 0, 'reply': {'ok': True, 'result': {
                'session': session.VERSION}}}:
            raise Failure(f'no session: {answer}')

    def ask(self, line: bytes) -> Any:
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise Failure(f'the session had ended (exit '
                          f'{self.proc.wait()}) before {line[:200]!r}'
                          ) from None
        deadline = time.monotonic() + HANG_SECONDS
        while b'\n' not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f'no answer in {HANG_SECONDS:g}s to '
                              f'{line[:200]!r}')
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    raise Failure(f'the session ended (exit '
                                  f'{self.proc.wait()}) at {line[:200]!r}')
                self.buffer += chunk
        answer, self.buffer = self.buffer.split(b'\n', 1)
        try:
            return json.loads(answer)
        except ValueError:
            raise Failure(f'not JSON: {answer[:300]!r}') from None

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        finally:
            self.stderr.close()


def check_reply(reply: Any, exit_code: int, where: str) -> str:
    """The reply's code ('ok' or an error code); Failure if malformed."""
    if not isinstance(reply, dict) or not isinstance(reply.get('ok'), bool):
        raise Failure(f'{where}: not a reply object: {str(reply)[:300]}')
    if reply['ok']:
        if exit_code != 0 or not isinstance(reply.get('result'), dict):
            raise Failure(f'{where}: ok with exit {exit_code}: '
                          f'{str(reply)[:300]}')
        return 'ok'
    error = reply.get('error')
    if not isinstance(error, dict) or not isinstance(
            error.get('message'), str):
        raise Failure(f'{where}: malformed error: {str(reply)[:300]}')
    code = error.get('code')
    if code not in protocol.EXIT_CODES:
        raise Failure(f'{where}: undocumented code {code!r}')
    if exit_code != protocol.EXIT_CODES[code]:
        raise Failure(f'{where}: {code} with exit {exit_code}, documented '
                      f'{protocol.EXIT_CODES[code]}')
    return code


@dataclasses.dataclass
class Node:
    name: str
    env: dict[str, str]
    resource_dir: pathlib.Path
    lock_dir: pathlib.Path


class Checker:
    """Sends cases to the agents of ``nodes`` and checks every answer."""

    def __init__(self, agent: str, nodes: list[Node], standin_root: str,
                 workdir: pathlib.Path) -> None:
        self.agent = agent
        self.nodes = nodes
        self.standin_root = standin_root
        self.stderr_path = workdir / 'agent-stderr.log'
        self.sessions: dict[str, Session] = {}
        self.counts = collections.Counter()
        self.codes = collections.Counter()
        self.exits = collections.Counter()
        self.kinds = collections.Counter()
        self.seconds = collections.Counter()
        self.max_seconds = 0.0
        #: locks seen held by a live process after a reply, by command
        self.lock_holders = collections.Counter()
        self.slowest = ''
        self._stderr_seen = 0

    def close(self) -> None:
        for sess in self.sessions.values():
            sess.close()

    def _session(self, node: Node) -> Session:
        if node.name not in self.sessions:
            self.sessions[node.name] = Session([self.agent], node.env,
                                               self.stderr_path)
        return self.sessions[node.name]

    def state(self) -> dict:
        """What a refused request must not change, on every node."""
        with open(os.path.join(self.standin_root,
                               standin_state.STATE_FILE)) as f:
            nodes = json.load(f)['nodes']
        found = {}
        for node in self.nodes:
            data = nodes[node.name]
            found[node.name] = {
                'vgs': data.get('vgs'),
                'drbd': _without(data.get('drbd'), _VOLATILE),
                'res': {p.name: p.read_bytes() for p in
                        sorted(node.resource_dir.iterdir())},
            }
        return found

    def send(self, case: Case, node: Node) -> str:
        before = self.state()
        payload = case.payload
        data = payload if isinstance(payload, bytes) else payload.encode(
            'utf-8', 'surrogatepass')
        where = f'{case.kind} to {node.name}: {data[:300]!r}'
        started = time.monotonic()
        if case.one_shot:
            try:
                proc = subprocess.run([self.agent], input=data,
                                      capture_output=True, env=node.env,
                                      timeout=HANG_SECONDS)
            except subprocess.TimeoutExpired:
                raise Failure(f'{where}: no answer in {HANG_SECONDS:g}s'
                              ) from None
            seconds = time.monotonic() - started
            lines = proc.stdout.splitlines()
            if len(lines) != 1:
                raise Failure(f'{where}: {len(lines)} lines on stdout: '
                              f'{proc.stdout[:300]!r}')
            try:
                reply = json.loads(lines[0])
            except ValueError:
                raise Failure(f'{where}: not JSON: {lines[0][:300]!r}'
                              ) from None
            exit_code = proc.returncode
            self._check_stderr(where, proc.stderr)
            self.counts['one-shot'] += 1
        else:
            answer = self._session(node).ask(data + b'\n')
            seconds = time.monotonic() - started
            if not isinstance(answer, dict) or set(answer) != {'exit',
                                                               'reply'}:
                raise Failure(f'{where}: not a frame: {str(answer)[:300]}')
            reply, exit_code = answer['reply'], answer['exit']
            self._check_stderr(where)
            self.counts['session'] += 1
        code = check_reply(reply, exit_code, where)
        if exit_code not in set(protocol.EXIT_CODES.values()) | {0}:
            raise Failure(f'{where}: exit code {exit_code}')
        if seconds > self.max_seconds:
            self.max_seconds, self.slowest = seconds, where[:160]
        if seconds > MAX_SECONDS:
            raise Failure(f'{where}: took {seconds:.1f}s')
        leaked = leaked_locks(node.lock_dir, holders=self.lock_holders)
        if leaked:
            raise Failure(f'{where}: lock files left: {leaked}')
        if code not in ('ok', protocol.E_TIMEOUT):
            # A timeout means "unknown" (DESIGN 7): the op ran out of
            # time after doing its work, and converges when retried.
            after = self.state()
            if after != before:
                raise Failure(f'{where}: refused ({code}: '
                              f'{reply["error"]["message"][:200]}) but '
                              f'changed {_diff(before, after)}')
        self.counts['sent'] += 1
        self.codes[code] += 1
        self.exits[exit_code] += 1
        self.kinds[case.kind.split(':')[0]] += 1
        self.seconds[('one-shot ' if case.one_shot else '')
                     + ('ok' if code == 'ok' else 'refused')] += seconds
        return code

    def _check_stderr(self, where: str, text: bytes | None = None) -> None:
        if text is None:
            with open(self.stderr_path, 'rb') as f:
                f.seek(self._stderr_seen)
                text = f.read()
            self._stderr_seen += len(text)
        if b'Traceback' in text:
            raise Failure(f'{where}: traceback on stderr: '
                          f'{text[-2000:].decode(errors="replace")}')

    def report(self) -> str:
        def line(counter):
            return ', '.join(f'{k} {v}' for k, v in sorted(
                counter.items(), key=lambda i: str(i[0])))
        return '\n'.join([
            f'fuzz: sent {self.counts["sent"]} requests '
            f'({self.counts["session"]} in sessions, '
            f'{self.counts["one-shot"]} one-shot)',
            f'fuzz: replies: {line(self.codes)}',
            f'fuzz: exit codes: {line(self.exits)}',
            f'fuzz: kinds: {line(self.kinds)}',
            'fuzz: seconds: ' + ', '.join(
                f'{k} {v:.0f}' for k, v in sorted(self.seconds.items())),
            f'fuzz: max {self.max_seconds:.2f}s ({self.slowest})',
            f'fuzz: locks held by a live process after a reply: '
            f'{line(self.lock_holders) or "none"}'])


def leaked_locks(lock_dir: pathlib.Path, settle: float = 2.0,
                 holders: collections.Counter | None = None) -> list[str]:
    """The lock files in ``lock_dir`` that nobody holds and that stay.

    A file held by a live process is not left over: a suspend lease
    (``blackstor_cinder.node.lease``) wakes up between requests and takes
    the resource's lock to resume I/O, and its file goes when it lets go.
    A holder creates its file a moment before it locks it, so an unheld
    file is left over only if the same file is still there and unheld
    after ``settle`` seconds.
    """
    if not lock_dir.exists():
        return []

    def unheld() -> dict[str, int]:
        found = {p.name: _unheld_inode(p, holders)
                 for p in lock_dir.glob('*.lock')}
        return {name: ino for name, ino in found.items() if ino is not None}

    deadline = time.monotonic() + settle
    left = unheld()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        now = unheld()
        left = {n: ino for n, ino in left.items() if now.get(n) == ino}
    return sorted(left)


def _unheld_inode(path: pathlib.Path,
                  holders: collections.Counter | None = None) -> int | None:
    """The inode of ``path`` when no process holds its flock, else None.

    ``holders`` counts, by command, who held one.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if holders is not None:
                holders[_holder(os.fstat(fd).st_ino)] += 1
            return None             # a live holder: not left over
        ino = os.fstat(fd).st_ino
        try:
            same = os.stat(path).st_ino == ino
        except FileNotFoundError:
            same = False
        return ino if same else None
    finally:
        os.close(fd)


def _holder(inode: int) -> str:
    """What the process holding a flock on ``inode`` runs (/proc/locks)."""
    with open('/proc/locks') as f:
        for line in f:
            fields = line.split()
            if (len(fields) > 5 and fields[1] == 'FLOCK'
                    and fields[5].rsplit(':', 1)[-1] == str(inode)):
                try:
                    with open(f'/proc/{fields[4]}/cmdline', 'rb') as c:
                        argv = c.read().split(b'\0')
                except OSError:
                    return 'gone'
                words = [a.decode(errors='replace') for a in argv if a]
                return ' '.join(os.path.basename(w) for w in words[:3])
    return 'unknown'


# Runtime state a request does not own: whether I/O is suspended by the
# user (a suspend lease resumes it by itself, between requests), and what
# follows the opens and closes of a device: auto-promotion, role, open
# counts, I/O counters (FUSE releases a closed device asynchronously).
_VOLATILE = ('susp_user', 'auto_promoted', 'role', 'open_rw', 'open_ro',
             'read', 'written')


def _without(value: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items()
                if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def _diff(before: Any, after: Any, path: str = '') -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            if before.get(key, _MISSING) != after.get(key, _MISSING):
                return _diff(before.get(key), after.get(key),
                             f'{path}/{key}')
    return f'{path}: {str(before)[:200]} -> {str(after)[:200]}'
