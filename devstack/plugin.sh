#!/bin/bash
#
# devstack/plugin.sh - BlackStor for Cinder (DRBD 9 on LVM thin)
#
# devstack sources this file with the phase as arguments:
#
#   stack install       install this package and the node packages
#   stack post-config   write node.conf, the SSH key, known_hosts, the
#                       SSH account and its sudoers rule
#   stack extra         prepare a storage node that runs no c-vol (LVM
#                       filter, thin pool); put
#                       the blackstor extra specs on the volume types
#   unstack             take the blackstor DRBD resources down
#   clean               remove volumes, thin pool, loop file, config,
#                       the LVM filter
#
# lib/cinder calls, for each "blackstor:<name>" in CINDER_ENABLED_BACKENDS:
#
#   configure_cinder_backend_blackstor <name>   from configure_cinder
#   init_cinder_backend_blackstor <name>        from init_cinder
#   cleanup_cinder_backend_blackstor <name>     from cleanup_cinder
#
# Settings and their defaults: devstack/settings.

# Save trace setting
_XTRACE_BLACKSTOR=$(set +o | grep xtrace)
set +o xtrace

# Where DRBD reports the loaded module's version (tests point it elsewhere).
_BLACKSTOR_PROC_DRBD=${_BLACKSTOR_PROC_DRBD:-/proc/drbd}
# Sentinels: node init and cleanup run once per devstack run even with
# several blackstor backends.
_BLACKSTOR_NODE_READY=${_BLACKSTOR_NODE_READY:-0}
_BLACKSTOR_NODE_CLEANED=${_BLACKSTOR_NODE_CLEANED:-0}
# First line of every .res file the driver renders.
_BLACKSTOR_RES_MARKER='# Written by blackstor-cinder'


# Helpers
# -------

