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
"""blackstor-node's command line: stdin/file in, one JSON reply out."""

import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
from unittest import mock

import ddt
import fixtures

from blackstor_cinder.node import agent
from blackstor_cinder.node import cli
from blackstor_cinder import protocol
from blackstor_cinder import session
from tests.unit.node import fakes
from tests.unit.node import samples
from tests.unit import base


@ddt.ddt
class CliTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger())
        base = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.res_dir = base / 'drbd.d'
        self.res_dir.mkdir()
        (base / 'drbd.conf').write_text('include "drbd.d/*.res";\n')
        self.config = base / 'node.conf'
        self.config.write_text(
            '[node]\npools = vg0/thin\nnode_name = nodea\n'
            f'resource_dir = {self.res_dir}\n'
            f'drbd_config = {base / "drbd.conf"}\n'
            f'lock_dir = {base / "locks"}\n')
        self.base = base
        self.fake = fakes.FakeNode('nodea', str(self.res_dir))
        self.useFixture(fixtures.EnvironmentVariable(
            'BLACKSTOR_NODE_CONFIG', None))

    def run_cli(self, request, args=None, raw=False):
        stdin = io.StringIO(request if raw else json.dumps(request))
        stdout = io.StringIO()
        code = cli.main(['--config-file', str(self.config)]
                        + list(args or []), stdin=stdin, stdout=stdout,
                        execute=self.fake)
        lines = stdout.getvalue().splitlines()
        self.assertEqual(1, len(lines), stdout.getvalue())
        return code, json.loads(lines[0])

    def test_create_and_inventory(self):
        code, reply = self.run_cli(dict(
            op='create', resource='r0', pool='vg0/thin', size=1 << 30,
            spec=samples.spec(), secret=samples.SECRET))
        self.assertEqual(0, code)
        self.assertTrue(reply['ok'])
        self.assertEqual('up', reply['result']['drbd'])
        code, reply = self.run_cli({'op': 'inventory'})
        self.assertEqual(0, code)
        self.assertEqual([1000], reply['result']['used_minors'])

    def test_request_file(self):
        path = self.base / 'req.json'
        path.write_text(json.dumps({'op': 'status', 'resource': 'r0'}))
        code, reply = self.run_cli('', args=[str(path)], raw=True)
        self.assertEqual(0, code)
        self.assertFalse(reply['result']['exists'])

    def test_env_config(self):
        self.useFixture(fixtures.EnvironmentVariable(
            'BLACKSTOR_NODE_CONFIG', str(self.config)))
        stdout = io.StringIO()
        code = cli.main([], stdin=io.StringIO('{"op": "inventory"}'),
                        stdout=stdout, execute=self.fake)
        self.assertEqual(0, code, stdout.getvalue())
        self.assertEqual('nodea',
                         json.loads(stdout.getvalue())['result']['hostname'])

    def assertError(self, code, reply, error, field=None):
        self.assertEqual(protocol.EXIT_CODES[error], code)
        self.assertFalse(reply['ok'])
        self.assertEqual(error, reply['error']['code'])
        self.assertEqual(field, reply['error'].get('field'))

    def test_malformed_json(self):
        for text in ('{"op":', 'nonsense', '', '   ', '[1, 2'):
            code, reply = self.run_cli(text, raw=True)
            self.assertError(code, reply, protocol.E_INVALID)
        self.assertEqual([], self.fake.calls)

    def test_deep_nesting_is_invalid_input(self):
        # About 1,000 levels made json raise RecursionError: 'internal'
        # and a traceback.
        for text in ('[' * 1000 + ']' * 1000,
                     '{"op": "status", "resource": ' + '{"a": ' * 1000
                     + '1' + '}' * 1000 + '}',
                     '{"op": ' + '[' * 5000):
            code, reply = self.run_cli(text, raw=True)
            self.assertError(code, reply, protocol.E_INVALID)
            self.assertIn(f'deeper than {cli.MAX_DEPTH}',
                          reply['error']['message'])
        self.assertNotIn('Traceback', self.log.output)
        self.assertEqual([], self.fake.calls)

    def test_nesting_up_to_the_cap_is_parsed(self):
        # The object itself is one level.
        deep = '[' * (cli.MAX_DEPTH - 1) + ']' * (cli.MAX_DEPTH - 1)
        code, reply = self.run_cli('{"op": "status", "resource": '
                                   + deep + '}', raw=True)
        self.assertError(code, reply, protocol.E_INVALID, 'resource')
        # Brackets inside strings are not nesting.
        code, reply = self.run_cli({'op': 'status',
                                    'resource': '[{' * 1000 + '\\"['})
        self.assertError(code, reply, protocol.E_INVALID, 'resource')
        self.assertIn('not a valid name', reply['error']['message'])

    def test_lone_surrogates_are_invalid_input(self):
        # What stdin makes of a byte that is not UTF-8 (surrogateescape),
        # and the same as a JSON escape: both crashed the .res write.
        adjust = dict(op='adjust', resource='r0', secret=samples.SECRET,
                      res_text=samples.res_text().replace('options',
                                                          'opti\udcffons'))
        for text in (json.dumps(adjust, ensure_ascii=False),    # raw
                     json.dumps(adjust),                        # escaped
                     '{"op": "status", "resource": "r\\udcff"}',
                     '{"op": "inventory", "\\ud800": 1}'):
            code, reply = self.run_cli(text, raw=True)
            self.assertError(code, reply, protocol.E_INVALID)
            self.assertIn('not UTF-8', reply['error']['message'])
        self.assertNotIn('Traceback', self.log.output)
        self.assertEqual([], self.fake.calls)

    @ddt.data([], {}, ['inventory'], None, 1)
    def test_op_of_another_type(self, op):
        code, reply = self.run_cli({'op': op})
        self.assertError(code, reply, protocol.E_INVALID, 'op')
        self.assertNotIn('Traceback', self.log.output)

    def test_unknown_op(self):
        code, reply = self.run_cli({'op': 'rm-rf'})
        self.assertError(code, reply, protocol.E_INVALID, 'op')

    def test_bad_name(self):
        code, reply = self.run_cli({'op': 'status', 'resource': 'a/../b'})
        self.assertError(code, reply, protocol.E_INVALID, 'resource')

    def test_non_zero_exit_for_failures(self):
        code, reply = self.run_cli({'op': 'resize', 'resource': 'r0',
                                    'pool': 'vg0/thin', 'size': 1 << 30})
        self.assertError(code, reply, protocol.E_NOT_FOUND, 'resource')

    def test_missing_request_file(self):
        code, reply = self.run_cli('', args=['/nonexistent/req'], raw=True)
        self.assertError(code, reply, protocol.E_INVALID)

    def test_missing_config_file(self):
        self.config.unlink()
        code, reply = self.run_cli({'op': 'inventory'})
        self.assertError(code, reply, protocol.E_MISSING)
        self.assertIn(str(self.config), reply['error']['message'])

    def test_bad_config(self):
        self.config.write_text('[node]\npools = justavg\n')
        code, reply = self.run_cli({'op': 'inventory'})
        self.assertError(code, reply, protocol.E_INVALID)
        self.assertIn('pools', reply['error']['message'])

    def test_bad_arguments(self):
        code, reply = self.run_cli({'op': 'inventory'}, args=['--nope'])
        self.assertError(code, reply, protocol.E_INVALID)

    def test_internal_error_is_json(self):
        with mock.patch.object(agent.Agent, 'handle',
                               side_effect=RuntimeError('bug')):
            code, reply = self.run_cli({'op': 'inventory'})
        self.assertError(code, reply, protocol.E_INTERNAL)
        self.assertIn('bug', reply['error']['message'])
        self.assertIn('Traceback', self.log.output)

    def test_help_lists_every_op(self):
        stdout = io.StringIO()
        with mock.patch('sys.stdout', stdout):
            code = cli.main(['--help'], stdout=io.StringIO())
        self.assertEqual(0, code)
        text = stdout.getvalue()
        for op in protocol.OPS:
            self.assertRegex(text, rf'\n  {op} +\S')


