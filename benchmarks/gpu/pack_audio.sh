#!/usr/bin/env bash
# The pack that benchmarks/gpu/session.py --modality audio trains from on a lent GPU: the audio corpora
# as FLAC (speech-train, the first 8 files of speech-test, every 12th file of music-train: about
# 25 MB, within what
# travels to the GPU machine) and a flac binary with its libraries to restore them there.
#   bash benchmarks/gpu/pack_audio.sh data/audio /work/tools .carry/audio/pack.tar
set -euo pipefail
src=$(realpath "${1:-data/audio}"); tools=${2:-/work/tools}; out=${3:-.carry/audio/pack.tar}
tmp=$(mktemp -d)
mkdir -p "$tmp/tools/lib" "$tmp/speech-train" "$tmp/speech-test" "$tmp/music-train"
cp "$tools/usr/bin/flac" "$tmp/tools/"
cp -L "$tools"/usr/lib/x86_64-linux-gnu/libFLAC.so.12 "$tools"/usr/lib/x86_64-linux-gnu/libogg.so.0 "$tmp/tools/lib/"
export LD_LIBRARY_PATH="$tools/usr/lib/x86_64-linux-gnu"
enc() { "$tools/usr/bin/flac" -s -8 -f -o "$tmp/$1.flac" "$src/$1"; }
export -f enc; export tmp src tools
(cd "$src" && ls speech-train/*.wav && ls speech-test/*.wav | head -8 && ls music-train/*.wav | awk 'NR % 12 == 1') |
    xargs -P2 -I{} bash -c 'enc {}'
mkdir -p "$(dirname "$out")"
tar -C "$tmp" -cf "$out" .
rm -rf "$tmp"
du -h "$out"
