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
"""Image copies through Cinder's own local attach, on the cluster in a box.

``BlackStorDriver`` leaves copy_image_to_volume / copy_volume_to_image to
Cinder's ``BaseVD``: it asks os-brick for this host's connector properties,
calls our ``initialize_connection`` with them (push attach: the controller
makes this host a diskless DRBD client through its ``blackstor-node``),
opens the returned 'local' device path with os-brick's ``LocalConnector``,
copies with ``image_utils`` (real ``qemu-img``) and calls
``terminate_connection``. Here all of that runs for real: the driver is
built from the box's backend options with its real SSH transports, and this
host is one of the box's hypervisors under the name os-brick reports
(``socket.gethostname()``), reached over its own sshd like the others. Only
Glance is a hand-written fake.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
import unittest
import uuid

from cinder.image import image_utils
from cinder import objects
from cinder.tests.unit import fake_volume
import fixtures
from oslo_config import cfg
from oslotest import base

objects.register_all()

from blackstor_cinder import driver  # noqa: E402
from blackstor_cinder import protocol  # noqa: E402
from tests.functional import cluster_box  # noqa: E402
from tests.functional import driver_fixture  # noqa: E402

LOG_FORMAT = '%(asctime)s %(levelname)s [%(name)s] %(message)s'
MiB = 1 << 20
BACKEND = 'blackstor-image-copy'
STORAGE = ('stor-a', 'stor-b', 'stor-c')
HOST = socket.gethostname()     # connector['host'] as os-brick reports it


class FakeImageService:
    """What image_utils calls on Glance: show, download, update.

    ``during`` is called inside download/update, i.e. while the volume is
    attached to this host.
    """

    def __init__(self, store, during=None):
        self.store = store
        self.images: dict[str, tuple[dict, bytes]] = {}
        self.uploaded: dict[str, str] = {}
        self.temp_images = None     # image_utils.TemporaryImages looks
        self.during = during or (lambda: None)

    def add(self, image_id: str, data: bytes, **meta) -> None:
        meta = dict({'id': image_id, 'disk_format': 'raw',
                     'container_format': 'bare', 'size': len(data),
                     'status': 'active', 'properties': {}}, **meta)
        self.images[image_id] = (meta, data)

    def show(self, context, image_id):
        return dict(self.images[image_id][0])

    def download(self, context, image_id, data=None):
        self.during()
        data.write(self.images[image_id][1])

    def update(self, context, image_id, image_meta, data=None,
               purge_props=True, store_id=None, base_image_ref=None):
        """Store the upload in a file, as Glance's file store would."""
        self.during()
        path = os.path.join(self.store, image_id)
        with open(path, 'wb') as f:
            while True:
                chunk = data.read(4 * MiB)
                if not chunk:
                    break
                f.write(chunk)
        self.uploaded[image_id] = path
        return {'id': image_id}


def res_hosts(text: str) -> dict[str, str]:
    """{host: address} of the ``on <host> { ... address ...; }`` blocks."""
    found = {}
    for match in re.finditer(r'\bon\s+(\S+)\s*\{(.*?)\}', text, re.S):
        addr = re.search(r'\baddress\s+(?:ipv[46]\s+)?([^\s;]+)',
                         match.group(2))
        found[match.group(1)] = addr.group(1) if addr else ''
    return found


