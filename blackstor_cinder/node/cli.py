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
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from typing import IO, Sequence

from blackstor_cinder.node import agent as agent_mod
from blackstor_cinder.node import config as node_config
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

#: A request larger than this is refused (a .res is at most 256 KiB).
MAX_REQUEST = 1 << 20


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):

    def error(self, message: str):
        raise _UsageError(message)


def _epilog() -> str:
    width = max(len(op) for op in agent_mod.OP_HELP)
    lines = ['operations ("op" of the request; fields: see '
             'blackstor_cinder/protocol.py):']
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


def _read_request(name: str | None, stdin: IO[str]) -> object:
    try:
        if name and name != '-':
            with open(name) as f:
                text = f.read(MAX_REQUEST + 1)
        else:
            text = stdin.read(MAX_REQUEST + 1)
    except OSError as e:
        raise _Failure(protocol.E_INVALID,
                       f'cannot read the request: {e.strerror}') from None
    except UnicodeDecodeError:
        raise _Failure(protocol.E_INVALID,
                       'the request is not UTF-8 text') from None
    if len(text) > MAX_REQUEST:
        raise _Failure(protocol.E_INVALID,
                       f'the request is larger than {MAX_REQUEST} bytes')
    if not text.strip():
        raise _Failure(protocol.E_INVALID,
                       'no request: expected one JSON object on stdin or in '
                       'a file')
    try:
        return json.loads(text)
    except ValueError as e:
        raise _Failure(protocol.E_INVALID,
                       f'malformed JSON request: {e}') from None


class _Failure(Exception):

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _emit(reply: dict, stdout: IO[str]) -> None:
    stdout.write(json.dumps(reply, sort_keys=True) + '\n')
    stdout.flush()


def main(argv: Sequence[str] | None = None, stdin: IO[str] | None = None,
         stdout: IO[str] | None = None, execute=None) -> int:
    """Run one request; return the exit code."""
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
        request = _read_request(args.request, stdin)
        reply, code = agent_mod.Agent(conf, execute=execute).handle(request)
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
