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
"""The backend section of cinder.conf, and how a command fails."""

from __future__ import annotations

import sys
from typing import Any, Sequence

from oslo_config import cfg

from blackstor_cinder import backend
from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import errors
from blackstor_cinder import options

PROG = 'blackstor-manage'
DEFAULT_CONFIG_FILE = '/etc/cinder/cinder.conf'
SHARED_GROUP = 'backend_defaults'
#: Over-subscription does not matter to what this tool shows.
_OVER_SUBSCRIPTION = 20.0

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A failure reported as one line on stderr, without a traceback."""

    exit_code = EXIT_PROBLEMS


class ConfigError(CommandError):
    exit_code = EXIT_USAGE


class BackendConf:
    """The ``blackstor_*`` options of one backend section.

    As in Cinder, each option comes from the backend section when it is set
    there and from ``[backend_defaults]`` (or the option's default)
    otherwise.
    """

    def __init__(self, conf: cfg.ConfigOpts, group: str) -> None:
        self.conf = conf
        self.group = group

    def __getattr__(self, name: str) -> Any:
        if name.startswith('_') or name in ('conf', 'group'):
            raise AttributeError(name)
        value = None
        if self.group != SHARED_GROUP:
            value = getattr(getattr(self.conf, self.group), name)
        if value is None:
            value = getattr(getattr(self.conf, SHARED_GROUP), name)
        return value


def load_backend(config_files: Sequence[str],
                 backend_name: str | None = None) -> BackendConf:
    """Parse the files; the options of the named (or the only) backend."""
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.ListOpt('enabled_backends', default=[]))
    try:
        conf(args=[], default_config_files=list(config_files))
        sections = conf.list_all_sections()
        if backend_name is None:
            backend_name = _only_backend(conf, sections)
        if backend_name not in sections:
            raise ConfigError(
                f'no [{backend_name}] section in '
                f'{", ".join(config_files)}; name the backend section with '
                f'--backend')
        if backend_name != SHARED_GROUP:
            driver = _volume_driver(conf, backend_name)
            if driver and 'blackstor' not in driver.lower():
                raise ConfigError(f'[{backend_name}] is not a BlackStor '
                                  f'backend (volume_driver = {driver})')
        conf.register_opts(options.blackstor_opts, group=SHARED_GROUP)
        if backend_name != SHARED_GROUP:
            conf.register_opts(options.blackstor_opts, group=backend_name)
            for opt in options.blackstor_opts:
                conf.set_default(opt.name, None, group=backend_name)
    except cfg.Error as exc:
        raise ConfigError(f'cannot read the configuration: {exc}') from None
    return BackendConf(conf, backend_name)


def _volume_driver(conf: cfg.ConfigOpts, group: str) -> str | None:
    try:
        conf.register_opt(cfg.StrOpt('volume_driver'), group=group)
    except cfg.DuplicateOptError:
        pass
    return getattr(conf, group).volume_driver


def _only_backend(conf: cfg.ConfigOpts, sections: list[str]) -> str:
    ours = [name for name in conf.enabled_backends if name in sections
            and 'blackstor' in (_volume_driver(conf, name) or '').lower()]
    if len(ours) == 1:
        return ours[0]
    found = (f'BlackStor backends in enabled_backends: {", ".join(ours)}'
             if ours else 'no BlackStor backend in enabled_backends')
    raise ConfigError(f'{found}; name the backend section with --backend')


def make_controller(conf: BackendConf) -> ctl.Controller:
    try:
        config = backend.cluster_config(conf, _OVER_SUBSCRIPTION)
        factory = backend.transport_factory(conf)
    except (errors.ClusterError, cfg.Error, ValueError) as exc:
        raise ConfigError(f'backend [{conf.group}]: {exc}') from None
    return ctl.Controller(config, factory)


def warn(message: str) -> None:
    """One line on stderr, named after the program."""
    print(f'{PROG}: {message}', file=sys.stderr)
