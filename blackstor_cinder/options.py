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
"""Options of the Cinder driver (backend section, ``blackstor_`` prefix).

Registered in ``backend_defaults`` the Cinder way so that a backend section
can override each of them. The node agent has its own options
(``blackstor_cinder.node.config``).
"""

from oslo_config import cfg
from oslo_config import types

node_opts = [
    cfg.ListOpt('blackstor_storage_nodes', default=[],
                help='Storage nodes holding replicas, by their host name '
                     'as DRBD sees it (uname -n).'),
    cfg.ListOpt('blackstor_client_nodes', default=[],
                help='Hypervisors and cinder-volume hosts that attach '
                     'volumes as diskless DRBD clients, by host name. Hosts '
                     'not listed are accepted at attach time when '
                     'blackstor_allow_unlisted_clients is true.'),
    cfg.DictOpt('blackstor_ssh_addresses', default={},
                help='Where to reach each node\'s blackstor-node agent: '
                     'name:address or name:address:port (IPv6 as '
                     '[addr]:port), or name:local to run the agent on this '
                     'host without SSH. Default: the node name on '
                     'blackstor_ssh_port.'),
    cfg.DictOpt('blackstor_replication_addresses', default={},
                help='IP address DRBD replicates over, per node '
                     '(name:address). Default: the SSH address if it is an '
                     'IP literal.'),
    cfg.DictOpt('blackstor_node_zones', default={},
                help='Failure domain of each storage node (name:zone); '
                     'volume types with blackstor:zones=spread put '
                     'replicas in distinct zones.'),
    cfg.BoolOpt('blackstor_allow_unlisted_clients', default=True,
                help='Accept attach requests from hosts that are not in '
                     'blackstor_client_nodes, reached over SSH at the '
                     'connector\'s host name or IP address.'),
]

ssh_opts = [
    cfg.StrOpt('blackstor_ssh_user', default='blackstor',
               help='SSH account on the nodes; it may run only the '
                    'blackstor-node command (see etc/ for the sudoers '
                    'rule).'),
    cfg.StrOpt('blackstor_ssh_private_key',
               default='/etc/cinder/blackstor_id_ed25519',
               help='Private key for the SSH account.'),
    cfg.StrOpt('blackstor_ssh_known_hosts',
               default='/etc/cinder/blackstor_known_hosts',
               help='known_hosts file with the host key of every node. '
                    'Unknown or changed host keys are refused.'),
    cfg.PortOpt('blackstor_ssh_port', default=22,
                help='Default SSH port of the nodes.'),
    cfg.FloatOpt('blackstor_ssh_connect_timeout', default=10.0, min=1,
                 help='Seconds to wait for an SSH connection to a node.'),
    cfg.FloatOpt('blackstor_node_timeout', default=120.0, min=1,
                 help='Seconds one agent request may take on one node.'),
    cfg.StrOpt('blackstor_node_command', default='sudo -n blackstor-node',
               help='Command that runs the agent on a node, as the SSH '
                    'account (space separated words, no shell syntax).'),
    cfg.StrOpt('blackstor_local_node_command',
               default='sudo -n blackstor-node',
               help='Command that runs the agent on this host for nodes '
                    'whose SSH address is "local" (space separated words, '
                    'no shell syntax).'),
]

storage_opts = [
    cfg.StrOpt('blackstor_pool', default='blackstor/thinpool',
               help='LVM thin pool holding the replicas on every storage '
                    'node, as <volume group>/<thin pool>.'),
    cfg.IntOpt('blackstor_replicas', default=3, min=1, max=8,
               help='Default number of diskful replicas of a volume '
                    '(volume type extra spec blackstor:replicas overrides '
                    'it).'),
    cfg.StrOpt('blackstor_zone_policy', default='any',
               choices=['any', 'spread'],
               help='Default replica placement across zones (extra spec '
                    'blackstor:zones overrides it).'),
    cfg.Opt('blackstor_minor_range', default='1000-19999',
            type=types.String(regex=r'^\d+-\d+$'),
            help='DRBD minor numbers the driver may use, low-high, within '
                 '0-1048575. A volume has the same minor on every node, '
                 'its clients included. BlackStor backends whose volumes '
                 'may meet on one host (a shared hypervisor, or both '
                 'accepting unlisted clients) need disjoint ranges: '
                 'start-up refuses ranges that overlap another BlackStor '
                 'backend of the same cinder.conf. A minor used on a '
                 'configured client is not handed out.'),
    cfg.Opt('blackstor_port_range', default='7000-7999',
            type=types.String(regex=r'^\d+-\d+$'),
            help='TCP ports DRBD may listen on, low-high, within '
                 '1024-65535. A volume has the same port on every node, '
                 'its clients included; open this range between nodes. '
                 'Each volume takes one port, so the range caps the '
                 'number of volumes (the default: 1000); stats report '
                 'what is left (blackstor_ports_free, '
                 'blackstor_minors_free) and a create is refused once '
                 'either range is used up. Backends that may meet on one '
                 'host need disjoint ranges, as for '
                 'blackstor_minor_range.'),
    cfg.IntOpt('blackstor_max_peers', default=7, min=1, max=31,
               help='Bitmap slots created in DRBD metadata (create-md '
                    '--max-peers): the most peers (replicas plus clients '
                    'minus one) a volume can ever have.'),
    cfg.BoolOpt('blackstor_auto_repair', default=True,
                help='At each stats update (periodic_interval), push the '
                     '.res most replicas of a volume hold to a replica '
                     'whose .res differs (it was unreachable while an '
                     'attach, detach or extend changed it). Only with a '
                     'majority of the replicas and while no operation '
                     'holds the volume\'s lock. Also remove the temporary '
                     'clone-* snapshot a clone left on a storage node '
                     'unreachable at its end, once no clone holds it.'),
]

