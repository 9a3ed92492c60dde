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
"""Configuration of the node agent (``[node]`` in /etc/blackstor/node.conf).

The file is optional: with none, the agent touches no pool (every
pool-bound operation is refused) and uses the standard DRBD paths, which
is what a hypervisor that only attaches volumes needs.
"""

from __future__ import annotations

import dataclasses
import os

from oslo_config import cfg

from blackstor_cinder import protocol

GROUP = 'node'
DEFAULT_CONFIG_FILE = '/etc/blackstor/node.conf'
CONFIG_ENV = 'BLACKSTOR_NODE_CONFIG'

node_opts = [
    cfg.ListOpt('pools', default=[],
                help='Thin pools this node may use, as "<volume group>/'
                     '<thin pool>". LVs are created, changed and removed '
                     'only in these pools.'),
    cfg.StrOpt('resource_dir', default='/etc/drbd.d',
               help='Directory of the DRBD resource files (<name>.res). '
                    'drbd_config must include <resource_dir>/*.res.'),
    cfg.StrOpt('drbd_config', default='/etc/drbd.conf',
               help='The DRBD configuration file drbdadm reads (-c).'),
    cfg.StrOpt('node_name',
               help='The name of this node in "on" sections of .res files. '
                    'Default: $__DRBD_NODE__ if set, else uname -n.'),
    cfg.StrOpt('root_helper', default='',
               help='Prefix for commands that need root (e.g. "sudo"). '
                    'Empty: the agent itself runs as root (sudo '
                    'blackstor-node).'),
    cfg.FloatOpt('attach_timeout', default=60.0, min=1, max=3600,
                 help='Seconds an attach waits for the DRBD device to '
                      'become usable, unless the request says otherwise.'),
    cfg.FloatOpt('command_timeout', default=300.0, min=1,
                 help='Seconds after which a command (lvcreate, drbdadm '
                      '...) is killed and the operation fails.'),
    cfg.StrOpt('device_root', default='/dev',
               help='Directory holding the DRBD device nodes '
                    '(drbd/by-res/<resource>/0). LVs are always '
                    '/dev/<vg>/<lv>, as the .res files name them.'),
    cfg.IntOpt('max_peers', default=7, min=protocol.MAX_PEERS_MIN,
               max=protocol.MAX_PEERS_MAX,
               help='Peer slots of new DRBD metadata (create-md '
                    '--max-peers) when a create request does not say.'),
    cfg.StrOpt('lock_dir', default='/run/lock/blackstor-node',
               help='Directory of the per-resource lock files that keep '
                    'two agents from working on one resource at once. '
                    'Empty: no locking.'),
    cfg.StrOpt('state_dir', default='/var/lib/blackstor-node',
               help='Directory of what the agent must remember across a '
                    'crash or power cut: the old LV size and any pending '
                    'zeroing of an extend (<resource>.grow). Keep it on '
                    'a persistent file system. Empty: lock_dir.'),
    cfg.FloatOpt('lock_timeout', default=120.0, min=0,
                 help='Seconds to wait for a resource lock held by another '
                      'agent before answering "busy".'),
]


def list_opts() -> list:
    """For oslo-config-generator (namespace blackstor_cinder.node)."""
    return [(GROUP, node_opts)]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(node_opts, group=GROUP)


@dataclasses.dataclass
class NodeConfig:
    """The agent's settings as plain data."""
    pools: list[str] = dataclasses.field(default_factory=list)
    resource_dir: str = '/etc/drbd.d'
    drbd_config: str = '/etc/drbd.conf'
    node_name: str = ''
    root_helper: str = ''
    attach_timeout: float = 60.0
    command_timeout: float = 300.0
    device_root: str = '/dev'
    max_peers: int = 7
    lock_dir: str = ''
    lock_timeout: float = 120.0
    state_dir: str = ''

    def __post_init__(self) -> None:
        if not self.node_name:
            self.node_name = default_node_name()
        for pool in self.pools:
            protocol.check_pool('pools', pool)
        protocol.check_host('node_name', self.node_name)
        protocol.check_max_peers('max_peers', self.max_peers)

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> NodeConfig:
        group = conf[GROUP]
        values = {opt.dest: group[opt.dest] for opt in node_opts}
        for name in ('node_name', 'root_helper', 'lock_dir', 'state_dir'):
            values[name] = values[name] or ''
        return cls(**values)


def default_node_name() -> str:
    return os.environ.get('__DRBD_NODE__') or os.uname().nodename


def config_files(explicit: list[str] | None) -> tuple[list[str], bool]:
    """The files to read and whether they must exist.

    --config-file wins, then $BLACKSTOR_NODE_CONFIG; the default file is
    read only when it exists.
    """
    if explicit:
        return list(explicit), True
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return [from_env], True
    if os.path.exists(DEFAULT_CONFIG_FILE):
        return [DEFAULT_CONFIG_FILE], True
    return [], False


def load(files: list[str]) -> NodeConfig:
    """Read ``files`` (oslo.config syntax) into a NodeConfig.

    Raises ValueError (a wrong value), or OSError (a file that is missing
    or unreadable).
    """
    for name in files:
        with open(name):
            pass
    conf = cfg.ConfigOpts()
    register_opts(conf)
    try:
        conf(args=[], project='blackstor', default_config_files=files,
             use_env=False)
        return NodeConfig.from_conf(conf)
    except (cfg.Error, protocol.ProtocolError) as e:
        raise ValueError(str(e)) from None