class _Lines:
    """stdin for a session: each readline may first run a callback."""

    def __init__(self, lines, before=None):
        self.lines = list(lines)
        self.before = before or {}
        self.read = 0

    def readline(self, size=-1):
        if self.read in self.before:
            self.before[self.read]()
        self.read += 1
        return self.lines.pop(0) if self.lines else ''


class SessionTestCase(CliTestCase):

    def session(self, stdin):
        stdout = io.StringIO()
        code = cli.main(['--config-file', str(self.config)], stdin=stdin,
                        stdout=stdout, execute=self.fake)
        answers = [json.loads(line) for line in
                   stdout.getvalue().splitlines()]
        return code, answers

    def test_requests_one_per_line(self):
        create = json.dumps(dict(
            op='create', resource='r0', pool='vg0/thin', size=1 << 30,
            spec=samples.spec(), secret=samples.SECRET))
        code, answers = self.session(io.StringIO(
            session.opening().decode() + create + '\n'
            + '{"op": "inventory"}\n' + '{bad\n'
            + '{"op": "frobnicate"}\n'))
        self.assertEqual(0, code)
        self.assertEqual(5, len(answers), answers)
        self.assertEqual({'exit': 0, 'reply': {
            'ok': True, 'result': {'session': session.VERSION}}},
            answers[0])
        self.assertEqual(0, answers[1]['exit'], answers[1])
        self.assertTrue(answers[1]['reply']['ok'])
        inventory = answers[2]['reply']['result']
        self.assertEqual([1000], inventory['used_minors'])
        self.assertEqual((2, protocol.E_INVALID), (
            answers[3]['exit'], answers[3]['reply']['error']['code']))
        self.assertIn('malformed JSON',
                      answers[3]['reply']['error']['message'])
        self.assertEqual(2, answers[4]['exit'])
        self.assertEqual('op', answers[4]['reply']['error']['field'])

    def test_blank_line_gets_an_answer(self):
        # It got none: a caller waiting for one waited for its timeout.
        code, answers = self.session(io.StringIO(
            session.opening().decode() + '\n' + '  \t \n'
            + '{"op": "inventory"}\n'))
        self.assertEqual(0, code)
        self.assertEqual(4, len(answers), answers)
        for answer in answers[1:3]:
            self.assertEqual(2, answer['exit'])
            self.assertEqual(protocol.E_INVALID,
                             answer['reply']['error']['code'])
            self.assertIn('blank line', answer['reply']['error']['message'])
        self.assertEqual(0, answers[3]['exit'])

    def test_deep_nesting_in_a_session(self):
        deep = '[' * 1000 + ']' * 1000
        code, answers = self.session(io.StringIO(
            session.opening().decode() + deep + '\n'
            + '{"op": "inventory"}\n'))
        self.assertEqual(0, code)
        self.assertEqual(3, len(answers), answers)
        self.assertEqual(protocol.E_INVALID,
                         answers[1]['reply']['error']['code'])
        self.assertEqual(0, answers[2]['exit'])
        self.assertNotIn('Traceback', self.log.output)

    def test_deep_first_line_is_a_one_shot_request(self):
        # The first line is checked for an opening before anything else.
        code, reply = self.run_cli('{"op": "session", "x": ' + '[' * 1000
                                   + ']' * 1000 + '}', raw=True)
        self.assertError(code, reply, protocol.E_INVALID)
        self.assertNotIn('Traceback', self.log.output)

    def test_each_answer_is_what_one_shot_prints(self):
        request = {'op': 'status', 'resource': 'volume-x/y'}
        one_code, one_reply = self.run_cli(request)
        _code, answers = self.session(io.StringIO(
            session.opening().decode() + json.dumps(request) + '\n'))
        self.assertEqual({'exit': one_code, 'reply': one_reply},
                         answers[1])

    def test_configuration_read_for_every_request(self):
        def break_config():
            self.config.write_text('[node]\npools = not a pool\n')
        _code, answers = self.session(_Lines(
            [session.opening().decode(), '{"op": "inventory"}\n',
             '{"op": "inventory"}\n'], before={2: break_config}))
        self.assertEqual(0, answers[1]['exit'])
        self.assertEqual(protocol.E_INVALID,
                         answers[2]['reply']['error']['code'])
        self.assertIn('configuration', answers[2]['reply']['error']['message'])

    def test_internal_error_answers_and_goes_on(self):
        with mock.patch.object(agent.Agent, 'handle',
                               side_effect=[RuntimeError('bug'),
                                            ({'ok': True, 'result': {}}, 0)]):
            _code, answers = self.session(io.StringIO(
                session.opening().decode() + '{"op": "inventory"}\n' * 2))
        self.assertEqual(protocol.E_INTERNAL,
                         answers[1]['reply']['error']['code'])
        self.assertEqual(1, answers[1]['exit'])
        self.assertEqual({'exit': 0, 'reply': {'ok': True, 'result': {}}},
                         answers[2])

    def test_oversized_request_ends_the_session(self):
        big = '{"op": "inventory", "x": "' + 'a' * cli.MAX_REQUEST + '"}\n'
        code, answers = self.session(io.StringIO(
            session.opening().decode() + big + '{"op": "inventory"}\n'))
        self.assertEqual(2, code)
        self.assertEqual(2, len(answers))
        self.assertIn('larger than', answers[1]['reply']['error']['message'])

    def test_one_line_request_is_still_one_shot(self):
        code, reply = self.run_cli({'op': 'inventory'})
        self.assertEqual(0, code)
        self.assertNotIn('exit', reply)

    def test_opening_of_another_version_is_a_request(self):
        code, reply = self.run_cli({'op': 'session', 'version': 99})
        self.assertError(code, reply, protocol.E_INVALID, field='op')

    def test_idle_session_ends(self):
        read_fd, write_fd = os.pipe()
        self.addCleanup(os.close, write_fd)
        with os.fdopen(read_fd) as stdin:
            stdout = io.StringIO()
            args = cli.build_parser().parse_args(
                ['--config-file', str(self.config)])
            code = cli.serve(args, stdin, stdout, self.fake, idle=0.2)
        self.assertEqual(0, code)
        self.assertEqual(1, len(stdout.getvalue().splitlines()))


