#!/bin/sh
# prerm of the vigil package: stop the daemon before its binary goes away.
# On upgrade, postinst restarts it; stopping here would lose nothing either
# (SIGTERM writes a final checkpoint), but keeps the gap short.
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl stop vigil.service >/dev/null 2>&1 || true
fi
exit 0