class ImageCopyTest(base.BaseTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        why = cluster_box.missing_prerequisites()
        if why:
            raise unittest.SkipTest(why)
        if not shutil.which('qemu-img'):
            raise unittest.SkipTest('qemu-img not found (apt install '
                                    'qemu-utils)')
        if not protocol.HOST_RE.fullmatch(HOST) or HOST in (
                STORAGE + ('hv-1',)):
            raise unittest.SkipTest(f'host name {HOST!r} cannot be a box '
                                    f'node')
        cls.box = cluster_box.ClusterInABox(storage=STORAGE,
                                            hypervisors=('hv-1', HOST))
        cls.box.setUp()

    @classmethod
    def tearDownClass(cls):
        try:
            left = cls.box.leftovers()
        finally:
            cls.box.cleanUp()
        super().tearDownClass()
        if left:
            raise AssertionError(f'left behind: {left}')

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.FakeLogger(level=logging.DEBUG,
                                            format=LOG_FORMAT))
        self.box = type(self).box
        self.workdir = tempfile.mkdtemp(prefix='blackstor-image-')
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.my_ip = cfg.CONF.my_ip
        # Privileged os-brick/cinder calls run in this (root) process, as
        # with a privsep daemon already started; no sudo, no rootwrap.
        self._privsep_in_process()
        fixture = self.useFixture(driver_fixture.DriverFixture(self.box,
                                                               BACKEND))
        fixture.conf.config(image_conversion_dir=self.workdir)
        self.ctxt = fixture.ctxt
        self.drv = fixture.driver

    def _privsep_in_process(self):
        from os_brick import privileged as brick_privileged
        contexts = [brick_privileged.default,
                    brick_privileged.brick_privsep_hide_output]
        try:
            from cinder import privsep as cinder_privsep
            contexts.append(cinder_privsep.sys_admin_pctxt)
        except ImportError:
            pass
        for pctxt in contexts:
            pctxt.set_client_mode(False)
            self.addCleanup(pctxt.set_client_mode, True)

    # -- helpers -----------------------------------------------------------

    def volume(self, **specs):
        vtype = fake_volume.fake_volume_type_obj(self.ctxt,
                                                 extra_specs=specs)
        vol = fake_volume.fake_volume_obj(
            self.ctxt, size=1, volume_type_id=vtype.id,
            id=str(uuid.uuid4()), encryption_key_id=None)
        vol.volume_type = vtype
        vol.glance_metadata = {}
        self.drv.create_volume(vol)
        self.addCleanup(self.delete_and_check, vol)
        return vol

    def delete_and_check(self, vol):
        self.drv.delete_volume(vol)
        self.assertEqual({}, self.box.leftovers())

    def res_texts(self, vol) -> dict[str, str]:
        out = {}
        for name in STORAGE:
            path = self.box.nodes[name].resource_dir / f'{vol.name}.res'
            out[name] = path.read_text()
        return out

    def assert_attached_here(self, vol) -> None:
        """While the copy runs: this host is a client at its own address."""
        configured = self.box.nodes[HOST].address
        for node, text in self.res_texts(vol).items():
            hosts = res_hosts(text)
            self.assertIn(HOST, hosts, node)
            self.assertTrue(hosts[HOST].startswith(configured + ':'),
                            f'{node}: {HOST} at {hosts[HOST]}, configured '
                            f'{configured}, connector ip {self.my_ip}')
        self.assertTrue(os.path.exists(
            self.box.standin.device_path(HOST, vol.name)))
        self.attached_seen += 1

    def assert_detached_here(self, vol) -> None:
        for node, text in self.res_texts(vol).items():
            self.assertNotIn(HOST, res_hosts(text), node)
        self.assertEqual([], list(
            self.box.nodes[HOST].resource_dir.iterdir()))
        self.assertEqual([], [r['name'] for r in
                              self.box.standin.status(HOST) or []])

    # -- tests ---------------------------------------------------------------

    def test_copy_volume_to_image(self):
        vol = self.volume(**{driver.SPEC_REPLICAS: '3'})
        head = os.urandom(64 * 1024)
        mid_offset = 5 * MiB + 4096
        mid = os.urandom(MiB)
        # the same data on every replica (as DRBD keeps it)
        for node in STORAGE:
            with open(self.box.standin.lv_path(node, cluster_box.VG,
                                               vol.name), 'r+b') as f:
                f.write(head)
                f.seek(mid_offset)
                f.write(mid)

        self.attached_seen = 0
        images = FakeImageService(
            self.workdir,
            during=lambda: self.assert_attached_here(vol))
        image_id = str(uuid.uuid4())
        meta = {'id': image_id, 'name': 'from-volume',
                'disk_format': 'raw', 'container_format': 'bare'}
        self.drv.copy_volume_to_image(self.ctxt, vol, images, meta)

        self.assertEqual(1, self.attached_seen)
        with open(images.uploaded[image_id], 'rb') as f:
            size = os.fstat(f.fileno()).st_size
            got_head = os.pread(f.fileno(), len(head), 0)
            got_mid = os.pread(f.fileno(), len(mid), mid_offset)
            tail = os.pread(f.fileno(), MiB, (vol.size << 30) - MiB)
        # the whole device, which is exactly the volume
        self.assertEqual(vol.size << 30, size)
        # What Cinder checks before it writes this image into a volume
        # (copy_image_to_volume -> fetch_to_raw): it fits one of the size.
        info = image_utils.qemu_img_info(images.uploaded[image_id],
                                         run_as_root=False)
        self.assertEqual(vol.size << 30, info.virtual_size)
        self.assertEqual(vol.size, image_utils.check_virtual_size(
            info.virtual_size, vol.size, image_id))
        self.assertEqual(head, got_head)
        self.assertEqual(mid, got_mid)
        self.assertEqual(bytes(MiB), tail)
        self.assert_detached_here(vol)

    def test_copy_image_to_volume(self):
        vol = self.volume(**{driver.SPEC_REPLICAS: '3'})
        image = bytearray(8 * MiB)
        chunks = {0: os.urandom(4096), 3 * MiB + 512: os.urandom(MiB),
                  8 * MiB - 4096: os.urandom(4096)}
        for offset, data in chunks.items():
            image[offset:offset + len(data)] = data
        self.attached_seen = 0
        images = FakeImageService(
            self.workdir,
            during=lambda: self.assert_attached_here(vol))
        image_id = str(uuid.uuid4())
        images.add(image_id, bytes(image))

        self.drv.copy_image_to_volume(self.ctxt, vol, images, image_id)

        self.assertEqual(1, self.attached_seen)
        for node in STORAGE:
            for offset, data in chunks.items():
                self.assertTrue(
                    data == self.box.lv_bytes(node, vol.name, offset,
                                              len(data)),
                    f'{node}: LV differs at {offset}')
        self.assert_detached_here(vol)

    def test_device_size_is_the_volume_size(self):
        """An image uploaded from a volume fits a volume of the same size.

        The LV is sized so that DRBD can expose *at least* the volume
        (node/sizing.lv_size_for, rounded up to the extent); the .res's
        ``disk { size ...; }`` makes the device exactly the volume. Without
        it a 1 GiB volume uploaded a 1 GiB + ~3.7 MiB raw image, which
        Cinder then refused to write into a 1 GiB volume
        (image_utils.check_virtual_size rounds up to 2 GiB).
        """
        vol = self.volume(**{driver.SPEC_REPLICAS: '1'})
        sizes = {n: d['size'] for n in STORAGE
                 for r in self.box.standin.status(n) or []
                 if r['name'] == vol.name for d in r['devices']}
        self.assertEqual(1, len(sizes))
        [(holder, kib)] = sizes.items()
        self.assertEqual(vol.size << 30, kib * 1024)
        lv = os.path.getsize(self.box.standin.lv_path(
            holder, cluster_box.VG, vol.name))
        self.assertGreater(lv, vol.size << 30)   # metadata, extent
