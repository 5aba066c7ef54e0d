#!/bin/bash
# Runs every tool/preset sequentially (one process at a time).
set -x
F="speech-heldout music-heldout"
python3 "$(dirname "$0")/bench.py" flac -8 $F
python3 "$(dirname "$0")/bench.py" mac -c4000 $F
python3 "$(dirname "$0")/bench.py" mac -c5000 $F
python3 "$(dirname "$0")/bench.py" sac --normal $F
# added after the first pass: newer Monkey's Audio (11.57)
python3 "$(dirname "$0")/bench.py" mac11 -c4000 $F
python3 "$(dirname "$0")/bench.py" mac11 -c5000 $F
