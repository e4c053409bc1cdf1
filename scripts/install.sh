#!/bin/sh
# install.sh — install, upgrade or remove waappliance on a Debian, Ubuntu or
# Raspberry Pi OS machine with systemd.
#
# Usage: install.sh [--endpoint HOST:PORT] [--listen-port N] [--memory-max SIZE]
#                   [--root DIR] [--no-start] [BINARY]
#        install.sh --uninstall [--purge] [--root DIR]
#
#   --endpoint HOST:PORT  the address WireGuard clients dial: this machine's
#                         public IP or DNS name and UDP port (env
#                         WAAPPLIANCE_ENDPOINT). Needed on the first install
#                         only; an upgrade keeps the state and ignores it.
#   --listen-port N       UDP port on this machine (default 51820; env
#                         WAAPPLIANCE_LISTEN_PORT). Below 1024 the unit gets
#                         CAP_NET_BIND_SERVICE, otherwise no capability at all.
#   --memory-max SIZE     systemd MemoryMax= of the service, e.g. 128M, 1G or
#                         infinity (default 256M; env WAAPPLIANCE_MEMORY_MAX).
#                         GOMEMLIMIT is set to 75% of it so the Go runtime
#                         collects garbage before the kernel kills it.
#   --root DIR            install into the tree DIR instead of / (CI, or an
#                         SD card image). No systemctl calls, no useradd: the
#                         system user comes from a sysusers.d entry that
#                         systemd-sysusers applies at the tree's next boot,
#                         and the unit's StateDirectory= hands the state dir
#                         to that user when the service first starts.
#   --no-start            write everything but do not (re)start the service.
#   --uninstall           stop and remove the service and the binary; keep
#                         /var/lib/waappliance (the keys and peers) and the user.
#   --purge               with --uninstall: also delete the state and the user.
#   BINARY                the waappliance binary to install; default: the file
#                         waappliance-linux-ARCH for this machine (ARCH from
#                         uname -m: amd64, arm64, armv7, armv6) next to this
#                         script, in ./dist/ or ../dist/ relative to it. If a
#                         SHA256SUMS file lies next to it, the binary must
#                         match it.
#
# What it does (as root): installs BINARY as /usr/local/bin/waappliance,
# creates the system user waappliance, /var/lib/waappliance (0700), writes a
# hardened /etc/systemd/system/waappliance.service, runs `waappliance init`
# when the state is new, creates a first peer `admin` (scope admin) when there
# is no peer and prints its WireGuard config and QR code, then enables and
# (re)starts the service if systemd is running. Running it again upgrades the
# binary and keeps the state and peers. Exit status: 0 ok, 1 error, 2 usage.
set -eu

NAME=waappliance
USER_NAME=waappliance

die() { echo "install.sh: $*" >&2; exit 1; }
usage_error() { echo "install.sh: $*" >&2; echo "usage: install.sh [--endpoint HOST:PORT] [--listen-port N] [--memory-max SIZE] [--root DIR] [--no-start] [--uninstall [--purge]] [BINARY]  (--help for more)" >&2; exit 2; }
say() { echo "==> $*"; }

root=/
endpoint=${WAAPPLIANCE_ENDPOINT:-}
listen_port=${WAAPPLIANCE_LISTEN_PORT:-}
memory_max=${WAAPPLIANCE_MEMORY_MAX:-}
uninstall=0
purge=0
no_start=0
binary=

while [ $# -gt 0 ]; do
	case "$1" in
	--root) [ $# -ge 2 ] || usage_error "--root needs a directory"; root=$2; shift 2 ;;
	--root=*) root=${1#*=}; shift ;;
	--endpoint) [ $# -ge 2 ] || usage_error "--endpoint needs HOST:PORT"; endpoint=$2; shift 2 ;;
	--endpoint=*) endpoint=${1#*=}; shift ;;
	--listen-port) [ $# -ge 2 ] || usage_error "--listen-port needs a number"; listen_port=$2; shift 2 ;;
	--listen-port=*) listen_port=${1#*=}; shift ;;
	--memory-max) [ $# -ge 2 ] || usage_error "--memory-max needs a size"; memory_max=$2; shift 2 ;;
	--memory-max=*) memory_max=${1#*=}; shift ;;
	--uninstall) uninstall=1; shift ;;
	--purge) purge=1; shift ;;
	--no-start) no_start=1; shift ;;
	-h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	--) shift; [ $# -le 1 ] || usage_error "more than one BINARY"; [ $# -eq 0 ] || binary=$1; shift $# ;;
	-*) usage_error "unknown option $1" ;;
	*) [ -z "$binary" ] || usage_error "more than one BINARY ($binary, $1)"; binary=$1; shift ;;
	esac