# _blackstor_backend_names - the names of the enabled blackstor backends
function _blackstor_backend_names {
    local be
    for be in ${CINDER_ENABLED_BACKENDS//,/ }; do
        if [[ "${be%%:*}" == "blackstor" ]]; then
            echo "${be##*:}"
        fi
    done
}

# _blackstor_range_slice - this backend's share of a low-high range
# _blackstor_range_slice $range $be_name
# The blackstor backends of one DevStack serve the same nodes, and the
# driver refuses backends on shared hosts with overlapping minor or port
# ranges: each backend gets its own slice, in CINDER_ENABLED_BACKENDS order.
function _blackstor_range_slice {
    local range=$1
    local be_name=$2
    local low=${range%-*}
    local high=${range#*-}
    local count=0
    local index=0
    local be
    for be in $(_blackstor_backend_names); do
        if [[ "$be" == "$be_name" ]]; then
            index=$count
        fi
        count=$((count + 1))
    done
    if (( count <= 1 )); then
        echo "$range"
        return
    fi
    local size
    local start
    local end
    size=$(( (high - low + 1) / count ))
    start=$(( low + index * size ))
    end=$(( start + size - 1 ))
    if (( index == count - 1 )); then
        end=$high
    fi
    echo "$start-$end"
}

# _blackstor_node_bin - absolute path of the blackstor-node command
function _blackstor_node_bin {
    if [[ -n "$BLACKSTOR_NODE_BIN" ]]; then
        echo "$BLACKSTOR_NODE_BIN"
    else
        echo "$(get_python_exec_prefix)/blackstor-node"
    fi
}

# _blackstor_node_command - what the driver runs to reach the agent
function _blackstor_node_command {
    echo "sudo -n $(_blackstor_node_bin)"
}

# _blackstor_ssh_host - the address of this node for SSH and DRBD
function _blackstor_ssh_host {
    echo "${BLACKSTOR_SSH_HOST:-${HOST_IP:-127.0.0.1}}"
}

# _blackstor_ssh_addresses - value of blackstor_ssh_addresses
function _blackstor_ssh_addresses {
    if [[ -n "$BLACKSTOR_SSH_ADDRESSES" ]]; then
        echo "$BLACKSTOR_SSH_ADDRESSES"
    elif [[ "$BLACKSTOR_TRANSPORT" == "local" ]]; then
        echo "${BLACKSTOR_NODE_NAME}:local"
    else
        echo "${BLACKSTOR_NODE_NAME}:$(_blackstor_ssh_host)"
    fi
}

# _blackstor_replication_addresses - value of
# blackstor_replication_addresses
function _blackstor_replication_addresses {
    local address
    if [[ -n "$BLACKSTOR_REPLICATION_ADDRESSES" ]]; then
        echo "$BLACKSTOR_REPLICATION_ADDRESSES"
    else
        address=${BLACKSTOR_REPLICATION_IP:-$(_blackstor_ssh_host)}
        echo "${BLACKSTOR_NODE_NAME}:${address}"
    fi
}

# _blackstor_known_hosts_name - how known_hosts names this node
function _blackstor_known_hosts_name {
    local host
    host=$(_blackstor_ssh_host)
    if [[ "$BLACKSTOR_SSH_PORT" == "22" ]]; then
        echo "$host"
    else
        echo "[$host]:$BLACKSTOR_SSH_PORT"
    fi
}

# _blackstor_drbd_version - version of the DRBD kernel module, or nothing
function _blackstor_drbd_version {
    local version=""
    if [[ -r "$_BLACKSTOR_PROC_DRBD" ]]; then
        version=$(awk '$1 == "version:" {print $2; exit}' \
            "$_BLACKSTOR_PROC_DRBD")
    fi
    if [[ -z "$version" ]]; then
        version=$(modinfo -F version drbd 2>/dev/null || true)
    fi
    echo "$version"
}

# _blackstor_resources - names of the DRBD resources the driver wrote
# on this node (the agent writes its .res files with mode 0600)
function _blackstor_resources {
    local res_file
    for res_file in $(sudo find "$BLACKSTOR_RESOURCE_DIR" -maxdepth 1 \
            -name '*.res' -type f 2>/dev/null); do
        if sudo grep -q "^$_BLACKSTOR_RES_MARKER" "$res_file"; then
            sudo awk '$1 == "resource" {gsub(/"/, "", $2); print $2; exit}' \
                "$res_file"
        fi
    done
}


# Node side
# ---------

# blackstor_check_drbd9 - die unless the DRBD kernel module is 9.2.14 or
# later (from 9.2.14 on suspend-io lets writes in flight drain, which
# crash-consistent snapshots rely on; the driver refuses older nodes too)
function blackstor_check_drbd9 {
    local version major minor patch
    if [[ "$BLACKSTOR_CHECK_DRBD9" != "True" ]]; then
        return 0
    fi
    sudo modprobe drbd || true
    version=$(_blackstor_drbd_version)
    if [[ "$version" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+) ]]; then
        major=${BASH_REMATCH[1]}
        minor=${BASH_REMATCH[2]}
        patch=${BASH_REMATCH[3]}
    else
        major=0
        minor=0
        patch=0
    fi
    if (( major < 9 || (major == 9 && (minor < 2 ||
            (minor == 2 && patch < 14))) )); then
        die $LINENO "BlackStor needs the DRBD 9 kernel module, 9.2.14 or" \
            "later; found '${version:-none}'. Set BLACKSTOR_DRBD9_PPA=True" \
            "(Ubuntu) or install drbd-dkms 9.2.14+ yourself."
    fi
}

# blackstor_create_pool - volume group and thin pool, on a loop file
# unless BLACKSTOR_BACKING_DEVICE names a disk
function blackstor_create_pool {
    local vg=$BLACKSTOR_VG
    local dev
    if ! sudo vgs "$vg" >/dev/null 2>&1; then
        if [[ -n "$BLACKSTOR_BACKING_DEVICE" ]]; then
            dev=$BLACKSTOR_BACKING_DEVICE
        else
            if [[ ! -f "$BLACKSTOR_BACKING_FILE" ]]; then
                truncate -s "$BLACKSTOR_POOL_SIZE" "$BLACKSTOR_BACKING_FILE"
            fi
            dev=$(sudo losetup -j "$BLACKSTOR_BACKING_FILE" \
                | cut -d: -f1 | head -n 1)
            if [[ -z "$dev" ]]; then
                dev=$(sudo losetup -f --show "$BLACKSTOR_BACKING_FILE")
            fi
        fi
        sudo vgcreate "$vg" "$dev"
    fi
    if ! sudo lvs "$vg/$BLACKSTOR_THINPOOL" >/dev/null 2>&1; then
        sudo lvcreate --yes --type thin-pool --extents 95%FREE \
            --name "$BLACKSTOR_THINPOOL" "$vg"
    fi
}

# The global_filter line the plugin writes into lvm.conf, and the prefix
# of an operator's line it turned off (put back by clean).
_BLACKSTOR_LVM_MARK='# from blackstor'
_BLACKSTOR_LVM_OFF='#blackstor-off# '
# Kept out of LVM first: a DRBD device by its kernel name, by DRBD's udev
# links (/dev/drbd/by-res, /dev/drbd/by-disk) and by udev's
# /dev/block/147:<minor>. LVM takes a device if any of its names passes.
_BLACKSTOR_LVM_REJECT='"r|^/dev/drbd|", "r|^/dev/block/147:|"'

# _blackstor_lvm_conf_restore - lvm.conf without the plugin's changes
function _blackstor_lvm_conf_restore {
    local conf=$BLACKSTOR_LVM_CONF
    local tmp
    if [[ ! -f "$conf" ]]; then
        return 0
    fi
    tmp=$(mktemp)
    MARK="$_BLACKSTOR_LVM_MARK" OFF="$_BLACKSTOR_LVM_OFF" awk '
        substr($0, length($0) - length(ENVIRON["MARK"]) + 1) \
            == ENVIRON["MARK"] { next }
        index($0, ENVIRON["OFF"]) == 1 {
            $0 = substr($0, length(ENVIRON["OFF"]) + 1)
        }
        { print }' "$conf" > "$tmp"
    sudo cp "$tmp" "$conf"
    rm -f "$tmp"
}

# blackstor_set_lvm_filter - keep LVM away from DRBD devices: a scan that
# opens one while a snapshot has its I/O suspended blocks, and the agent
# refuses a storage node whose LVM would. The DRBD names are rejected in
# front of the global_filter LVM has now, so what it accepted before (this
# host's own PVs, devstack's LVM backend) it still accepts.
function blackstor_set_lvm_filter {
    local conf=$BLACKSTOR_LVM_CONF
    local current
    local line
    local tmp
    if [[ "$BLACKSTOR_LVM_FILTER" != "True" ]]; then
        return 0
    fi
    _blackstor_lvm_conf_restore
    current=$(sudo env LVM_SYSTEM_DIR="$(dirname "$conf")" \
        lvmconfig --typeconfig full devices/global_filter)
    if [[ ! "$current" =~ ^global_filter=\[(.*)\]$ ]]; then
        die $LINENO "cannot read devices/global_filter of $conf:" \
            "'$current'"
    fi
    current=${BASH_REMATCH[1]}
    line=$'\t'"global_filter = [ $_BLACKSTOR_LVM_REJECT"
    line+="${current:+, $current} ]  $_BLACKSTOR_LVM_MARK"
    if [[ ! -f "$conf" ]]; then
        die $LINENO "$conf not found (BLACKSTOR_LVM_CONF)"
    fi
    tmp=$(mktemp)
    if ! LINE="$line" MARK="$_BLACKSTOR_LVM_MARK" \
            OFF="$_BLACKSTOR_LVM_OFF" awk '
            /^[ \t]*global_filter[ \t]*=/ {
                if (index($0, "]") == 0) { several = 1; exit 2 }
                $0 = ENVIRON["OFF"] $0
            }
            { print }
            !done && /^[ \t]*devices[ \t]*\{/ {
                print ENVIRON["LINE"]; done = 1
            }
            END {
                if (several) exit 2
                if (!done) print "devices {  " ENVIRON["MARK"] "\n" \
                    ENVIRON["LINE"] "\n}  " ENVIRON["MARK"]
            }' \
            "$conf" > "$tmp"; then
        rm -f "$tmp"
        die $LINENO "$conf has a global_filter over several lines: put" \
            "it on one line, or set it yourself (see etc/NODE-SETUP.md)" \
            "with BLACKSTOR_LVM_FILTER=False"
    fi
    sudo cp "$tmp" "$conf"
    rm -f "$tmp"
}

# blackstor_write_node_conf - /etc/blackstor/node.conf of the agent
function blackstor_write_node_conf {
    local conf=$BLACKSTOR_NODE_CONF
    sudo install -d -m 0755 "$(dirname "$conf")" "$BLACKSTOR_RESOURCE_DIR"
    sudo rm -f "$conf"
    iniset -sudo "$conf" node node_name "$BLACKSTOR_NODE_NAME"
    iniset -sudo "$conf" node pools "$BLACKSTOR_VG/$BLACKSTOR_THINPOOL"
    iniset -sudo "$conf" node resource_dir "$BLACKSTOR_RESOURCE_DIR"
    iniset -sudo "$conf" node drbd_config "$BLACKSTOR_DRBD_CONFIG"
    sudo chmod 0644 "$conf"
}

# blackstor_write_sudoers - the SSH account may run blackstor-node, with
# no arguments, as root and nothing else
function blackstor_write_sudoers {
    local tmp
    tmp=$(mktemp)
    cat > "$tmp" <<EOF
# Written by the BlackStor devstack plugin.
Defaults:$BLACKSTOR_SSH_USER !requiretty
$BLACKSTOR_SSH_USER ALL=(root) NOPASSWD: $(_blackstor_node_bin) ""
EOF
    if ! sudo visudo -c -q -f "$tmp"; then
        rm -f "$tmp"
        die $LINENO "sudoers rule for $BLACKSTOR_SSH_USER does not parse"
    fi
    sudo install -m 0440 "$tmp" "$BLACKSTOR_SUDOERS_FILE"
    rm -f "$tmp"
}

# _blackstor_authorized_keys - public keys allowed to run the agent
function _blackstor_authorized_keys {
    if [[ -r "$BLACKSTOR_SSH_KEY.pub" ]]; then
        cat "$BLACKSTOR_SSH_KEY.pub"
    fi
    if [[ -n "$BLACKSTOR_SSH_AUTHORIZED_KEYS" ]]; then
        echo "$BLACKSTOR_SSH_AUTHORIZED_KEYS"
    fi
}

# blackstor_setup_ssh_account - the account the driver logs in to; each
# key is restricted to the agent command
function blackstor_setup_ssh_account {
    local user=$BLACKSTOR_SSH_USER
    local home
    local cmd
    local key
    if ! getent passwd "$user" >/dev/null; then
        sudo useradd --system --user-group --create-home \
            --home-dir "$BLACKSTOR_SSH_HOME" --shell /bin/sh "$user"
        # '*' rather than the locked '!': sshd without PAM refuses key
        # logins to locked accounts.
        sudo usermod --password '*' "$user"
    fi
    home=$(getent passwd "$user" | cut -d: -f6)
    home=${home:-$BLACKSTOR_SSH_HOME}
    cmd=$(_blackstor_node_command)
    sudo install -d -m 0700 "$home/.ssh"
    _blackstor_authorized_keys | while read -r key; do
        if [[ -n "$key" ]]; then
            echo "restrict,command=\"$cmd\" $key"
        fi
    done | sudo tee "$home/.ssh/authorized_keys" >/dev/null
    sudo chmod 0600 "$home/.ssh/authorized_keys"
    sudo chown -R "$user:$user" "$home/.ssh"
}

# init_blackstor_node - make this host a storage node (once)
function init_blackstor_node {
    if [[ "$_BLACKSTOR_NODE_READY" == "1" ]]; then
        return 0
    fi
    blackstor_check_drbd9
    blackstor_set_lvm_filter
    blackstor_create_pool
    _BLACKSTOR_NODE_READY=1
}

# stop_blackstor_node - take down the DRBD resources the driver made
function stop_blackstor_node {
    local res
    for res in $(_blackstor_resources); do
        sudo drbdadm -c "$BLACKSTOR_DRBD_CONFIG" down "$res" || true
    done
}

# cleanup_blackstor_node - remove every blackstor volume, the thin pool,
# the volume group and its loop file (once)
function cleanup_blackstor_node {
    local res
    local dev
    if [[ "$_BLACKSTOR_NODE_CLEANED" == "1" ]]; then
        return 0
    fi
    for res in $(_blackstor_resources); do
        sudo drbdadm -c "$BLACKSTOR_DRBD_CONFIG" down "$res" || true
        sudo rm -f "$BLACKSTOR_RESOURCE_DIR/$res.res"
    done
    if sudo vgs "$BLACKSTOR_VG" >/dev/null 2>&1; then
        sudo lvremove -f "$BLACKSTOR_VG"
        sudo vgremove -f "$BLACKSTOR_VG"
    fi
    if [[ -z "$BLACKSTOR_BACKING_DEVICE" ]]; then
        for dev in $(sudo losetup -j "$BLACKSTOR_BACKING_FILE" \
                | cut -d: -f1); do
            sudo losetup -d "$dev"
        done
        rm -f "$BLACKSTOR_BACKING_FILE"
    fi
    _blackstor_lvm_conf_restore
    _BLACKSTOR_NODE_CLEANED=1
}


# Cinder side
# -----------

# blackstor_setup_ssh_client - key pair of cinder-volume and the
# known_hosts entries of this node's host keys
function blackstor_setup_ssh_client {
    local key=$BLACKSTOR_SSH_KEY
    local known=$BLACKSTOR_SSH_KNOWN_HOSTS
    local name
    local pub
    local ktype
    local kdata
    local rest
    name=$(_blackstor_known_hosts_name)
    sudo install -d -o "$STACK_USER" -m 0755 "$(dirname "$key")"
    sudo install -d -o "$STACK_USER" -m 0755 "$(dirname "$known")"
    if [[ ! -f "$key" ]]; then
        ssh-keygen -q -t ed25519 -N '' -f "$key" \
            -C "cinder-volume@$BLACKSTOR_NODE_NAME"
    fi
    chmod 0600 "$key"
    # Keep entries of other nodes, replace this node's.
    touch "$known"
    awk -v name="$name" '$1 != name' "$known" > "$known.new"
    for pub in "$BLACKSTOR_SSH_HOST_KEY_DIR"/ssh_host_*_key.pub; do
        if [[ -r "$pub" ]]; then
            read -r ktype kdata rest < "$pub"
            echo "$name $ktype $kdata" >> "$known.new"
        fi
    done
    mv "$known.new" "$known"
    chmod 0644 "$known"
}

# blackstor_set_volume_types - make sure every blackstor backend has its
# volume type, with the blackstor extra specs
function blackstor_set_volume_types {
    local be_name
    for be_name in $(_blackstor_backend_names); do
        if ! openstack --os-region-name="$REGION_NAME" \
                volume type show "$be_name" >/dev/null 2>&1; then
            openstack --os-region-name="$REGION_NAME" volume type create \
                --property volume_backend_name="$be_name" "$be_name"
        fi
        openstack --os-region-name="$REGION_NAME" volume type set \
            --property volume_backend_name="$be_name" \
            --property blackstor:replicas="$BLACKSTOR_REPLICAS" \
            --property blackstor:zones="$BLACKSTOR_ZONE_POLICY" \
            "$be_name"
    done
}


# Entry points of lib/cinder
# --------------------------

# configure_cinder_backend_blackstor - write the backend section
# configure_cinder_backend_blackstor $be_name
function configure_cinder_backend_blackstor {
    local be_name=$1
    local conf=$CINDER_CONF

    iniset "$conf" "$be_name" volume_backend_name "$be_name"
    iniset "$conf" "$be_name" volume_driver "$BLACKSTOR_VOLUME_DRIVER"
    iniset "$conf" "$be_name" blackstor_storage_nodes \
        "$BLACKSTOR_STORAGE_NODES"
    iniset "$conf" "$be_name" blackstor_client_nodes "$BLACKSTOR_CLIENT_NODES"
    iniset "$conf" "$be_name" blackstor_ssh_addresses \
        "$(_blackstor_ssh_addresses)"
    iniset "$conf" "$be_name" blackstor_replication_addresses \
        "$(_blackstor_replication_addresses)"
    if [[ -n "$BLACKSTOR_NODE_ZONES" ]]; then
        iniset "$conf" "$be_name" blackstor_node_zones "$BLACKSTOR_NODE_ZONES"
    fi
    iniset "$conf" "$be_name" blackstor_ssh_user "$BLACKSTOR_SSH_USER"
    iniset "$conf" "$be_name" blackstor_ssh_private_key "$BLACKSTOR_SSH_KEY"
    iniset "$conf" "$be_name" blackstor_ssh_known_hosts \
        "$BLACKSTOR_SSH_KNOWN_HOSTS"
    iniset "$conf" "$be_name" blackstor_ssh_port "$BLACKSTOR_SSH_PORT"
    iniset "$conf" "$be_name" blackstor_node_command \
        "$(_blackstor_node_command)"
    iniset "$conf" "$be_name" blackstor_local_node_command \
        "$(_blackstor_node_command)"
    iniset "$conf" "$be_name" blackstor_pool \
        "$BLACKSTOR_VG/$BLACKSTOR_THINPOOL"
    iniset "$conf" "$be_name" blackstor_replicas "$BLACKSTOR_REPLICAS"
    iniset "$conf" "$be_name" blackstor_zone_policy "$BLACKSTOR_ZONE_POLICY"
    iniset "$conf" "$be_name" blackstor_port_range \
        "$(_blackstor_range_slice "$BLACKSTOR_PORT_RANGE" "$be_name")"
    iniset "$conf" "$be_name" blackstor_minor_range \
        "$(_blackstor_range_slice "$BLACKSTOR_MINOR_RANGE" "$be_name")"
}

# init_cinder_backend_blackstor - ready the local node before c-vol starts
# init_cinder_backend_blackstor $be_name
function init_cinder_backend_blackstor {
    if is_service_enabled blackstor-node; then
        init_blackstor_node
    fi
}

# cleanup_cinder_backend_blackstor - remove the volumes (campsite rule)
# cleanup_cinder_backend_blackstor $be_name
function cleanup_cinder_backend_blackstor {
    if is_service_enabled blackstor-node; then
        cleanup_blackstor_node
    fi
}


# Phases
# ------

# install_blackstor - the package everywhere, DRBD and LVM tools on nodes
function install_blackstor {
    setup_develop "$BLACKSTOR_DIR"
    if ! is_service_enabled blackstor-node; then
        return 0
    fi
    if [[ "$BLACKSTOR_DRBD9_PPA" == "True" ]] && is_ubuntu; then
        sudo add-apt-repository -y "$BLACKSTOR_DRBD9_PPA_NAME"
        # make install_package refresh the package lists
        REPOS_UPDATED=False
        install_package drbd-dkms
    fi
    install_package drbd-utils lvm2
    if is_ubuntu; then
        install_package thin-provisioning-tools
    else
        install_package device-mapper-persistent-data
    fi
    if [[ "$BLACKSTOR_TRANSPORT" == "ssh" ]]; then
        install_package openssh-server
    fi
}

# configure_blackstor - configuration files of the node and of c-vol
function configure_blackstor {
    if is_service_enabled c-vol && [[ -n "$(_blackstor_backend_names)" ]] \
            && [[ "$BLACKSTOR_TRANSPORT" == "ssh" ]]; then
        blackstor_setup_ssh_client
    fi
    if is_service_enabled blackstor-node; then
        blackstor_write_node_conf
        if [[ "$BLACKSTOR_TRANSPORT" == "ssh" ]]; then
            blackstor_setup_ssh_account
            blackstor_write_sudoers
        fi
    fi
}

# cleanup_blackstor - undo everything the plugin did on this host
function cleanup_blackstor {
    local home
    if is_service_enabled blackstor-node; then
        cleanup_blackstor_node
        sudo rm -f "$BLACKSTOR_NODE_CONF" "$BLACKSTOR_SUDOERS_FILE"
        home=$(getent passwd "$BLACKSTOR_SSH_USER" | cut -d: -f6)
        if [[ -n "$home" ]]; then
            sudo rm -f "$home/.ssh/authorized_keys"
        fi
    fi
    rm -f "$BLACKSTOR_SSH_KEY" "$BLACKSTOR_SSH_KEY.pub" \
        "$BLACKSTOR_SSH_KNOWN_HOSTS"
}


# Dispatcher
# ----------

if is_service_enabled blackstor-node \
        || [[ -n "$(_blackstor_backend_names)" ]]; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing BlackStor"
        install_blackstor
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring BlackStor"
        configure_blackstor
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        # A storage node without c-vol was not initialised by init_cinder.
        if is_service_enabled blackstor-node; then
            echo_summary "Initializing the BlackStor node"
            init_blackstor_node
        fi
        if is_service_enabled c-api && is_service_enabled keystone \
                && [[ "$BLACKSTOR_SET_TYPE_SPECS" == "True" ]]; then
            echo_summary "Setting the BlackStor volume type extra specs"
            blackstor_set_volume_types
        fi
    fi

    if [[ "$1" == "unstack" ]] && is_service_enabled blackstor-node; then
        stop_blackstor_node
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_blackstor
    fi
fi

# Restore xtrace
$_XTRACE_BLACKSTOR

# Tell emacs to use shell-script-mode
## Local variables:
## mode: shell-script
## End:
