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

"""Serve an OpenStack WSGI application with cheroot, as a foreground process.

Keystone's WSGI entry (``keystone.server.wsgi.initialize_public_application``)
parses ``sys.argv`` through oslo.config and finds its configuration through
``OS_KEYSTONE_CONFIG_FILES``; Cinder's (``cinder.wsgi.wsgi``) parses
``sys.argv`` too. This wrapper takes its own options, then hands the
application a clean ``sys.argv`` carrying only ``--config-file``.

cheroot is a pure-Python, multithreaded HTTP/1.1 WSGI server (CherryPy's):
one process with a thread pool, so there is one pid to stop and no
pre-fork master/worker pair to reap, and it needs no C extension.

Usage::

    python wsgi_server.py --app keystone --config-file K.conf \\
        --host 127.0.0.1 --port 5000 [--threads 16]
"""

import argparse
import os
import sys


def _keystone_app(config_file):
    os.environ['OS_KEYSTONE_CONFIG_FILES'] = config_file
    sys.argv = [sys.argv[0]]
    from keystone.server import wsgi
    return wsgi.initialize_public_application()


def _cinder_app(config_file):
    sys.argv = [sys.argv[0], '--config-file', config_file]
    from cinder.wsgi import wsgi
    return wsgi.initialize_application()


APPS = {
    'keystone': _keystone_app,
    'cinder': _cinder_app,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--app', choices=sorted(APPS), required=True)
    parser.add_argument('--config-file', required=True)
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--threads', type=int, default=16)
    args = parser.parse_args(argv)

    application = APPS[args.app](args.config_file)

    from cheroot import wsgi as cheroot_wsgi
    server = cheroot_wsgi.Server(
        (args.host, args.port), application, numthreads=args.threads,
        server_name=args.app, shutdown_timeout=2)

    # SIGTERM keeps its default action (the process ends at once: the
    # application keeps no state outside its database); Ctrl-C raises
    # KeyboardInterrupt, which cheroot turns into a clean stop.
    server.start()


if __name__ == '__main__':
    main()