done
[ "$purge" = 0 ] || [ "$uninstall" = 1 ] || usage_error "--purge only goes with --uninstall"
[ -n "$root" ] || usage_error "--root needs a directory"

# R is the prefix for every path: empty for the real system.
case "$root" in
/) R= ;;
*)
	[ -d "$root" ] || mkdir -p "$root" || die "cannot create --root $root"
	R=$(cd "$root" && pwd) || die "cannot use --root $root"
	[ "$R" != / ] || R=
	;;
esac

BIN_DIR=/usr/local/bin
BIN=$BIN_DIR/$NAME
STATE=/var/lib/$NAME
UNIT_DIR=/etc/systemd/system
UNIT=$UNIT_DIR/$NAME.service
WANTS=$UNIT_DIR/multi-user.target.wants/$NAME.service
SYSUSERS=/usr/lib/sysusers.d/$NAME.conf

if [ -z "$R" ] && [ "$(id -u)" != 0 ]; then
	die "run me as root (sudo sh $0 ...), or use --root DIR to install into a directory tree"
fi
systemd_running=0
if [ -z "$R" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemd_running=1
fi

# ---------------------------------------------------------------- uninstall
if [ "$uninstall" = 1 ]; then
	if [ "$systemd_running" = 1 ]; then
		systemctl disable --now "$NAME.service" >/dev/null 2>&1 || true
	fi
	rm -f "$R$WANTS" "$R$UNIT" "$R$BIN" "$R$BIN_DIR/.$NAME.new"
	[ "$systemd_running" = 0 ] || systemctl daemon-reload
	say "removed the service and $BIN"
	if [ "$purge" = 1 ]; then
		rm -rf "$R$STATE" "$R/var/lib/private/$NAME"
		rm -f "$R$SYSUSERS"
		if [ -z "$R" ] && getent passwd "$USER_NAME" >/dev/null 2>&1; then
			userdel "$USER_NAME" >/dev/null 2>&1 || echo "install.sh: could not remove user $USER_NAME" >&2
		fi
		say "purged $STATE (server key, peers) and the user $USER_NAME"
	else
		say "kept $STATE (server key and peers) and the user $USER_NAME; run with --uninstall --purge to delete them"
	fi
	exit 0
fi

# ---------------------------------------------------------------- checks
if [ -z "$binary" ]; then
	case "$(uname -m)" in
	x86_64 | amd64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	armv7l | armv7 | armv8l) arch=armv7 ;;
	armv6l | armv6) arch=armv6 ;;
	*) die "no release binary for machine type $(uname -m); pass the binary to install as the last argument" ;;
	esac
	here=$(cd "$(dirname "$0")" && pwd)
	for c in "$here/$NAME-linux-$arch" "$here/dist/$NAME-linux-$arch" "$here/../dist/$NAME-linux-$arch"; do
		if [ -f "$c" ]; then binary=$c; break; fi
	done
	[ -n "$binary" ] || die "no $NAME-linux-$arch next to $0 or in dist/: download it into the same directory as install.sh (or run scripts/build-release), or pass the binary path as the last argument"
fi
[ -f "$binary" ] || die "binary $binary not found"
# A SHA256SUMS file next to the binary (as build-release writes it) is checked.
sums="$(dirname "$binary")/SHA256SUMS"
if [ -f "$sums" ] && command -v sha256sum >/dev/null 2>&1; then
	want=$(awk -v f="$(basename "$binary")" '$2 == f || $2 == "*" f { print $1 }' "$sums")
	if [ -n "$want" ]; then
		got=$(sha256sum <"$binary" | cut -d' ' -f1)
		[ "$got" = "$want" ] || die "$binary does not match $sums (download it again)"
		say "checksum ok ($sums)"
	fi
