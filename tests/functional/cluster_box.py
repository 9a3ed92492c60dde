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
"""Cluster in a box: storage nodes and hypervisors on this one machine.

Each node is a real ``blackstor-node`` agent with its own configuration,
resource directory and DRBD identity (``__DRBD_NODE__``), reached over a
real ``sshd`` of its own on a loopback port (host keys in a generated
known_hosts, one client key for the controller), or over the local
transport. The real ``drbdadm`` parses every .res; the DRBD kernel and LVM
are the stand-in of ``tests/standin`` (state and data in files, devices
through FUSE). Each node replicates over its own loopback address (a
random 127.x.y.0/24 per box, so boxes of concurrent runs do not collide).

Used by the functional tests, the e2e tests and the README demo.
"""

from __future__ import annotations

import configparser
import dataclasses
import functools
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile

import fixtures
from oslo_config import cfg

from blackstor_cinder import backend
from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import transport
from blackstor_cinder import options
from tests.functional import sshd_fixture
from tests.standin import cluster as standin

GiB = 1 << 30
VG, THINPOOL = 'blackstor', 'thinpool'
POOL = f'{VG}/{THINPOOL}'


def address_prefix() -> str:
    """A loopback /24 no other box on this machine is likely to use."""
    rng = random.SystemRandom()
    return f'127.{rng.randint(100, 199)}.{rng.randint(0, 255)}.'


def agent_command() -> str:
    """The blackstor-node script of the running interpreter's env."""
    here = pathlib.Path(sys.executable).parent / 'blackstor-node'
    found = str(here) if here.exists() else shutil.which('blackstor-node')
    if not found:
        raise RuntimeError('blackstor-node is not installed in this env '
                           '(pip install -e .)')
    return found


def missing_prerequisites() -> str | None:
    """Why the box cannot run here, or None."""
    if not shutil.which('drbdadm'):
        return 'drbdadm not found (apt install drbd-utils)'
    why = sshd_fixture.sshd_available()
    if why:
        return why
    if os.geteuid() != 0:
        return 'the cluster in a box needs root (FUSE devices, sshd)'
    return None


@dataclasses.dataclass
class BoxNode:
    name: str
    storage: bool
    address: str
    zone: str | None
    dir: pathlib.Path
    config: pathlib.Path
    resource_dir: pathlib.Path
    sshd: sshd_fixture.SSHDFixture | None = None


