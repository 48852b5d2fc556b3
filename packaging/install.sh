#!/bin/sh
# Installs the RPyC Explorer bundle (dist/rpyc-explorer/, or the folder this script
# sits in) with a launcher, a desktop entry and icons, and uninstalls it again.
#
#   install.sh                     per user: ~/.local/lib/rpyc-explorer, ~/.local/bin,
#                                  ~/.local/share/applications, ~/.local/share/icons
#   install.sh --system            for every user (as root): /opt/rpyc-explorer,
#                                  /usr/local/bin, /usr/share/applications, /usr/share/icons
#   install.sh --prefix DIR        per-user layout below DIR (DIR/lib, DIR/bin, DIR/share)
#   install.sh --destdir DIR       put every path below DIR (for packagers and tests)
#   install.sh --uninstall [...]   remove exactly what the install wrote, from its manifest
#   install.sh --bundle DIR        install this bundle folder
#
# The manifest (.install-manifest in the installed bundle folder) lists every file,
# link and folder the install created; --uninstall removes those and nothing else.
# Installing again first uninstalls the previous install through its manifest.
set -eu

APP=rpyc-explorer
MANIFEST_NAME=.install-manifest

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

mode=user
prefix=""
destdir=""
bundle=""
action=install
while [ $# -gt 0 ]; do
    case "$1" in
        --system) mode=system ;;
        --user) mode=user ;;
        --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; prefix=$2; shift ;;
        --destdir) [ $# -ge 2 ] || die "--destdir needs a folder"; destdir=$2; shift ;;
        --bundle) [ $# -ge 2 ] || die "--bundle needs a folder"; bundle=$2; shift ;;
        --uninstall) action=uninstall ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1'; see --help" ;;
    esac
    shift
done

if [ -n "$prefix" ]; then
    case "$prefix" in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
    libdir=$prefix/lib/$APP
    bindir=$prefix/bin
    sharedir=$prefix/share
elif [ "$mode" = system ]; then
    libdir=/opt/$APP
    bindir=/usr/local/bin
    sharedir=/usr/share
else
    [ -n "${HOME:-}" ] || die "HOME is not set; use --prefix DIR"
    libdir=$HOME/.local/lib/$APP
    bindir=$HOME/.local/bin
    sharedir=${XDG_DATA_HOME:-$HOME/.local/share}
fi
if [ -n "$destdir" ]; then
    case "$destdir" in /*) ;; *) destdir=$(pwd)/$destdir ;; esac
fi
root_libdir=$destdir$libdir
manifest=$root_libdir/$MANIFEST_NAME

work_manifest=""

# Creates a folder and its missing parents, recording each one it created.
make_dir() {
    [ -d "$1" ] && return 0
    make_dir "$(dirname "$1")"
    mkdir "$1"
    echo "d $1" >>"$work_manifest"
}

install_file() {  # source target mode
    make_dir "$(dirname "$2")"
    cp "$1" "$2"
    chmod "$3" "$2"
    echo "f $2" >>"$work_manifest"
}

refresh_caches() {
    # Only refresh caches that already exist, so an install never leaves a cache
    # file that its uninstall would not remove.
    icons=$destdir$sharedir/icons/hicolor
    if [ -f "$icons/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q "$icons" || true
    fi
    apps=$destdir$sharedir/applications
    if [ -f "$apps/mimeinfo.cache" ] && command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$apps" || true
    fi
}

uninstall() {
    [ -f "$manifest" ] || die "nothing to uninstall: $manifest not found"
    listing=$(mktemp)
    cp "$manifest" "$listing"
    # Files and links first, then folders deepest first, each only if still ours.
    grep -E '^[fl] ' "$listing" | cut -c3- | while IFS= read -r path; do
        if [ -L "$path" ] || [ -f "$path" ]; then rm -f "$path"; fi
    done
    rm -f "$manifest"
    grep -E '^d ' "$listing" | cut -c3- | sort -r | while IFS= read -r path; do
        if [ -d "$path" ]; then
            rmdir "$path" 2>/dev/null || echo "install.sh: kept $path: it has files this install did not write" >&2
        fi
    done
    rm -f "$listing"
    refresh_caches
    echo "Uninstalled $APP from $root_libdir"
}

find_bundle() {
    if [ -n "$bundle" ]; then
        echo "$bundle"
        return
    fi
    here=$(cd "$(dirname "$0")" && pwd)
    if [ -x "$here/$APP" ] && [ -d "$here/_internal" ]; then
        echo "$here"
    else
        echo "$here/../dist/$APP"
    fi
}

install_bundle() {
    source_dir=$(find_bundle)
    [ -x "$source_dir/$APP" ] || die "no bundle at $source_dir; build it with: python packaging/build.py"
    source_dir=$(cd "$source_dir" && pwd)
    if [ -f "$manifest" ]; then
        uninstall >/dev/null
    fi
    [ ! -e "$root_libdir" ] || die "$root_libdir exists but has no $MANIFEST_NAME; remove it first"
    work_manifest=$(mktemp)

    make_dir "$(dirname "$root_libdir")"
    cp -R "$source_dir" "$root_libdir"
    echo "d $root_libdir" >>"$work_manifest"
    (cd "$root_libdir" && find . -mindepth 1 -type d) | sed "s|^\./|d $root_libdir/|" >>"$work_manifest"
    (cd "$root_libdir" && find . ! -type d) | sed "s|^\./|f $root_libdir/|" >>"$work_manifest"

    make_dir "$destdir$bindir"
    ln -sf "$libdir/$APP" "$destdir$bindir/$APP"
    echo "l $destdir$bindir/$APP" >>"$work_manifest"

    desktop=$destdir$sharedir/applications/$APP.desktop
    make_dir "$(dirname "$desktop")"
    # Desktop sessions often lack ~/.local/bin in PATH, so Exec names the launcher.
    sed -e "s|^Exec=.*|Exec=$bindir/$APP|" -e "s|^TryExec=.*|TryExec=$bindir/$APP|" \
        "$source_dir/share/applications/$APP.desktop" >"$desktop"
    chmod 644 "$desktop"
    echo "f $desktop" >>"$work_manifest"

    for icon in $(cd "$source_dir/share/icons/hicolor" && find . -type f | sed 's|^\./||'); do
        install_file "$source_dir/share/icons/hicolor/$icon" "$destdir$sharedir/icons/hicolor/$icon" 644
    done
    mv "$work_manifest" "$manifest"
    chmod 644 "$manifest"
    refresh_caches
    echo "Installed $APP in $root_libdir; start it with $bindir/$APP or from the desktop menu"
}

if [ "$action" = uninstall ]; then
    uninstall
else
    install_bundle
fi
