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
"""What every command shares: options, exit codes, cells, cliff glue.

A command is a cliff ``Lister`` (rows) or ``ShowOne`` (one record) and
so takes every cliff output option: ``-f table|json|yaml|csv|value``,
``-c COLUMN`` (repeatable), ``--sort-column`` and the formatters' own.
Values stay data for json and yaml and become aligned text, nested dicts
indented, in a table (:class:`Cell`).
"""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from cliff import columns
from cliff import lister
from cliff import show
from oslo_config import cfg

from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder.manage import config
from blackstor_cinder.manage import survey

#: What take_action of a list command gives: (headings, rows).
Table = tuple[Sequence[str], list[Sequence[Any]]]


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return '{' + ', '.join(f'{k}: {_flat(v)}'
                               for k, v in value.items()) + '}'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_flat(v) for v in value) + ']'
    return text(value)


def _block(value: dict, indent: str = '') -> list[str]:
    """A dict as lines, nested dicts indented under their key."""
    lines = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f'{indent}{key}:')
            lines += _block(item, indent + '  ')
        else:
            lines.append(f'{indent}{key}={_flat(item)}')
    return lines


def text(value: Any) -> str:
    """How a value reads in a table cell (may be several lines)."""
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.2f}'
    if isinstance(value, dict):
        return '\n'.join(_block(value))
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, (dict, list, tuple)) for v in value):
            return '\n'.join(_flat(v) for v in value)
        if any(isinstance(v, str) and len(v) > 40 for v in value):
            return '\n'.join(text(v) for v in value)
        return ', '.join(text(v) for v in value)
    return str(value)


class Cell(columns.FormattableColumn):
    """A value: itself in json, yaml, csv, value; :func:`text` in a table."""

    def human_readable(self) -> str:
        return text(self._value)

    def __lt__(self, other: object) -> bool:
        # For --sort-column: as cliff sorts plain values (None last), and
        # values of different kinds by their text rather than not at all.
        if not isinstance(other, Cell):
            return NotImplemented
        mine, theirs = self._value, other._value
        if mine is None or theirs is None:
            return mine is not None and theirs is None
        try:
            return bool(mine < theirs)
        except TypeError:
            return text(mine) < text(theirs)


def _columns(heads: Sequence[str], wanted: Sequence[str] | None
             ) -> list[str] | None:
    """The headings ``-c`` names (None: every one).

    As cliff matches them, case and spaces or underscores do not matter;
    a name no heading has is refused (cliff ignores it when another one
    matches).
    """
    known = {_normal(h): h for h in heads}
    picked = []
    for column in wanted or ():
        if _normal(column) not in known:
            raise config.ConfigError(f'no column {column!r}; columns: '
                                     f'{", ".join(heads)}')
        picked.append(known[_normal(column)])
    return picked or None


def _normal(column: str) -> str:
    return column.lower().strip().replace(' ', '_')


class _Command:
    """Runs a command on the backend's controller; failures to exit codes."""

    app: Any
    #: Set by collect when the command found problems (exit 1).
    exit_code: int = config.EXIT_OK

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)  # type: ignore[misc]
        # An empty list still shows its headings.
        parser.set_defaults(print_empty=True)
        return parser

    def run(self, parsed_args: argparse.Namespace) -> int:
        try:
            super().run(parsed_args)  # type: ignore[misc]
        except config.CommandError as exc:
            config.warn(f'error: {survey.clean(exc)}')
            return exc.exit_code
        except (errors.ClusterError, tp.NodeError, cfg.Error) as exc:
            config.warn(f'error: {survey.clean(exc)}')
            return config.EXIT_PROBLEMS
        except Exception as exc:
            if self.app.options.debug:
                raise
            config.warn(f'unexpected error: {type(exc).__name__}: '
                        f'{survey.clean(exc)} (--debug shows the traceback)')
            return config.EXIT_PROBLEMS
        return self.exit_code

    def _on_controller(self, parsed_args: argparse.Namespace) -> Any:
        options = self.app.options
        conf = config.load_backend(
            options.config_files or [config.DEFAULT_CONFIG_FILE],
            options.backend)
        controller = config.make_controller(conf)
        parsed_args.conf = conf
        try:
            result, self.exit_code = self.collect(controller, parsed_args)
        finally:
            controller.close()
        return result

    def collect(self, controller: ctl.Controller, args: argparse.Namespace
                ) -> tuple[Any, int]:
        """(what to show, exit code) of the command."""
        raise NotImplementedError


class Lister(_Command, lister.Lister):
    """A command that shows rows; ``collect`` gives (Table, exit code)."""

    def take_action(self, parsed_args: argparse.Namespace) -> Table:
        heads, rows = self._on_controller(parsed_args)
        parsed_args.columns = _columns(heads, parsed_args.columns)
        return heads, [[Cell(v) for v in row] for row in rows]


class ShowOne(_Command, show.ShowOne):
    """A command that shows one record; ``collect`` gives (dict, code)."""

    def take_action(self, parsed_args: argparse.Namespace
                    ) -> tuple[Sequence[str], list[Cell]]:
        shown = self._on_controller(parsed_args)
        parsed_args.columns = _columns(list(shown), parsed_args.columns)
        return list(shown), [Cell(v) for v in shown.values()]