class ClusterInABox(fixtures.Fixture):
    """N storage nodes + M hypervisors with agents, sshd and the stand-in.

    ``transport`` is 'ssh' (one sshd per node) or 'local' (the agent as a
    subprocess with the node's environment). ``pool_size`` is the thin
    pool of every storage node, or a dict by node name. ``options``
    override the backend section's (e.g. wider minor and port ranges).
    """

    def __init__(self, storage=('stor-a', 'stor-b', 'stor-c'),
                 hypervisors=('hv-1', 'hv-2'), zones=None,
                 transport='ssh', pool_size=8 * GiB, workdir=None,
                 options=None):
        super().__init__()
        self.options = dict(options or {})
        self.storage_names = tuple(storage)
        self.hypervisor_names = tuple(hypervisors)
        self.zones = dict(zones or {})
        self.transport = transport
        self.pool_size = pool_size
        self.workdir = workdir
        self.address_prefix = address_prefix()

    # -- setup -------------------------------------------------------------

    def _setUp(self):
        why = missing_prerequisites()
        if why:
            raise RuntimeError(why)
        if self.workdir:
            self.dir = pathlib.Path(self.workdir)
            self.dir.mkdir(parents=True, exist_ok=True)
        else:
            self.dir = pathlib.Path(tempfile.mkdtemp(prefix='blackstor-box-'))
            self.addCleanup(shutil.rmtree, self.dir, True)
        self.agent = agent_command()
        self.standin = standin.Cluster(str(self.dir / 'standin'))
        self.addCleanup(self.standin.close)
        self.nodes: dict[str, BoxNode] = {}
        names = [(n, True) for n in self.storage_names] + [
            (n, False) for n in self.hypervisor_names]
        for index, (name, storage) in enumerate(names, start=1):
            self.nodes[name] = self._make_node(name, storage, index)
        if self.transport == 'ssh':
            self._start_sshds()

    def _make_node(self, name, storage, index):
        address = f'{self.address_prefix}{index}'
        self.standin.add_loopback_address(address)
        if storage:
            size = (self.pool_size.get(name, 8 * GiB)
                    if isinstance(self.pool_size, dict) else self.pool_size)
            self.standin.add_node(name, vg=VG, pool=THINPOOL, size=size)
        else:
            self.standin.add_node(name, vg=None)
        node_dir = self.dir / 'nodes' / name
        resource_dir = node_dir / 'drbd.d'
        resource_dir.mkdir(parents=True)
        drbd_conf = node_dir / 'drbd.conf'
        drbd_conf.write_text(
            'global { usage-count no; }\n'
            f'include "{resource_dir}/*.res";\n')
        config = configparser.ConfigParser()
        config['node'] = {
            'node_name': name,
            'pools': POOL if storage else '',
            'resource_dir': str(resource_dir),
            'drbd_config': str(drbd_conf),
            'device_root': self.standin.device_root(name),
            'lock_dir': str(node_dir / 'locks'),
            'state_dir': str(node_dir / 'state'),
            'attach_timeout': '30',
        }
        config_path = node_dir / 'node.conf'
        with open(config_path, 'w') as f:
            config.write(f)
        return BoxNode(name=name, storage=storage, address=address,
                       zone=self.zones.get(name), dir=node_dir,
                       config=config_path, resource_dir=resource_dir)

    def node_env(self, name: str) -> dict[str, str]:
        """The environment an agent of this node runs with."""
        env = self.standin.node_env(name, base={
            'PATH': f'{pathlib.Path(self.agent).parent}:/usr/local/sbin:'
                    '/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
            'LANG': 'C.UTF-8'})
        env['BLACKSTOR_NODE_CONFIG'] = str(self.nodes[name].config)
        return env

    def _start_sshds(self):
        self.private_key = str(sshd_fixture.keygen(self.dir / 'id_ed25519'))
        public = pathlib.Path(self.private_key + '.pub').read_text()
        self.known_hosts = str(self.dir / 'known_hosts')
        lines = []
        for node in self.nodes.values():
            env = ' '.join(f'{k}={v}' for k, v in
                           sorted(self.node_env(node.name).items()))
            node.sshd = self.useFixture(sshd_fixture.SSHDFixture(
                host_key_types=('ed25519',),
                extra_config=[f'SetEnv {env}']))
            with open(node.sshd.authorized_keys, 'a') as f:
                f.write(public)
            part = node.sshd.write_known_hosts(str(node.dir / 'kh'))
            lines.append(pathlib.Path(part).read_text())
        pathlib.Path(self.known_hosts).write_text(''.join(lines))

    # -- what the controller / Cinder sees --------------------------------

    def cinder_conf(self) -> pathlib.Path:
        """A cinder.conf with this box as backend ``blackstor-1``."""
        conf = configparser.ConfigParser(interpolation=None)
        conf['DEFAULT'] = {'enabled_backends': 'blackstor-1'}
        conf['blackstor-1'] = self.backend_options()
        path = self.dir / 'cinder.conf'
        with open(path, 'w') as f:
            conf.write(f)
        return path

    def backend_options(self, **overrides) -> dict[str, str]:
        """The backend section of cinder.conf for this box (SSH)."""
        def mapping(pairs):
            return ','.join(f'{k}:{v}' for k, v in pairs if v is not None)
        nodes = self.nodes.values()
        opts = {
            'volume_driver': 'blackstor_cinder.driver.BlackStorDriver',
            'blackstor_storage_nodes': ','.join(self.storage_names),
            'blackstor_client_nodes': ','.join(self.hypervisor_names),
            'blackstor_replication_addresses': mapping(
                (n.name, n.address) for n in nodes),
            'blackstor_node_zones': mapping(
                (n.name, n.zone) for n in nodes),
            'blackstor_pool': POOL,
            'blackstor_ssh_user': 'root',
            'blackstor_node_command': self.agent,
            'blackstor_minor_range': '1000-1999',
            'blackstor_port_range': '7000-7999',
        }
        if self.transport == 'ssh':
            opts.update({
                'blackstor_ssh_addresses': mapping(
                    (n.name, f'127.0.0.1:{n.sshd.port}') for n in nodes),
                'blackstor_ssh_private_key': self.private_key,
                'blackstor_ssh_known_hosts': self.known_hosts,
            })
        opts.update(self.options)
        opts.update(overrides)
        return {k: v for k, v in opts.items() if v != ''}

    def conf(self, **overrides) -> cfg.ConfigOpts:
        """The backend options loaded through oslo.config, as Cinder does."""
        conf = cfg.ConfigOpts()
        conf.register_opts(options.blackstor_opts)
        conf([])
        for key, value in self.backend_options(**overrides).items():
            if key == 'volume_driver':
                continue
            opt = conf._opts[key]['opt']
            conf.set_override(key, opt.type(value))
        return conf

    def transport_for(self, node):
        """SSH as configured, or a local agent with the node's env."""
        if self.transport == 'ssh' or node.name not in self.nodes:
            return self._ssh_factory(node)
        return transport.LocalTransport(node.name, [self.agent],
                                        env=self.node_env(node.name),
                                        timeout=120)

    @functools.cached_property
    def _ssh_factory(self):
        return backend.transport_factory(self.conf())

    def controller(self, **config_changes) -> ctl.Controller:
        config = backend.cluster_config(self.conf(), 20.0)
        config = dataclasses.replace(config, **config_changes)
        controller = ctl.Controller(config, self.transport_for,
                                    poll_interval=0.1)
        self.addCleanup(controller.close)
        return controller

    # -- faults -------------------------------------------------------------

    def stop_node(self, name: str) -> None:
        """The node crashes: its DRBD vanishes, every process of it dies.

        Its sshd, every connection already open to it and every agent
        behind them (``SSHDFixture.stop``): the controller finds the node
        unreachable, also on a connection it had kept open.
        """
        self.standin.stop_node(name)
        if self.nodes[name].sshd:
            self.nodes[name].sshd.stop()

    def node_processes(self, name: str) -> list[int]:
        """Pids of processes running with this node's agent environment."""
        mark = f'BLACKSTOR_NODE_CONFIG={self.nodes[name].config}'.encode()
        found = []
        for entry in os.scandir('/proc'):
            if not entry.name.isdigit():
                continue
            try:
                with open(f'/proc/{entry.name}/environ', 'rb') as f:
                    if mark in f.read().split(b'\0'):
                        found.append(int(entry.name))
            except OSError:
                continue                    # gone, or a kernel thread
        return sorted(found)

    def start_node(self, name: str) -> None:
        """The node boots: sshd back, then ``drbdadm adjust all``.

        That is what drbd.service does at boot over the node's drbd.conf.
        """
        self.standin.start_node(name)
        node = self.nodes[name]
        if node.sshd:
            node.sshd.start()
        if any(node.resource_dir.glob('*.res')):
            env = self.node_env(name)
            subprocess.run(['drbdadm', '-c', str(node.dir / 'drbd.conf'),
                            'adjust', 'all'], env=env, check=True,
                           capture_output=True, timeout=120)

    # -- checks -------------------------------------------------------------

    def run_agent(self, name: str, request: dict) -> dict:
        """One request to a node's agent, locally (for checks)."""
        proc = subprocess.run([self.agent], input=json.dumps(request),
                              capture_output=True, text=True,
                              env=self.node_env(name), timeout=120)
        reply = json.loads(proc.stdout)
        if not reply.get('ok'):
            raise AssertionError(f'{name}: {request["op"]}: {reply}')
        return reply['result']

    def inventory(self, name: str) -> dict:
        return self.run_agent(name, {'op': 'inventory'})

    def leftovers(self, nodes=None) -> dict[str, list[str]]:
        """What is still on each node: LVs, .res files, running minors.

        ``nodes``: only these (e.g. the ones running while another is down).
        """
        found = {}
        for name, node in self.nodes.items():
            if nodes is not None and name not in nodes:
                continue
            items = [f'res:{p.name}' for p in node.resource_dir.iterdir()]
            state_dir = node.dir / 'state'      # the agent's <res>.grow
            if state_dir.is_dir():
                items += [f'state:{p.name}' for p in state_dir.iterdir()]
            if node.storage:
                inv = self.inventory(name)
                items += [f'lv:{v["name"]}' for v in inv.get('volumes', [])]
                items += [f'snap:{s["name"]}'
                          for s in inv.get('snapshots', [])]
            running = self.standin.status(name) or []
            items += [f'drbd:{r["name"]}' for r in running]
            if items:
                found[name] = sorted(items)
        return found

    def lv_bytes(self, node: str, lv: str, offset: int, size: int) -> bytes:
        return self.standin.read_lv(node, VG, lv, offset, size)
