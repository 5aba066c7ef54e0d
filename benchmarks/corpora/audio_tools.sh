#!/bin/sh
# Unpack the baseline audio codecs (FLAC and WavPack reference tools, with their libraries)
# from Debian packages into a folder, without installing them (no root needed).
#
#     sh benchmarks/corpora/audio_tools.sh [DIR]     # default DIR: /work/tools
#
# dulzip/bench/baselines.py then finds flac, wavpack and wvunpack in DIR/usr/bin (or in the
# folder named by the environment variable DULZIP_TOOLS) and runs them with
# LD_LIBRARY_PATH=DIR/usr/lib/x86_64-linux-gnu.
set -eu
DIR=$(realpath -m "${1:-/work/tools}")
DEBS="$DIR/debs"
mkdir -p "$DEBS"
cd "$DEBS"
for pkg in flac libflac12 libogg0 wavpack libwavpack1; do
    ls "${pkg}"_*.deb >/dev/null 2>&1 || apt-get download "$pkg"
done
for deb in *.deb; do
    dpkg -x "$deb" "$DIR"
done
export LD_LIBRARY_PATH="$DIR/usr/lib/$(uname -m)-linux-gnu"
"$DIR/usr/bin/flac" --version
"$DIR/usr/bin/wavpack" --version | head -1