fi

if [ -z "$listen_port" ] && [ -f "$R$UNIT" ]; then
	# An upgrade keeps the port and memory limit chosen at install time.
	listen_port=$(sed -n 's/^# install.sh: listen-port=\([0-9]*\).*/\1/p' "$R$UNIT" | head -n 1)
fi
[ -n "$listen_port" ] || listen_port=51820
case "$listen_port" in '' | *[!0-9]*) die "--listen-port must be a number, got '$listen_port'" ;; esac
[ "$listen_port" -ge 1 ] && [ "$listen_port" -le 65535 ] || die "--listen-port must be 1-65535, got $listen_port"
if [ -z "$memory_max" ] && [ -f "$R$UNIT" ]; then
	memory_max=$(sed -n 's/^# install.sh: .*memory-max=\([^ ]*\).*/\1/p' "$R$UNIT" | head -n 1)
fi
[ -n "$memory_max" ] || memory_max=256M

# gomemlimit SIZE: 75% of a systemd size (K/M/G/T suffixes, base 1024) in
# MiB, or nothing for infinity.
gomemlimit=
case "$memory_max" in
infinity) ;;
*[0-9] | *[0-9][KMGTkmgt])
	num=${memory_max%[KMGTkmgt]}
	case "$num" in '' | *[!0-9]*) die "--memory-max: cannot read '$memory_max' (examples: 128M, 1G, infinity)" ;; esac
	case "$memory_max" in
	*[Kk]) bytes=$((num * 1024)) ;;
	*[Mm]) bytes=$((num * 1024 * 1024)) ;;
	*[Gg]) bytes=$((num * 1024 * 1024 * 1024)) ;;
	*[Tt]) bytes=$((num * 1024 * 1024 * 1024 * 1024)) ;;
	*) bytes=$num ;;
	esac
	mib=$((bytes * 3 / 4 / 1048576))
	[ "$mib" -ge 32 ] || die "--memory-max $memory_max is too small; give the service at least 48M"
	gomemlimit=${mib}MiB
	;;
*) die "--memory-max: cannot read '$memory_max' (examples: 128M, 1G, infinity)" ;;
esac

# Can this machine run the binary? (Under --root it may be for another
# machine, e.g. a Pi image prepared on a PC: then init is left for later.)
runnable=1
if ! version=$("$binary" version 2>/dev/null); then
	if [ -z "$R" ]; then
		die "$binary does not run on this machine ($(uname -m)); pick the matching waappliance-linux-* file"
	fi
	runnable=0
	version="$(basename "$binary") (for another machine)"
fi

# initialized: a state directory with anything in it is an existing
# appliance, so this run is an upgrade: no init, and no endpoint needed. (The
# new binary does not open the database before the service restarts with
# it, so an old service never runs against a newer schema.)
initialized=0
if [ -n "$(ls -A "$R$STATE" 2>/dev/null)" ]; then
	initialized=1
fi
if [ "$initialized" = 0 ] && [ "$runnable" = 1 ] && [ -z "$endpoint" ]; then
	cat >&2 <<EOF
install.sh: this is a first install and no endpoint is set.
  The endpoint is the address your laptop or phone dials: this machine's public
  IP address or DNS name, and the UDP port ($listen_port). Run again with it, e.g.

    sudo sh $0 --endpoint 203.0.113.10:$listen_port

  or set WAAPPLIANCE_ENDPOINT=203.0.113.10:$listen_port. On a VPS use the public
  IP from your provider's panel; on a Raspberry Pi at home use your router's
  public IP or a dynamic-DNS name, and forward UDP $listen_port to the Pi.
EOF
	exit 1
fi
if [ -n "$endpoint" ]; then
	ep_port=${endpoint##*:}
	ep_host=${endpoint%:*}
	case "$endpoint:$ep_port" in
	*[[:space:]]* | *:: | *:*[!0-9]) die "--endpoint must be HOST:PORT (e.g. 203.0.113.10:51820, vpn.example.org:51820 or [2001:db8::1]:51820), got '$endpoint'" ;;
	esac
	[ -n "$ep_host" ] && [ "$ep_host" != "$endpoint" ] ||
		die "--endpoint must be HOST:PORT (e.g. 203.0.113.10:51820 or vpn.example.org:51820), got '$endpoint'"