class ConsoleScriptTestCase(base.TestCase):
    """The real entry point in a subprocess, on this very machine."""

    AGENT = [sys.executable, '-c',
             'import sys; from blackstor_cinder.node.cli import main; '
             'sys.exit(main())']

    def agent_env(self):
        base = self.useFixture(fixtures.TempDir()).path
        config = os.path.join(base, 'node.conf')
        with open(config, 'w') as f:
            f.write('[node]\npools = blackstor-test-vg/thin\n'
                    f'lock_dir = {base}/locks\n')
        return dict(os.environ, BLACKSTOR_NODE_CONFIG=config)

    def test_inventory_here_says_what_is_missing(self):
        proc = subprocess.run(
            self.AGENT, input='{"op":"inventory"}', capture_output=True,
            text=True, env=self.agent_env(), timeout=60)
        self.assertNotIn('Traceback', proc.stdout)
        reply = json.loads(proc.stdout)
        self.assertFalse(reply['ok'])
        self.assertEqual('missing-dependency', reply['error']['code'])
        self.assertEqual(5, proc.returncode)
        message = reply['error']['message']
        if not shutil.which('vgs'):
            self.assertIn("'vgs' (package lvm2)", message)
        else:
            self.assertIn('blackstor-test-vg', message)
        if not os.path.exists('/proc/drbd'):
            self.assertIn('DRBD kernel module', message)

    def test_bytes_that_are_not_utf8(self):
        # The real stdin, under the locale the box and sshd give agents.
        env = dict(self.agent_env(), LANG='C.UTF-8', LC_ALL='C.UTF-8')
        proc = subprocess.run(
            self.AGENT, input=b'{"op": "status", "resource": "r\xff0"}',
            capture_output=True, env=env, timeout=60)
        self.assertNotIn(b'Traceback', proc.stderr)
        reply = json.loads(proc.stdout)
        self.assertEqual(protocol.E_INVALID, reply['error']['code'])
        self.assertIn('not UTF-8', reply['error']['message'])
        self.assertEqual(2, proc.returncode)

    def test_session(self):
        proc = subprocess.Popen(
            self.AGENT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=self.agent_env())
        self.addCleanup(proc.kill)
        proc.stdin.write(session.opening())
        proc.stdin.flush()
        self.assertEqual(0, json.loads(proc.stdout.readline())['exit'])
        for _ in range(2):
            # Answered while the input stays open: one process, two
            # requests.
            proc.stdin.write(b'{"op": "status", "resource": "a/b"}\n')
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())
            self.assertEqual(2, answer['exit'])
            self.assertEqual('resource', answer['reply']['error']['field'])
        proc.stdin.close()
        self.assertEqual(0, proc.wait(timeout=60))
        self.assertEqual(b'', proc.stdout.read())
        proc.stdout.close()

    def test_help(self):
        proc = subprocess.run(
            [sys.executable, '-c',
             'import sys; from blackstor_cinder.node.cli import main; '
             'sys.exit(main())', '--help'],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertIn('snapshot-rollback', proc.stdout)
