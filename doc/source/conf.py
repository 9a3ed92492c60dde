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
"""Sphinx configuration of the BlackStor for Cinder documentation."""

import importlib.metadata
import importlib.util

project = 'BlackStor for Cinder'
copyright = '2026, BlackStor developers'
author = 'BlackStor developers'

extensions = [
    # show-options: the configuration reference, generated from the
    # option definitions through the oslo.config.opts entry points.
    'oslo_config.sphinxext',
]

master_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'native'
# Every :ref: and term must resolve (the build runs with -W).
nitpicky = False

# openstackdocstheme when it is installed (doc-requirements.txt), else
# Sphinx's own theme: the text is the same.
if importlib.util.find_spec('openstackdocstheme'):
    extensions.append('openstackdocstheme')
    html_theme = 'openstackdocs'
    openstackdocs_repo_name = 'blackstor/blackstor-cinder'
    openstackdocs_bug_project = 'blackstor-cinder'
    openstackdocs_bug_tag = 'doc'
    openstackdocs_auto_name = False
    openstackdocs_use_storyboard = False
    html_theme_options = {'display_global_toc_section': True}
else:
    html_theme = 'alabaster'

html_title = project
html_static_path = []


def _escape_stars(text):
    """Escape ``*`` outside ``literals`` in an option's help.

    Option help is plain text in the sample files, and show-options parses
    it as reStructuredText, where a lone ``*`` (as in ``drbd.d/*.res``)
    starts an emphasis.
    """
    parts = text.split('``')
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace('\\*', '*').replace('*', '\\*')
    return '``'.join(parts)


def _plain_text_option_help():
    for entry in importlib.metadata.entry_points(group='oslo.config.opts'):
        if not entry.name.startswith('blackstor_cinder'):
            continue
        for _group, opts in entry.load()():
            for opt in opts:
                if opt.help:
                    opt.help = _escape_stars(opt.help)


_plain_text_option_help()
