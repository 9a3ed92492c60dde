#!/bin/sh
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
#
# Boot of a BlackStor test VM, run by the image's /sbin/blackstor-init
# after it unpacked the source tree (fw_cfg opt/blackstor/src) into
# /opt/blackstor. This node's settings come as fw_cfg opt/blackstor/conf
# (a tar: host key, authorized_keys, node.conf, net).
# Kernel command line: blackstor.name=<node>.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /dev/pts /run/lock /run/sshd /run/blackstor /tmp /var/lib/drbd
mount -t devpts devpts /dev/pts 2>/dev/null
tar -x -C /run/blackstor \
    -f /sys/firmware/qemu_fw_cfg/by_name/opt/blackstor/conf/raw
for m in virtio_net dm_thin_pool dm_snapshot; do
    modprobe "$m" || echo "blackstor-boot: modprobe $m failed"
done
# The real DRBD 9.2.18 module (the image's /lib/modules/*/updates/).
for m in libcrc32c lru_cache handshake drbd drbd_transport_tcp; do
    if [ "$m" = handshake ] && ! modinfo -n handshake >/dev/null 2>&1; then
        continue
    fi
    modprobe "$m" || echo "blackstor-boot: modprobe $m failed"
done
echo "BLACKSTOR-DRBD $(head -n 1 /proc/drbd 2>/dev/null || echo none)"
NAME=$(sed -n 's/.*blackstor\.name=\([^ ]*\).*/\1/p' /proc/cmdline)
hostname "$NAME"
echo "$NAME" > /etc/hostname

nic() {  # the interface with MAC $1
    for d in /sys/class/net/*; do
        if [ "$(cat "$d/address")" = "$1" ]; then
            basename "$d"
            return
        fi
    done
}

# Wait for the NICs (virtio_net probes asynchronously).
. /run/blackstor/net   # UMAC=...; ADDR=...; LINKS="mac,peer mac,peer"
i=0
while [ -z "$(nic "$UMAC")" ] && [ $i -lt 50 ]; do
    sleep 0.2; i=$((i + 1))
done
ip link set lo up
dev=$(nic "$UMAC")
ip link set "$dev" up
ip addr add 10.0.2.15/24 dev "$dev"
ip route add default via 10.0.2.2
# Private L2: one point-to-point NIC per peer, the node's one address on
# each, a host route to the peer through it.
for link in $LINKS; do
    mac=${link%%,*}; peer=${link#*,}
    dev=$(nic "$mac")
    ip link set "$dev" up
    ip addr add "$ADDR/32" dev "$dev"
    ip route add "$peer/32" dev "$dev" src "$ADDR"
done
ip -br addr

# udevd, for the devices made from now on: drbd-utils' rules make
# /dev/drbd/by-res/<res>/<vol>, which the connector waits for. Started
# after the NICs are set up and without a trigger of what exists (that
# costs a minute under TCG and would rename the NICs under our feet).
# LVM still runs without udev sync (image.py).
/lib/systemd/systemd-udevd --daemon

install -m 600 /run/blackstor/ssh_host_ed25519_key /etc/ssh/
install -m 644 /run/blackstor/ssh_host_ed25519_key.pub /etc/ssh/
mkdir -p /root/.ssh
install -m 600 /run/blackstor/authorized_keys /root/.ssh/authorized_keys
/usr/sbin/sshd -f /etc/ssh/sshd_config -E /run/sshd.log
# The agent's wrapper never writes bytecode; compile once, in the
# background, so that agent sessions do not each compile the tree.
python3 -m compileall -q /opt/blackstor/blackstor_cinder >/dev/null 2>&1 &
echo "BLACKSTOR-VM-READY $NAME"
exec sleep infinity
