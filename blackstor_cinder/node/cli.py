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
"""``blackstor-node``: one JSON request in, one JSON reply out.

The request comes from a file named on the command line or from stdin;
the reply goes to stdout as one JSON object, the exit code tells success
(0) or the kind of failure (:data:`protocol.EXIT_CODES`). Whatever goes
wrong (bad arguments, a bad configuration, malformed JSON, a bug), the
caller still gets one JSON error object, never a traceback; logs go to
stderr.

A first line that opens a session (:mod:`blackstor_cinder.session`) makes
the agent answer one request per line until its input ends: the SSH
transport uses that to start Python once per channel, not per request.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import textwrap
from typing import IO, Sequence

from blackstor_cinder.node import agent as agent_mod
from blackstor_cinder.node import config as node_config
from blackstor_cinder import protocol
from blackstor_cinder import session

LOG = logging.getLogger(__name__)

#: A request larger than this is refused (a .res is at most 256 KiB).
MAX_REQUEST = 1 << 20
#: A request nesting arrays and objects deeper than this is refused before
#: it is parsed: the schema needs a few levels, and json's decoder (and
#: every repr of the value) recurses, raising RecursionError near 1,000.
MAX_DEPTH = 32
# A JSON string (or one cut off by the end of the text) or a bracket: only
# brackets outside strings count. Linear: no alternative backtracks.
_DEPTH_TOKEN = re.compile(r'"(?:[^"\\]|\\.?)*(?:"|\Z)|[\[\]{}]', re.S)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):

    def error(self, message: str):
        raise _UsageError(message)


def _epilog() -> str:
    width = max(len(op) for op in agent_mod.OP_HELP)
    lines = ['operations ("op" of the request; fields: see '
             'blackstor_cinder/protocol/):']
    for op, text in agent_mod.OP_HELP.items():
        wrapped = textwrap.wrap(text, 76 - width - 4) or ['']
        lines.append(f'  {op:<{width}}  {wrapped[0]}')
        lines += [f'  {"":<{width}}  {rest}' for rest in wrapped[1:]]
    codes = 'exit codes: 0 ok, ' + ', '.join(
        f'{code} {name}' for name, code in sorted(
            protocol.EXIT_CODES.items(), key=lambda i: i[1])
        if name != protocol.E_INTERNAL) + ' (internal errors exit 1)'
    lines += ['', 'example:', "  echo '{\"op\": \"inventory\"}' | "
              'blackstor-node', '', textwrap.fill(codes, 78), '',
              textwrap.fill(
                  f'configuration: --config-file, else '
                  f'${node_config.CONFIG_ENV}, else '
                  f'{node_config.DEFAULT_CONFIG_FILE} if it exists', 78)]
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog='blackstor-node',
        description=textwrap.fill(
            'BlackStor node agent: runs one LVM thin / DRBD 9 operation '
            'described by a JSON request and prints a JSON reply.', 78),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('request', nargs='?', metavar='REQUEST_FILE',
                        help='file holding the JSON request (default: '
                             'stdin; "-" is stdin too)')
    parser.add_argument('--config-file', action='append', metavar='PATH',
                        help='agent configuration ([node] section); may be '
                             'repeated')
    parser.add_argument('--debug', action='store_true',
                        help='log every command to stderr')
    return parser


def _read_file(name: str) -> str:
    try:
        with open(name) as f:
            return f.read(MAX_REQUEST + 1)
    except OSError as e:
        raise _Failure(protocol.E_INVALID,
                       f'cannot read the request: {e.strerror}') from None
    except UnicodeDecodeError:
        raise _Failure(protocol.E_INVALID,
                       'the request is not UTF-8 text') from None


def _read_stdin(stdin: IO[str], size: int, line: bool = False) -> str:
    try:
        return stdin.readline(size) if line else stdin.read(size)
    except UnicodeDecodeError:
        raise _Failure(protocol.E_INVALID,
                       'the request is not UTF-8 text') from None


def _too_deep(text: str) -> bool:
    if text.count('[') + text.count('{') <= MAX_DEPTH:
        return False
    depth = 0
    for match in _DEPTH_TOKEN.finditer(text):
        token = match.group()
        if token in '[{':
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif token in ']}':
            depth -= 1
    return False


def _parse_request(text: str) -> object:
    if len(text) > MAX_REQUEST:
        raise _Failure(protocol.E_INVALID,
                       f'the request is larger than {MAX_REQUEST} bytes')
    if not text.strip():
        raise _Failure(protocol.E_INVALID,
                       'no request: expected one JSON object on stdin or in '
                       'a file')
    if _too_deep(text):
        raise _Failure(protocol.E_INVALID,
                       f'the request nests arrays and objects deeper than '
                       f'{MAX_DEPTH} levels')
    try:
        request = json.loads(text)
    except ValueError as e:
        raise _Failure(protocol.E_INVALID,
                       f'malformed JSON request: {e}') from None
    try:
        # A lone surrogate: a byte that was not UTF-8 (stdin decodes those
        # with surrogateescape under a C.UTF-8 locale) or a "\ud800"
        # escape. No name, path or file may hold one: it failed later,
        # when written, as an internal error.
        json.dumps(request, ensure_ascii=False).encode('utf-8')
    except UnicodeEncodeError:
        raise _Failure(protocol.E_INVALID, 'the request is not UTF-8 text '
                       '(a byte that is not UTF-8, or an escaped lone '
                       'surrogate)') from None
    return request


class _Failure(Exception):

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _emit(reply: dict, stdout: IO[str]) -> None:
    stdout.write(json.dumps(reply, sort_keys=True) + '\n')
    stdout.flush()


def _handle(args: argparse.Namespace, text: str, execute) -> tuple[dict, int]:
    """(reply, exit code) for one request's text; never raises."""
    try:
        files, _required = node_config.config_files(args.config_file)
        try:
            conf = node_config.load(files)
        except OSError as e:
            raise _Failure(protocol.E_MISSING,
                           f'configuration file {e.filename}: '
                           f'{e.strerror}') from None
        except ValueError as e:
            raise _Failure(protocol.E_INVALID,
                           f'configuration ({", ".join(files)}): {e}'
                           ) from None
        request = _parse_request(text)
        return agent_mod.Agent(conf, execute=execute).handle(request)
    except _Failure as e:
        return (protocol.error_reply(e.code, e.message),
                protocol.EXIT_CODES[e.code])
    except Exception as e:  # never a traceback on stdout
        LOG.exception('blackstor-node failed')
        return (protocol.error_reply(protocol.E_INTERNAL,
                                     f'{type(e).__name__}: {e}'),
                protocol.EXIT_CODES[protocol.E_INTERNAL])


