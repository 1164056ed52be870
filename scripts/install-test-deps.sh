#!/usr/bin/env bash
# Debian packages some tests need, installed only when missing. Needs root and apt-get;
# without them this says what it could not install, and the tests that need it skip,
# saying why. One line per package set, named by the command it provides.
set -u
updated=""

need() {  # need <command> <package>...
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "install-test-deps: no $1, and cannot install ${*:2} (needs root and apt-get)" >&2
        return 0
    fi
    if [ -z "$updated" ]; then
        apt-get update -qq >/dev/null && updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${@:2}" >/dev/null \
        || echo "install-test-deps: installing ${*:2} failed" >&2
}

need chromium chromium fonts-dejavu-core  # the dashboard test's headless browser
need faketime faketime  # the health test of a node whose clock runs ahead
need dnsmasq dnsmasq-base  # the DNS server the DNS-seed test changes records in
need nft nftables  # packet loss and one-way partitions between namespace hosts (chaos)
