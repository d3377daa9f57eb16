# Sourced by the fetch scripts: a private apt setup for Debian "trixie" under $1 (a temporary folder),
# with the archive address taken from this machine's own apt configuration (deb822 or one-line form),
# so that no registry host is written into the repository and the system's apt state stays untouched.
#   trixie_apt TMP "deb deb-src" "what to set instead, if no archive is found"
# Sets the array apt_opts (for apt-get) and runs apt-get update with it.
trixie_apt() {
    local tmp=$1 types=$2 instead=$3 sources uri keyring
    sources=$(ls /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)
    uri=$(grep -h -E '^URIs:' $sources 2>/dev/null | grep -i debian | grep -v security | head -n 1 | awk '{print $2}')
    if [ -z "$uri" ]; then
        uri=$(grep -h -E '^deb ' $sources 2>/dev/null | grep -v security | awk '{print $2}' | grep -i debian | head -n 1)
    fi
    keyring=$(grep -h -E '^Signed-By:' $sources 2>/dev/null | head -n 1 | awk '{print $2}')
    [ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    if [ -z "$uri" ]; then
        echo "error: no Debian archive found in the apt configuration; $instead" >&2
        exit 1
    fi
    mkdir -p "$tmp/parts" "$tmp/lists/partial" "$tmp/dl"
    cat > "$tmp/parts/trixie.sources" <<EOS
Types: $types
URIs: $uri
Suites: trixie
Components: main
Signed-By: $keyring
EOS
    apt_opts=(-o Dir::Etc::SourceList=/dev/null  -o "Dir::Etc::SourceParts=$tmp/parts"
              -o "Dir::State::Lists=$tmp/lists" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
    apt-get "${apt_opts[@]}" -qq update
}
