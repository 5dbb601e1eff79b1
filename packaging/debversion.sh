#!/bin/sh
# debversion.sh VERSION COMMIT EPOCH: a Debian version from `git describe`.
# v1.2.0 -> 1.2.0, v1.2.0-3-gabc -> 1.2.0+3.gabc, -dirty -> +dirty; an
# untagged tree sorts below any tag: 0.0.0+git<commit time>.<commit>.
v=$1 commit=$2 epoch=$3
case "$v" in
v[0-9]*) echo "${v#v}" | sed -e 's/-\([0-9]*\)-g/+\1.g/' -e 's/-dirty$/+dirty/' ;;
*)
	d=$(date -u -d "@$epoch" +%Y%m%d%H%M%S)
	s=
	case "$v" in *-dirty) s=.dirty ;; esac
	echo "0.0.0+git$d.$commit$s"
	;;
esac
