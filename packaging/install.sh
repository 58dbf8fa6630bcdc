#!/usr/bin/env bash
# Installs udr from a self-contained publish: the executable, the systemd units, an example configuration and the
# ipvsadm wrapper. Used by `./build.sh install` and by `./build.sh deb` (which stages into a package root).
#
#   packaging/install.sh --publish DIR [--prefix /usr/local] [--unit-dir DIR] [--destdir ROOT]
#
#   PREFIX/lib/udr/udr        the self-contained executable (no .NET needed on the host)
#   PREFIX/sbin/udr           a link to it
#   PREFIX/lib/udr/ipvsadm    the wrapper that makes `ipvsadm` mean `udr adm` (link it as ipvsadm where wanted)
#   UNIT-DIR/udr.service, udr-node@.service, udr-tunnel@.service
#                             (default /etc/systemd/system; the package uses /lib/systemd/system)
#   /etc/udr/udr.conf, /etc/udr/udr.rules   examples, never overwritten when present
#   PREFIX/share/doc/udr/README.md, PREFIX/share/man/man8/udr.8.gz
set -euo pipefail
cd "$(dirname "$0")/.."
PUBLISH="" PREFIX=/usr/local UNIT_DIR=/etc/systemd/system DESTDIR=""
while [ $# -gt 0 ]; do
    case "$1" in
        --publish) PUBLISH=$2; shift 2 ;;
        --prefix) PREFIX=$2; shift 2 ;;
        --unit-dir) UNIT_DIR=$2; shift 2 ;;
        --destdir) DESTDIR=$2; shift 2 ;;
        *) echo "install: unknown argument '$1' (--publish DIR [--prefix DIR] [--unit-dir DIR] [--destdir ROOT])" >&2; exit 2 ;;
    esac
done
[ -x "$PUBLISH/udr" ] || { echo "install: --publish DIR must hold a self-contained udr executable" >&2; exit 2; }
case "$PREFIX" in /*) ;; *) echo "install: --prefix must be an absolute path, not '$PREFIX'" >&2; exit 2 ;; esac

SBINDIR=$PREFIX/sbin LIBDIR=$PREFIX/lib/udr DOCDIR=$PREFIX/share/doc/udr SYSCONFDIR=/etc
install -d -m 0755 "$DESTDIR$LIBDIR" "$DESTDIR$SBINDIR" "$DESTDIR$DOCDIR" "$DESTDIR$UNIT_DIR" "$DESTDIR$SYSCONFDIR/udr"
install -m 0755 "$PUBLISH/udr" "$DESTDIR$LIBDIR/udr"
ln -sfn "../lib/udr/udr" "$DESTDIR$SBINDIR/udr"
# The wrapper names this installation's udr, so it works without udr on PATH.
sed "s|\${UDR:-udr}|\${UDR:-$SBINDIR/udr}|g" tools/ipvsadm > "$DESTDIR$LIBDIR/ipvsadm"
chmod 0755 "$DESTDIR$LIBDIR/ipvsadm"
for unit in udr.service udr-node@.service udr-tunnel@.service; do
    sed -e "s|@SBINDIR@|$SBINDIR|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" -e "s|@DOCDIR@|$DOCDIR|g" \
        "packaging/systemd/$unit.in" > "$DESTDIR$UNIT_DIR/$unit"
    chmod 0644 "$DESTDIR$UNIT_DIR/$unit"
done
for file in udr.conf udr.rules; do
    target="$DESTDIR$SYSCONFDIR/udr/$file"
    if [ -e "$target" ]; then
        echo "install: $SYSCONFDIR/udr/$file exists, left as it is" >&2
    else
        install -m 0644 "packaging/etc/$file" "$target"
    fi
done
install -m 0644 README.md "$DESTDIR$DOCDIR/README.md"
install -d -m 0755 "$DESTDIR$PREFIX/share/man/man8"
gzip -9n < packaging/man/udr.8 > "$DESTDIR$PREFIX/share/man/man8/udr.8.gz"
chmod 0644 "$DESTDIR$PREFIX/share/man/man8/udr.8.gz"
echo "installed udr $("$DESTDIR$LIBDIR/udr" --version) under ${DESTDIR:-/}, prefix $PREFIX, units in $UNIT_DIR"