drbd_opts = [
    cfg.StrOpt('blackstor_quorum', default='majority',
               choices=['off', 'majority', 'all'],
               help='DRBD quorum policy of every resource.'),
    cfg.StrOpt('blackstor_on_no_quorum', default='io-error',
               choices=['io-error', 'suspend-io'],
               help='What DRBD does to I/O when a node loses quorum.'),
    cfg.BoolOpt('blackstor_multiattach', default=False,
                help='Report multiattach support, so that volume types '
                     'with multiattach="<is> True" are placed on this '
                     'backend and a volume can be attached to several '
                     'instances at once. Only cluster file systems (or '
                     'other software) that never write overlapping blocks '
                     'from two hosts at once are safe on such volumes: '
                     'DRBD checks a write from a peer for conflicts only '
                     'against writes of its own node\'s applications '
                     '(CONFLICT_FLAG_APPLICATION_ONLY in drbd_receiver.c), '
                     'so overlapping writes from two diskless clients can '
                     'reach the replicas in different orders and leave '
                     'them holding different data, silently. Live '
                     'migration (two attachments of one instance for a '
                     'moment) works either way.'),
    cfg.DictOpt('blackstor_net_options', default={},
                help='Extra DRBD net options, option:value (for example '
                     'max-buffers:8000,sndbuf-size:0). verify-alg is '
                     'crc32c unless set here (drbdadm verify needs one).'),
    cfg.DictOpt('blackstor_disk_options', default={},
                help='Extra DRBD disk options, option:value (for example '
                     'c-max-rate:750M,al-extents:6007).'),
    cfg.FloatOpt('blackstor_attach_timeout', default=60.0, min=1,
                 help='Seconds an attach waits for the client device to '
                      'exist and reach an UpToDate peer with quorum.'),
    cfg.FloatOpt('blackstor_io_suspend_timeout', default=15.0, min=1,
                 max=150,
                 help='Seconds each step of a snapshot may take while I/O '
                      'of the volume is suspended (suspend-io, the thin '
                      'snapshots, resume-io). Every node resumes I/O by '
                      'itself 4 times this long after it suspended it, '
                      'even when cinder-volume is gone; a snapshot whose '
                      'steps took longer than that is discarded.'),
]

heal_opts = [
    cfg.IntOpt('blackstor_heal_after', default=0, min=0,
               help='Seconds a storage node may be unreachable before the '
                    'stats update (periodic_interval) heals it as lost: '
                    'every volume with a replica there gets a new replica '
                    'on another storage node (zones and room respected), '
                    'synced in full from the others, and the lost node '
                    'leaves every .res, so its return never brings its '
                    'old data back (its leftover is removed by the '
                    'periodic repair). 0 (the default): never; heal with '
                    '"blackstor-manage node lost NODE". Set it well above '
                    'the time a node takes to reboot.'),
    cfg.IntOpt('blackstor_heal_parallel', default=2, min=1,
               help='Resyncs a heal or an evacuation runs at once on one '
                    'storage node (as the new replica\'s node or one it '
                    'syncs from), so that the guests keep their I/O.'),
    cfg.FloatOpt('blackstor_heal_sync_timeout', default=3600.0, min=1,
                 help='Seconds a heal, an evacuation or a retype waits '
                      'for one new replica to become UpToDate. A sync that '
                      'takes longer goes on; running the heal (or the '
                      'retype) again waits for it.'),
]

blackstor_opts = (node_opts + ssh_opts + storage_opts + drbd_opts
                  + heal_opts)


def list_opts():
    """Options for oslo-config-generator, in Cinder's backend section."""
    return [('backend_defaults', blackstor_opts)]
