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
"""A real agent on stand-in nodes: real commands, real processes.

The agent runs in-process with its real executor; the stand-in's
``drbdsetup``/``drbdmeta``/LVM executables come first on ``PATH`` and the
real ``drbdadm`` parses every .res. Processes the agent starts (the
suspend lease) inherit this environment. No FUSE, no root needed.
"""

import pathlib
import shutil

import fixtures

from blackstor_cinder.node import agent
from blackstor_cinder.node import config
from tests.standin import cluster
from tests.standin import state
from tests.unit.node import samples

VG, THIN = 'vg0', 'thin'
POOL = f'{VG}/{THIN}'
SECRET = 'Secret_0123456789abcdef'


def missing() -> str | None:
    if not shutil.which('drbdadm'):
        return 'drbdadm not found (apt install drbd-utils)'
    return None


class StandinNodes(fixtures.Fixture):
    """Stand-in nodes and a real agent for each (``agents[name]``)."""

    def __init__(self, names=('nodea', 'nodeb'), size=1 << 30):
        super().__init__()
        self.names = names
        self.size = size

    def _setUp(self):
        self.dir = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.standin = cluster.Cluster(str(self.dir / 'standin'), fuse=False)
        self.addCleanup(self.standin.close)
        env = self.standin.node_env(self.names[0])
        for key in ('PATH', state.ENV_DIR):
            self.useFixture(fixtures.EnvironmentVariable(key, env[key]))
        self.agents = {}
        for name in self.names:
            self.standin.add_node(name, vg=VG, pool=THIN, size=self.size)
            node_dir = self.dir / name
            res_dir = node_dir / 'drbd.d'
            res_dir.mkdir(parents=True)
            conf_file = node_dir / 'drbd.conf'
            conf_file.write_text('global { disable-ip-verification; }\n'
                                 f'include "{res_dir}/*.res";\n')
            conf = config.NodeConfig(
                pools=[POOL], resource_dir=str(res_dir),
                drbd_config=str(conf_file), node_name=name,
                lock_dir=str(node_dir / 'locks'), command_timeout=60)
            self.agents[name] = agent.Agent(conf)

    def call(self, name, op, **fields):
        """One request to ``name``'s agent, as that node."""
        with fixtures.EnvironmentVariable(state.ENV_NODE, name), \
                fixtures.EnvironmentVariable('__DRBD_NODE__', name):
            reply, _ = self.agents[name].handle(dict(op=op, **fields))
        return reply

    def ok(self, name, op, **fields):
        reply = self.call(name, op, **fields)
        if not reply['ok']:
            raise AssertionError(f'{name} {op}: {reply}')
        return reply['result']

    def status(self, name, resource):
        """The stand-in's status --json entry; None when it is down."""
        try:
            return (self.standin.status(name, resource) or [None])[0]
        except OSError:
            return None

    def spec(self, minor=1000, port=7000, size=None, hosts=None,
             **changes):
        """A ``spec`` over the nodes (all diskful unless ``hosts`` says).

        ``hosts``: [(name, node_id, address, volume group or None)].
        """
        hosts = hosts or [(n, i, f'127.0.0.{i + 1}', VG)
                          for i, n in enumerate(self.names)]
        return samples.spec(minor, port, hosts, size, **changes)

    def res_file(self, name, resource):
        return pathlib.Path(self.agents[name].store.path(resource)
                            ).read_text()

    def create(self, resource='r0', size=64 << 20, nodes=None,
               spec_size=None, **extra):
        """create on ``nodes`` (default all), then the initial UUID."""
        nodes = nodes or self.names
        results = {}
        for name in nodes:
            results[name] = self.ok(
                name, 'create', resource=resource, pool=POOL, size=size,
                spec=self.spec(size=spec_size, **extra),
                secret=SECRET)
        self.ok(nodes[0], 'new-current-uuid', resource=resource)
        return results
