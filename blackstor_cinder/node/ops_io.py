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
"""A running resource's I/O and generations: suspend, resume, new UUID.

Also ``forget-peer``, which frees a removed peer's bitmap slot. Each
acts on the resource running here and changes no LV or .res.
"""

from __future__ import annotations

from blackstor_cinder.node import drbdstatus
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import lease as lease_mod
from blackstor_cinder.node import ops_inventory
from blackstor_cinder.node.steps import Node
from blackstor_cinder import protocol


def suspend_io(node: Node, req: dict) -> dict:
    """Suspend I/O here (with a lease); down here is no error.

    With ``report`` the reply also holds what ``status`` would say,
    read before anything is suspended (a .res that cannot be read fails
    the request with nothing suspended), and the resource's tiebreaker
    (as its .res here says) is not suspended.
    """
    resource = req['resource']
    report = (ops_inventory.status(node, {'resource': resource})
              if req.get('report') else {})
    path = lease_mod.lease_path(node.conf, resource)
    state = drbdstatus.of(node.drbd.state(resource))
    if state is None:
        lease_mod.remove(path)
        return {**report, 'resource': resource, 'running': False,
                'suspended': False, 'lease_expires_in': None}
    if _tiebreaker_here(node, report):
        # nothing done: a lease of an earlier suspend stays
        return {**report, 'resource': resource, 'running': True,
                'suspended': state.user_suspended,
                'lease_expires_in': None}
    seconds = req.get('lease')
    if seconds is None:
        # An explicit suspend without a lease is meant to last.
        lease_mod.remove(path)
    else:
        # The token is in place before I/O stops: whatever happens
        # to this agent or its reply from here on, the lease ends it.
        lease_id = lease_mod.new_id()
        lease_mod.write(path, lease_id, seconds)
        try:
            lease_mod.spawn(lease_mod.command(node.conf, resource,
                                              lease_id, seconds),
                            node.popen)
        except BaseException:
            lease_mod.remove(path)
            raise
    if not state.user_suspended:
        timeout = (seconds / (protocol.SUSPEND_STEPS + 1)
                   if seconds is not None else None)
        try:
            node.drbd.suspend_io(_minors(state), timeout)
        except AgentError as exc:
            # A suspend that timed out may yet take effect in the
            # kernel: its lease stays, to resume it.
            if exc.code != protocol.E_TIMEOUT:
                lease_mod.remove(path)
            raise
        except BaseException:
            lease_mod.remove(path)
            raise
    return {**report, 'resource': resource, 'running': True,
            'suspended': True, 'lease_expires_in': seconds}


def _tiebreaker_here(node: Node, report: dict) -> bool:
    """The reported .res makes this node the resource's tiebreaker.

    Never Primary, it has no I/O to suspend: the controller, which
    asks every storage node at once (``report``), suspends none there.
    """
    return any(host.get('name') == node.conf.node_name
               and host.get('tiebreaker') and not host.get('diskful')
               for host in (report.get('definition') or {}).get('hosts')
               or ())


def resume_io(node: Node, req: dict) -> dict:
    return resume(node, req['resource'])


def resume(node: Node, resource: str) -> dict:
    """Cancel any lease and resume; already so (or down) is success."""
    cancelled = lease_mod.remove(lease_mod.lease_path(node.conf, resource))
    state = drbdstatus.of(node.drbd.state(resource))
    if state is None:
        return {'resource': resource, 'running': False,
                'suspended': False, 'lease_cancelled': cancelled}
    resumed = state.user_suspended
    if resumed:
        node.drbd.resume_io(_minors(state))
    return {'resource': resource, 'running': True, 'suspended': False,
            'resumed': resumed, 'lease_cancelled': cancelled}


def new_current_uuid(node: Node, req: dict) -> dict:
    resource = req['resource']
    _require_up(node, resource)
    clear = req.get('clear_bitmap', True)
    node.drbd.new_current_uuid(resource, clear)
    return {'resource': resource, 'clear_bitmap': clear}


def forget_peer(node: Node, req: dict) -> dict:
    resource, node_id = req['resource'], req['node_id']
    _require_up(node, resource)
    definition = node.store.read_definition(resource)
    for host in (definition or {}).get('hosts') or ():
        if host.get('node_id') == node_id:
            raise AgentError(
                protocol.E_CONFLICT,
                f'node_id: {node_id} is {host.get("name")}, still a '
                f'host of {resource} here; remove it from the .res '
                'first', 'node_id')
    node.drbd.forget_peer(resource, node_id)
    return {'resource': resource, 'node_id': node_id}


def _minors(state: drbdstatus.ResourceState) -> tuple[int, ...]:
    """The minors of the resource's devices (drbdsetup acts on minors)."""
    minors = state.minors or ((state.minor,) if state.minor is not None
                              else ())
    if not minors:
        raise AgentError(protocol.E_FAILED,
                         f'resource: {state.name} shows no device minor '
                         'in drbdsetup status', 'resource')
    return minors


def _require_up(node: Node, resource: str) -> None:
    if node.drbd.state(resource) is None:
        raise AgentError(protocol.E_NOT_FOUND,
                         f'resource: {resource} is not up on this node',
                         'resource')


OPS = {
    'suspend-io': (suspend_io, 'suspend I/O of a resource (for a consistent '
                               'snapshot; lease: seconds after which it '
                               'resumes by itself)'),
    'resume-io': (resume_io, 'resume I/O of a resource (and cancel its '
                             'lease)'),
    'new-current-uuid': (new_current_uuid,
                         'new current UUID (clear_bitmap: skip the '
                         'initial sync of thin replicas)'),
    'forget-peer': (forget_peer, 'free the bitmap slot of a peer removed '
                                 'from the resource'),
}
