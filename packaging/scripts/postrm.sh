#!/bin/sh
# postrm of the vigil package. `remove` keeps config and state; `purge`
# also deletes the state (journal, checkpoints, outbox, alert history) and
# the unit's enablement. The vigil user stays, as Debian leaves system
# users: files it owns elsewhere keep a valid owner.
set -e
root="${DPKG_ROOT:-}"
case "$1" in
remove)
	if [ -z "$root" ] && [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
	;;
purge)
	rm -f "$root/etc/systemd/system/multi-user.target.wants/vigil.service"
	rm -rf "$root/var/lib/vigil"
	if [ -z "$root" ] && [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