fi

# ---------------------------------------------------------------- install
say "installing $version from $binary"

# The system user. On / it is created now; in a --root tree only the
# sysusers.d entry is written (systemd-sysusers creates it at boot).
mkdir -p "$R$(dirname "$SYSUSERS")"
printf '%s\n' "# waappliance service user (written by install.sh)" \
	"u $USER_NAME - \"waappliance WhatsApp HTTP API\" $STATE /usr/sbin/nologin" >"$R$SYSUSERS.tmp"
chmod 0644 "$R$SYSUSERS.tmp"
mv -f "$R$SYSUSERS.tmp" "$R$SYSUSERS"
if [ -z "$R" ]; then
	if ! getent passwd "$USER_NAME" >/dev/null 2>&1; then
		useradd --system --user-group --home-dir "$STATE" --no-create-home \
			--shell /usr/sbin/nologin --comment "waappliance WhatsApp HTTP API" "$USER_NAME" ||
			die "useradd $USER_NAME failed"
		say "created system user $USER_NAME"
	fi
else
	say "--root: not creating the user $USER_NAME here; $SYSUSERS creates it at the tree's first boot"
fi

# The binary: copy next to the target, then rename over it, so a running
# service keeps its old file until the restart below.
mkdir -p "$R$BIN_DIR"
cp "$binary" "$R$BIN_DIR/.$NAME.new"
chmod 0755 "$R$BIN_DIR/.$NAME.new"
mv -f "$R$BIN_DIR/.$NAME.new" "$R$BIN"
say "installed $BIN"

# The state directory.
mkdir -p "$R$STATE"
chmod 0700 "$R$STATE"

# Initialize a new state (as root, then handed to the service user).
if [ "$runnable" = 0 ]; then
	say "$binary does not run on this machine: init skipped. On the target, once booted, run:"
	echo "    sudo waappliance init --endpoint HOST:$listen_port --listen-port $listen_port && sudo waappliance peer add admin --scopes admin --qr && sudo systemctl restart $NAME"
elif [ "$initialized" = 1 ]; then
	say "state $STATE exists, so this is an upgrade: kept as it is (server key and peers unchanged), init skipped"
	[ -z "$endpoint" ] || echo "    (--endpoint is not applied on an upgrade; to change it: sudo waappliance set --endpoint $endpoint --state $STATE)"
else
	init_out=$(umask 077 && "$R$BIN" init --state "$R$STATE" --endpoint "$endpoint" --listen-port "$listen_port" 2>&1) ||
		{ echo "$init_out" >&2; die "waappliance init failed"; }
	echo "$init_out" | grep -v '^next:' | sed 's/^/==> /'
fi
fix_state() {
	find "$R$STATE" -type f -exec chmod 0600 {} + 2>/dev/null || true
	[ -n "$R" ] || chown -R "$USER_NAME:$USER_NAME" "$STATE"
}
fix_state

# The systemd unit.
if [ "$listen_port" -lt 1024 ]; then
	caps="CapabilityBoundingSet=CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_BIND_SERVICE"
	private_users="# PrivateUsers= is off: it would take away CAP_NET_BIND_SERVICE for port $listen_port"
else
	caps="CapabilityBoundingSet=
AmbientCapabilities="
	private_users="PrivateUsers=yes"
fi
if [ -n "$gomemlimit" ]; then
	memenv="Environment=GOMEMLIMIT=$gomemlimit"
else
	memenv="# No GOMEMLIMIT: --memory-max infinity"
fi
mkdir -p "$R$UNIT_DIR"
cat >"$R$UNIT.tmp" <<EOF
# waappliance: WhatsApp HTTP API reachable only through its own WireGuard.
# Written by install.sh; running install.sh again rewrites it.
# install.sh: listen-port=$listen_port memory-max=$memory_max
[Unit]
Description=waappliance (WhatsApp HTTP API behind its own WireGuard, UDP $listen_port)
After=network-online.target
Wants=network-online.target
# Not before init: an empty state is skipped at boot, not restarted in a loop.
ConditionDirectoryNotEmpty=$STATE

