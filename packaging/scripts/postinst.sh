#!/bin/sh
# postinst of the vigil package: the system user, the state directory, the
# unit. Honours DPKG_ROOT, so `dpkg --root=DIR --force-script-chrootless`
# (the package test) installs into DIR without touching the host.
set -e

root="${DPKG_ROOT:-}"

case "$1" in
configure) ;;
abort-upgrade|abort-remove|abort-deconfigure) exit 0 ;;
*) exit 0 ;;
esac

# The system user. systemd-sysusers reads /usr/lib/sysusers.d/vigil.conf and
# does nothing when the user exists; adduser is for systems without it.
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers ${root:+--root="$root"} vigil.conf
elif [ -z "$root" ]; then
	adduser --system --group --home /var/lib/vigil --no-create-home \
		--shell /usr/sbin/nologin --gecos "vigil stream processor" --quiet vigil
else
	echo "vigil: no systemd-sysusers to create the vigil user under $root" >&2
	exit 1
fi

# The state directory, owned by vigil. Look the ids up in the target's
# passwd, not the host's (chrootless installs).
uid=$(awk -F: '$1 == "vigil" { print $3 }' "$root/etc/passwd")
gid=$(awk -F: '$1 == "vigil" { print $3 }' "$root/etc/group")
if [ ! -d "$root/var/lib/vigil" ]; then
	mkdir -p "$root/var/lib/vigil"
fi
chown "$uid:$gid" "$root/var/lib/vigil"
chmod 0750 "$root/var/lib/vigil"

# Enable on first install only: an admin's `systemctl disable vigil` must
# survive upgrades. `systemctl --root` works without a running systemd.
if [ -z "$2" ] && command -v systemctl >/dev/null 2>&1; then
	systemctl ${root:+--root="$root"} enable vigil.service >/dev/null 2>&1 || true
fi

# Start or restart it only on a live systemd host.
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
	if [ -z "$2" ]; then
		systemctl start vigil.service ||
			echo "vigil: not started; see: journalctl -u vigil" >&2
	else
		# An upgrade: restart a running vigil with the new binary. Its state
		# (checkpoints, journal, outbox) carries over in /var/lib/vigil.
		systemctl try-restart vigil.service ||
			echo "vigil: restart failed; see: journalctl -u vigil" >&2
	fi
fi
exit 0
