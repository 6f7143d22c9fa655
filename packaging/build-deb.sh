#!/usr/bin/env bash
# Builds target/debian/dvms_<version>_amd64.deb: static, size-tuned dvmsd and dvmsctl (cargo
# profile `dist`) plus the committed files of packaging/, assembled with dpkg-deb.
#
# Usage: packaging/build-deb.sh [--no-build]
#   --no-build  package the binaries already in target/x86_64-unknown-linux-gnu/dist/
#
# Why dpkg-deb rather than cargo-deb: cargo-deb would take minutes to compile on a 2-core machine
# before packaging anything, and it would still need hand-written maintainer scripts; dpkg-deb is
# part of dpkg, so a fresh Debian 12 machine has it, and the layout below is the whole recipe.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        *) echo "build-deb.sh: unknown argument '$arg' (usage: build-deb.sh [--no-build])" >&2; exit 64 ;;
    esac
done

TARGET=x86_64-unknown-linux-gnu
PROFILE=dist
BINDIR=target/$TARGET/$PROFILE
OUT=target/debian
STAGE=$OUT/stage

# The version is the workspace's; the Debian changelog must agree with it.
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
changelog_version=$(sed -n '1s/^dvms (\([^)]*\)).*/\1/p' packaging/debian/changelog)
if [ -z "$version" ] || [ "$version" != "$changelog_version" ]; then
    echo "build-deb.sh: workspace version '$version' differs from packaging/debian/changelog's '$changelog_version'" >&2
    exit 65
fi

if [ "$build" = 1 ]; then
    tools/setup.sh
    # glibc's static libraries (libc6-dev) give a fully static executable; --target keeps the flag
    # away from build scripts and proc macros, which must stay dynamic.
    echo "build-deb.sh: cargo build --profile $PROFILE --target $TARGET (static)" >&2
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --locked --profile "$PROFILE" --target "$TARGET" -p dvms-agent -p dvmsctl
fi
for bin in dvmsd dvmsctl; do
    if [ ! -x "$BINDIR/$bin" ]; then
        echo "build-deb.sh: $BINDIR/$bin missing (run without --no-build)" >&2
        exit 66
    fi
done

rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN"
inst() { # mode, source, destination inside the package
    install -D -m "$1" "$2" "$STAGE$3"
}
inst 0755 "$BINDIR/dvmsd" /usr/bin/dvmsd
inst 0755 "$BINDIR/dvmsctl" /usr/bin/dvmsctl
# The linker's .comment notes (compiler versions) are of no use at run time.
objcopy --remove-section=.comment "$STAGE/usr/bin/dvmsd"
objcopy --remove-section=.comment "$STAGE/usr/bin/dvmsctl"
inst 0644 packaging/dvms.toml /etc/dvms/dvms.toml
inst 0644 packaging/dvmsd.service /lib/systemd/system/dvmsd.service
for page in packaging/man/*.[0-9]; do
    section=${page##*.}
    inst 0644 "$page" "/usr/share/man/man$section/$(basename "$page")"
    gzip -9n "$STAGE/usr/share/man/man$section/$(basename "$page")"
done
inst 0644 packaging/completions/dvmsd.bash /usr/share/bash-completion/completions/dvmsd
inst 0644 packaging/completions/dvmsctl.bash /usr/share/bash-completion/completions/dvmsctl
inst 0644 packaging/debian/lintian-overrides /usr/share/lintian/overrides/dvms
inst 0644 packaging/debian/changelog /usr/share/doc/dvms/changelog
gzip -9n "$STAGE/usr/share/doc/dvms/changelog"

# copyright: ours, then every crate linked into the two binaries with its declared license.
{
    cat packaging/debian/copyright
    echo
    echo "Files: statically linked Rust crates (in /usr/bin/dvmsd and /usr/bin/dvmsctl)"
    echo "Copyright: their authors"
    echo "License: see each crate"
    echo "Comment: crate, version, declared license:"
    cargo tree --locked --target "$TARGET" -e normal -p dvms-agent -p dvmsctl --prefix none \
        --format '{p} {l}' 2>/dev/null |
        sed -e 's/ (.*)//' -e 's/ (\*)$//' | grep -v -e '^dvms' -e '^$' | sort -u | sed 's/^/ /'
} > "$STAGE/usr/share/doc/dvms/copyright"
chmod 0644 "$STAGE/usr/share/doc/dvms/copyright"

for script in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$script" "$STAGE/DEBIAN/$script"
done
install -m 0644 packaging/debian/conffiles "$STAGE/DEBIAN/conffiles"
installed_size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
    packaging/debian/control.in > "$STAGE/DEBIAN/control"
# md5sums of everything but DEBIAN/ and the conffiles (dpkg keeps their sums itself).
(cd "$STAGE" && find . \( -path ./DEBIAN -o -path ./etc \) -prune -o -type f -printf '%P\0' |
    LC_ALL=C sort -z |
    xargs -0 md5sum) > "$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/md5sums"

deb="$OUT/dvms_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$deb" >/dev/null
echo "$deb"
