#!/usr/bin/env bash
# `make setup`: everything the project needs on this machine, installed when missing.
#
#   system:  Python 3.11+ with venv, Java 17+, Maven, PostgreSQL server binaries
#            (apt-get, as root or through password-less sudo)
#   project: .venv with the project installed by uv (-e '.[dev]'),
#            the Kafka broker's jars in .stack/kafka-libs (Maven Central, stack/pom.xml)
#
# Idempotent and fast when nothing changed: the venv and the jars carry stamp files keyed on
# the hash of pyproject.toml and stack/pom.xml. When something cannot be provided, it stops
# with one sentence saying what is missing and how to provide it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
STATE="$ROOT/.stack"
mkdir -p "$STATE"
APT_LOG="$STATE/apt.log"
MVN_LOG="$STATE/mvn.log"
PIP_LOG="$STATE/pip.log"

die() {
    echo "setup: $*" >&2
    exit 1
}

# ----------------------------------------------------------------------------- apt-get

APT_UPDATED=0
SUDO=()

can_apt() {
    command -v apt-get >/dev/null 2>&1 || return 1
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        return 1
    fi
}

# apt_install PKG...: quiet, logged to .stack/apt.log; fails without a word (callers explain).
apt_install() {
    can_apt || return 1
    echo "setup: installing $* with apt-get (log: $APT_LOG)" >&2
    if [ "$APT_UPDATED" -eq 0 ]; then
        "${SUDO[@]}" apt-get update >>"$APT_LOG" 2>&1 || return 1
        APT_UPDATED=1
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "$@" >>"$APT_LOG" 2>&1
}

# ----------------------------------------------------------------------------- Python

python_ok() { # python_ok EXE: 3.11+ and able to make a venv with pip
    "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

venv_ok() {
    [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

if ! venv_ok; then
    PYTHON=${PYTHON:-python3}
    if ! python_ok "$PYTHON"; then
        apt_install python3 python3-venv || true
        python_ok "$PYTHON" || die "Python 3.11+ with venv is missing and could not be installed: install python3 and python3-venv (apt-get install python3 python3-venv) or set PYTHON to a Python 3.11+ interpreter."
    fi
    rm -rf .venv
    "$PYTHON" -m venv .venv >>"$PIP_LOG" 2>&1 || die "Creating .venv with $PYTHON failed (see $PIP_LOG); install python3-venv or set PYTHON to another Python 3.11+."
fi

# ----------------------------------------------------------------------------- Java, Maven

java_bin() {
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
        echo "$JAVA_HOME/bin/java"
    else
        command -v java 2>/dev/null || true
    fi
}

java_major() { # prints the major version of `java`, 0 when there is none
    local java version
    java=$(java_bin)
    [ -n "$java" ] || { echo 0; return; }
    version=$("$java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
    case "$version" in
        1.*) version=${version#1.} ;; # 1.8.0_x is Java 8
    esac
    echo "${version%%[!0-9]*}" | sed 's/^$/0/'
}

if [ "$(java_major)" -lt 17 ]; then
    apt_install openjdk-17-jre-headless || true
    [ "$(java_major)" -ge 17 ] || die "Java 17+ is missing (the local Kafka broker runs on it) and could not be installed: install openjdk-17-jre-headless (apt-get) or set JAVA_HOME to a Java 17+ runtime."
fi

if ! command -v mvn >/dev/null 2>&1; then
    apt_install maven || true
    command -v mvn >/dev/null 2>&1 || die "Maven is missing (it fetches the Kafka jars) and could not be installed: install it with apt-get install maven, or put mvn on the PATH."
fi

# ----------------------------------------------------------------------------- PostgreSQL

pg_bindir() {
    local initdb
    initdb=$(command -v initdb 2>/dev/null || true)
    if [ -n "$initdb" ]; then
        dirname "$(readlink -f "$initdb")"
        return
    fi
    # Debian keeps the server binaries off the PATH, one folder per major version.
    find /usr/lib/postgresql -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname
}

if [ -z "$(pg_bindir)" ]; then
    apt_install postgresql || true
    [ -n "$(pg_bindir)" ] || die "PostgreSQL server binaries (initdb, postgres) are missing and could not be installed: install them with apt-get install postgresql (as root) or put initdb on the PATH."
fi

# ----------------------------------------------------------------------------- test tools

# The admin panel's browser stories drive Debian's Chromium; the wallet tests verify passes
# with the openssl command, as Apple would.
if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
    apt_install chromium chromium-driver || true
    { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || die "Chromium and its driver are missing and could not be installed (the admin panel's browser tests need them): install them with apt-get install chromium chromium-driver (as root)."
fi
if ! command -v openssl >/dev/null 2>&1; then
    apt_install openssl || true
    command -v openssl >/dev/null 2>&1 || die "openssl is missing and could not be installed (the wallet tests verify pass signatures with it): install it with apt-get install openssl (as root)."
fi

# ----------------------------------------------------------------------------- the venv

hash_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ ! -x .venv/bin/uv ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check uv >>"$PIP_LOG" 2>&1 \
        || die "Installing uv into .venv from PyPI failed (see $PIP_LOG); check the network access to PyPI."
fi

VENV_STAMP=.venv/.loyalty-setup
want=$(hash_of pyproject.toml)
if [ "$(cat "$VENV_STAMP" 2>/dev/null || true)" != "$want" ] || [ ! -x .venv/bin/loyalty ]; then
    echo "setup: installing the project into .venv (uv pip install -e '.[dev]')" >&2
    .venv/bin/uv pip install --quiet --python .venv/bin/python -e '.[dev]' >>"$PIP_LOG" 2>&1 \
        || die "Installing the project into .venv failed (see $PIP_LOG); check pyproject.toml and the network access to PyPI."
    echo "$want" >"$VENV_STAMP"
fi

# ----------------------------------------------------------------------------- Kafka jars

LIBS="$STATE/kafka-libs"
LIBS_STAMP="$LIBS/.pom-sha256"
want=$(hash_of stack/pom.xml)
if [ "$(cat "$LIBS_STAMP" 2>/dev/null || true)" != "$want" ]; then
    echo "setup: fetching the Kafka jars from Maven Central (log: $MVN_LOG)" >&2
    tmp=$(mktemp -d "$STATE/kafka-libs.XXXXXX")
    # An absolute output folder: with -f, Maven resolves relative paths against stack/.
    if ! mvn -q -B -f stack/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$tmp" >"$MVN_LOG" 2>&1; then
        rm -rf "$tmp"
        die "Fetching the Kafka jars with Maven failed (see $MVN_LOG); check the network access to Maven Central."
    fi
    # Swap the folder whole, so a broken download never leaves half a classpath behind.
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    echo "$want" >"$LIBS_STAMP"
fi