[Service]
Type=simple
User=$USER_NAME
Group=$USER_NAME
ExecStart=$BIN serve --state $STATE
Environment=WAAPPLIANCE_STATE=$STATE
$memenv
MemoryMax=$memory_max
Restart=on-failure
RestartSec=2s
TimeoutStopSec=30s
StateDirectory=$NAME
StateDirectoryMode=0700
ReadWritePaths=$STATE
UMask=0077

# Hardening: one UDP socket and a database is all the service needs.
$caps
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
DevicePolicy=closed
$private_users
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
KeyringMode=private
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
EOF
chmod 0644 "$R$UNIT.tmp"
unit_changed=1
if [ -f "$R$UNIT" ] && cmp -s "$R$UNIT.tmp" "$R$UNIT"; then unit_changed=0; fi
mv -f "$R$UNIT.tmp" "$R$UNIT"
[ "$unit_changed" = 0 ] || say "wrote $UNIT"

# Enable: the same symlink `systemctl enable` makes, so a --root tree starts
# the service at boot too.
mkdir -p "$R$(dirname "$WANTS")"
ln -sfn "$UNIT" "$R$WANTS"

if [ "$systemd_running" = 1 ]; then
	systemctl daemon-reload
	systemctl enable "$NAME.service" >/dev/null 2>&1 || true
	if [ "$no_start" = 1 ]; then
		say "--no-start: service enabled, not started; start it with: sudo systemctl start $NAME"
	else
		systemctl restart "$NAME.service"
		sleep 2
		if systemctl is-active --quiet "$NAME.service"; then
			say "service $NAME is running (sudo systemctl status $NAME; sudo journalctl -u $NAME)"
		else
			systemctl --no-pager status "$NAME.service" >&2 || true
			die "the service did not start; see: sudo journalctl -u $NAME"
		fi
	fi
elif [ -z "$R" ]; then
	say "systemd is not running here: start the appliance yourself with"
	echo "    sudo -u $USER_NAME $BIN serve --state $STATE"
else
	say "installed into $R (enabled for boot; nothing started)"
fi

created_admin=0
# The first peer, created by the CLI next to the running service (which
# picks it up within 2 seconds) or in the stopped state.
if [ "$runnable" = 1 ]; then
	peers=$("$R$BIN" peer list --json --state "$R$STATE") ||
		die "the state in $STATE exists but cannot be read (see above); move it away to start over, or restore it"
	case "$peers" in
	*'"name"'*)
		say "peers exist already; not creating one. Show a config again with: sudo waappliance peer config admin --qr" ;;
	*)
		created_admin=1
		say "creating the first peer 'admin' (scope admin)"
		echo
		echo "---- WireGuard config for your laptop/phone (shown once: the private key is not stored) ----"
		(umask 077 && "$R$BIN" peer add admin --scopes admin --qr --state "$R$STATE" 2>&1) ||
			die "waappliance peer add admin failed"
		echo "---- end of config ----"
		echo
		;;
	esac
	fix_state
fi
if [ "$systemd_running" = 1 ] && [ "$no_start" = 0 ]; then
	say "waappliance doctor:"
	"$BIN" doctor --state "$STATE" 2>&1 | sed 's/^/    /' || true
fi

if [ "$created_admin" = 1 ]; then
	cat <<EOF
==> done. Next steps:
    - open UDP port $listen_port to this machine (firewall, cloud security group, or router port forward)
    - on your laptop: save the config above as /etc/wireguard/wa.conf and run: sudo wg-quick up wa
      on a phone: scan the QR code in the WireGuard app
    - then: curl http://10.77.0.1/v1/whoami   (the appliance address is the AllowedIPs line above)
    - more peers: sudo waappliance peer add NAME --scopes send,read --qr
EOF
elif [ "$runnable" = 1 ]; then
	say "done: $version installed; state and peers kept (list them: sudo waappliance peer list)"
else
	say "done: files written into $R; finish on the target as shown above"
fi
