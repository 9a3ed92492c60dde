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
"""Sphinx configuration of the release notes (built by reno)."""

import importlib.util

project = 'BlackStor for Cinder Release Notes'
copyright = '2026, BlackStor developers'
author = 'BlackStor developers'

extensions = ['reno.sphinxext']

master_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'native'

if importlib.util.find_spec('openstackdocstheme'):
    extensions.append('openstackdocstheme')
    html_theme = 'openstackdocs'
    openstackdocs_repo_name = 'blackstor/blackstor-cinder'
    openstackdocs_bug_project = 'blackstor-cinder'
    openstackdocs_bug_tag = 'releasenotes'
    openstackdocs_auto_name = False
    openstackdocs_use_storyboard = False
else:
    html_theme = 'alabaster'

html_title = project
html_static_path = []
