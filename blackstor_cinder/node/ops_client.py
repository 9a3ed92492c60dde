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
"""``attach`` and ``detach``: this node as a diskless client (hypervisor).

The diskless client of :mod:`.client`, the same one the os-brick
connector uses, under the agent's per-resource lock.
"""

from __future__ import annotations

from blackstor_cinder.node import client as client_mod
from blackstor_cinder.node.steps import Node


def attach(node: Node, req: dict) -> dict:
    resource = req['resource']
    node.check_replica_kept(resource,
                            node.host_entry(resource, req['spec']))
    path = _client(node, req.get('timeout')).connect(
        resource, node.render(resource, req['spec']), req['secret'],
        req.get('device_path'))
    return {'resource': resource, 'device_path': path}


def detach(node: Node, req: dict) -> dict:
    resource = req['resource']
    _client(node, None).disconnect(resource, force=req.get('force', False))
    return {'resource': resource}


def _client(node: Node, timeout: float | None) -> client_mod.DisklessClient:
    # The agent's own per-resource lock is held around every request.
    return client_mod.DisklessClient(
        node.run.execute, node.conf.root_helper,
        resource_dir=node.conf.resource_dir,
        drbd_config=node.conf.drbd_config,
        node_name=node.conf.node_name,
        device_root=node.conf.device_root,
        attach_timeout=timeout or node.conf.attach_timeout)


OPS = {
    'attach': (attach, 'bring a diskless client up (hypervisor side) -> '
                       'device_path'),
    'detach': (detach, 'take a diskless client down (hypervisor side)'),
}
