"""zstd's command line, translated into dulzip's subcommands before click parses it.

Why: people type ``dulzip FILE``, ``dulzip -dc FILE.dlz | less``, ``cat x | dulzip > x.dlz``,
``dulzip -19 -r folder/``, as they do with zstd, gzip and xz (zstd's ``programs/zstdcli.c`` is
the reference). dulzip's subcommands (``compress``, ``decompress``, ``test``, ``list``) stay the
documented long form; this module maps the short form onto them:

* a mode letter anywhere (``-z`` compress, ``-d`` decompress, ``-t`` test, ``-l`` list, and their
  long names), combined with other letters (``-dc``, ``-dcf``, ``-kvT2``);
* digits are a level (``-3``, ``-19``, also inside a cluster: ``-9k``; ``--fast`` is 1,
  ``--best`` 9);
* no subcommand and no mode letter: compress;
* the short options that take a value (``-o``, ``-m``, ``-T``) take the rest of their cluster
  (``-T2``, ``-ofile``) or the next word;
* ``--`` ends the options: what follows are file names, even ``-d``.

Reading standard input when no file is named (and stdin is not a terminal) is the commands'
own business (see cli.py), as is refusing to write compressed data to a terminal.
"""
from __future__ import annotations

from dulzip.errors import UsageError

MODES = {"-z": "compress", "--compress": "compress",
         "-d": "decompress", "--decompress": "decompress", "--uncompress": "decompress",
         "-t": "test", "--test": "test",
         "-l": "list", "--list": "list"}
MODE_LETTERS = {"z": "compress", "d": "decompress", "t": "test", "l": "list"}
TAKES_VALUE = "omT"  # short options whose value may be attached (-T2) or the next word (-T 2)
GROUP_ONLY = {"-h", "--help", "-V", "--version"}  # without a command: the program's own help, version


def translate(argv: list[str], commands: set[str]) -> list[str]:
    """``argv`` (without the program name) -> a click command line: the subcommand first,
    short clusters split into single options, a level as ``--level N`` (compression only: a
    level given with -d, -t or -l is ignored, as zstd does, so that one alias serves both).
    Raises UsageError for two different modes."""
    words = list(argv)
    command = words.pop(0) if words and words[0] in commands else None
    if command is None and words and all(w in GROUP_ONLY for w in words):
        return words  # `dulzip --help`, `dulzip -V`
    out: list[str] = []
    level: int | None = None
    mode: str | None = None

    def set_mode(m: str) -> None:
        nonlocal mode
        if mode is not None and mode != m:
            raise UsageError(f"two modes asked for: {mode} and {m}")
        mode = m

    i = 0
    while i < len(words):
        w = words[i]
        i += 1
        if w == "--":
            out += words[i - 1:]
            break
        if w in MODES:
            set_mode(MODES[w])
        elif w in ("--fast", "--best"):
            level = 1 if w == "--fast" else 9
        elif w.startswith("--level="):
            level = _level(w.split("=", 1)[1])
        elif w == "--level" and i < len(words):
            level = _level(words[i])
            i += 1
        elif w.startswith("-") and not w.startswith("--") and len(w) > 1:
            j = 1
            while j < len(w):
                ch = w[j]
                if ch.isdigit():
                    k = j
                    while k < len(w) and w[k].isdigit():
                        k += 1
                    level = _level(w[j:k])
                    j = k
                    continue
                if ch in MODE_LETTERS:
                    set_mode(MODE_LETTERS[ch])
                elif ch in TAKES_VALUE:
                    out.append(f"-{ch}")
                    if j + 1 < len(w):
                        out.append(w[j + 1:])
                    elif i < len(words):
                        out.append(words[i])
                        i += 1
                    break
                else:
                    out.append(f"-{ch}")
                j += 1
        else:
            out.append(w)
    if command is not None and mode is not None and mode != command:
        raise UsageError(f"'{command}' and a {mode} option exclude each other")
    command = command or mode or "compress"
    if level is not None and command == "compress":
        out = ["--level", str(level)] + out
    return [command] + out


def _level(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"'{text}' is not a level (a number, e.g. -3)") from None
