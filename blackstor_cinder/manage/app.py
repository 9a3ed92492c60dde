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
"""The ``blackstor-manage`` application: cliff's App and the commands."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Sequence

from cliff import app
from cliff import commandmanager

from blackstor_cinder.manage import check
from blackstor_cinder.manage import config
from blackstor_cinder.manage import listing
from blackstor_cinder.manage import node

#: Command words -> command. Static: no installed entry points needed.
COMMANDS = {
    'nodes list': listing.NodesList,
    'resources list': listing.ResourcesList,
    'resource show': listing.ResourceShow,
    'check': check.Check,
    'node lost': node.NodeLost,
    'node evacuate': node.NodeEvacuate,
}
#: Entry point group other packages may add commands to.
NAMESPACE = 'blackstor_cinder.manage'
DESCRIPTION = (
    'Inspect and check a BlackStor (DRBD 9) Cinder backend through its '
    'nodes\' agents. Read-only except check --fix, node lost and node '
    'evacuate. "blackstor-manage help COMMAND" or "COMMAND --help" shows '
    'the options of a command.')
LOG_FORMAT = '%(levelname)s %(name)s: %(message)s'


def _version() -> str:
    try:
        from importlib import metadata
        return metadata.version('blackstor-cinder')
    except Exception:       # not installed (run from a source tree)
        return 'unknown'


class Manage(app.App):
    """cliff's App with the backend options and this tool's exit codes."""

    NAME = config.PROG
    LOG = logging.getLogger(config.PROG)

    def __init__(self) -> None:
        manager = commandmanager.CommandManager(NAMESPACE)
        for words, command in COMMANDS.items():
            manager.add_command(words, command)
        self.no_command = False
        self._logging: tuple[list[logging.Handler], int] | None = None
        super().__init__(description=DESCRIPTION, version=_version(),
                         command_manager=manager, deferred_help=True)

    def build_option_parser(self, description: str | None,
                            version: str | None,
                            argparse_kwargs: dict | None = None
                            ) -> argparse.ArgumentParser:
        # No abbreviations: "--co" after the command words is the
        # command's --column, not --config-file.
        kwargs = dict(argparse_kwargs or {}, prog=config.PROG,
                      allow_abbrev=False)
        parser = super().build_option_parser(description, version, kwargs)
        parser.add_argument(
            '--config-file', action='append', dest='config_files',
            metavar='PATH',
            help=f'cinder.conf to read (repeatable, later files win; '
                 f'default {config.DEFAULT_CONFIG_FILE})')
        parser.add_argument(
            '--backend', metavar='NAME',
            help='backend section of cinder.conf (default: the only '
                 'BlackStor backend in enabled_backends); unset options '
                 'come from [backend_defaults]')
        return parser

    def configure_logging(self) -> None:
        """Warnings on stderr; -v info, -vv or --debug every request."""
        options = self.options
        if options.debug:
            level = logging.DEBUG
        else:
            level = {0: logging.WARNING, 1: logging.WARNING,
                     2: logging.INFO}.get(options.verbose_level,
                                          logging.DEBUG)
        root = logging.getLogger()
        console = logging.StreamHandler(self.stderr)
        console.setLevel(level)
        console.setFormatter(logging.Formatter(LOG_FORMAT))
        handlers: list[logging.Handler] = [console]
        if options.log_file:
            handler = logging.FileHandler(options.log_file)
            handler.setFormatter(logging.Formatter(
                self.LOG_FILE_MESSAGE_FORMAT))
            handlers.append(handler)
            level = logging.DEBUG
        self._logging = (handlers, root.level)
        for handler in handlers:
            root.addHandler(handler)
        if root.getEffectiveLevel() > level:
            root.setLevel(level)

    def close_logging(self) -> None:
        if self._logging is None:
            return
        handlers, level = self._logging
        self._logging = None
        root = logging.getLogger()
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)

    def interact(self) -> None:
        # No command words: a usage error, not cliff's interactive shell.
        self.no_command = True
        config.warn(f'a command is needed; see {config.PROG} --help')

    def run_subcommand(self, argv: list[str]) -> int:
        try:
            self.command_manager.find_command(argv)
        except ValueError:
            near = self.get_fuzzy_matches(argv[0])
            config.warn(f'{" ".join(argv)!r} is not a command'
                        + (f' (did you mean {" or ".join(near)}?)'
                           if near else '')
                        + f'; see {config.PROG} --help')
            return config.EXIT_USAGE
        return super().run_subcommand(argv)

    def run(self, argv: list[str]) -> int:
        code = super().run(argv)
        return config.EXIT_USAGE if self.no_command else code


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 done, 1 problems or failure, 2 bad usage or config."""
    manage = Manage()
    try:
        return manage.run(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:       # --help, --version or a usage error
        return _exit_code(exc.code)
    finally:
        manage.close_logging()


def _exit_code(code: Any) -> int:
    if code is None:
        return config.EXIT_OK
    return code if isinstance(code, int) else config.EXIT_USAGE
