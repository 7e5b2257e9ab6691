#!/bin/sh
# The validators `make test` runs on the desktop entry and the metainfo: desktop-file-validate
# (desktop-file-utils) and appstreamcli (appstream). Installs them on Debian/Ubuntu as root;
# elsewhere says which packages to install.
set -eu

missing=
command -v desktop-file-validate >/dev/null 2>&1 || missing="$missing desktop-file-utils"
command -v appstreamcli >/dev/null 2>&1 || missing="$missing appstream"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing$missing (validators for the desktop entry and the metainfo)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends $missing >/dev/null
    }
    exit 0
fi
echo "berth: please install$missing (the desktop entry and metainfo validators), e.g. with your package manager" >&2
exit 1