class _Idle(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Idle()


def serve(args: argparse.Namespace, stdin: IO[str], stdout: IO[str],
          execute=None, idle: float | None = None) -> int:
    """Answer requests, one per line, until end of input or ``idle``."""
    stdout.write(session.frame(protocol.ok_reply(
        {'session': session.VERSION}), 0))
    stdout.flush()
    if idle:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        while True:
            try:
                if idle:
                    signal.setitimer(signal.ITIMER_REAL, idle)
                line = stdin.readline(MAX_REQUEST + 1)
            except _Idle:
                LOG.info('No request for %s s: ending the session', idle)
                return 0
            except UnicodeDecodeError:
                line = None
            finally:
                if idle:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            if line is None or (line and not line.endswith('\n')
                                and len(line) > MAX_REQUEST):
                # No way to find the next request: answer and end.
                reply = protocol.error_reply(
                    protocol.E_INVALID,
                    'the request is not UTF-8 text' if line is None else
                    f'the request is larger than {MAX_REQUEST} bytes')
                stdout.write(session.frame(
                    reply, protocol.EXIT_CODES[protocol.E_INVALID]))
                stdout.flush()
                return protocol.EXIT_CODES[protocol.E_INVALID]
            if not line:
                return 0
            if line.strip():
                reply, code = _handle(args, line, execute)
            else:
                # Answered like any request: a caller waiting for an
                # answer to each line must never wait for its timeout.
                reply = protocol.error_reply(
                    protocol.E_INVALID,
                    'no request: a blank line (one JSON object per line)')
                code = protocol.EXIT_CODES[protocol.E_INVALID]
            try:
                stdout.write(session.frame(reply, code))
                stdout.flush()
            except BrokenPipeError:
                # The caller gave up (a timeout): nobody to answer.
                return 0
    finally:
        if idle:
            signal.signal(signal.SIGALRM, previous)


def main(argv: Sequence[str] | None = None, stdin: IO[str] | None = None,
         stdout: IO[str] | None = None, execute=None) -> int:
    """Run one request, or a session of them; return the exit code."""
    real_stdin = stdin is None
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except _UsageError as e:
            raise _Failure(protocol.E_INVALID,
                           f'{e} (see blackstor-node --help)') from None
        logging.basicConfig(
            stream=sys.stderr,
            level=logging.DEBUG if args.debug else logging.WARNING,
            format='%(asctime)s %(levelname)s %(name)s: %(message)s')
        if args.request and args.request != '-':
            text = _read_file(args.request)
        else:
            first = _read_stdin(stdin, MAX_REQUEST + 1, line=True)
            if session.is_opening(first):
                return serve(args, stdin, stdout, execute,
                             idle=session.IDLE if real_stdin else None)
            text = first
            if len(first) <= MAX_REQUEST:
                text += _read_stdin(stdin, MAX_REQUEST + 1 - len(first))
        reply, code = _handle(args, text, execute)
    except _Failure as e:
        reply = protocol.error_reply(e.code, e.message)
        code = protocol.EXIT_CODES[e.code]
    except SystemExit as e:
        # --help (argparse prints it and exits 0).
        return e.code if isinstance(e.code, int) else 0
    except BaseException as e:  # never a traceback on stdout
        if isinstance(e, KeyboardInterrupt):
            message = 'interrupted'
        else:
            LOG.exception('blackstor-node failed')
            message = f'{type(e).__name__}: {e}'
        reply = protocol.error_reply(protocol.E_INTERNAL, message)
        code = protocol.EXIT_CODES[protocol.E_INTERNAL]
    _emit(reply, stdout)
    return code
