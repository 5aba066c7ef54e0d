"""The ``dulzip`` command: zstd's conventions (see README)."""
from __future__ import annotations

import json
import os
import re
import signal
import shlex
import sys
import time
import traceback
import warnings
from pathlib import Path

import click

from dulzip import __version__
from dulzip.errors import DulzipError, DulzipWarning, UsageError
from dulzip.argv import translate
from dulzip.formats import sniff
from dulzip.outfile import Counted, atomic_output, same_file, writes_through

SUFFIX = ".dlz"


class Failure(Exception):
    """One input failed; the message is already user-facing."""


class Stopped(BaseException):
    """A signal (SIGINT, SIGTERM) asked dulzip to stop. Raised in the main thread, and not an
    Exception nor a KeyboardInterrupt (which click would turn into "Aborted!"), so that every
    ``with`` block unwinds, temporary files removed, up to ``entry``: exit 128 + the signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.code = 128 + signum
        self.message = "interrupted" if signum == signal.SIGINT else "terminated"


def _stop(signum, frame) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second one ends at once (the next run removes what it left)
    raise Stopped(signum)


def _check_input(name: str) -> Path:
    p = Path(name)
    if p.is_dir():
        raise Failure("is a directory")
    if not p.exists():
        raise Failure("no such file")
    return p


def _read_input(name: str) -> bytes:
    return sys.stdin.buffer.read() if name == "-" else _check_input(name).read_bytes()


def _streams(name: str, model: str) -> bool:
    """Compress this input in a stream (``sniff.streamed``; standard input and special files
    are read whole)."""
    if name == "-" or not Path(name).is_file():
        return False
    with open(name, "rb") as f:
        return sniff.streamed(f.read(12), Path(name).stat().st_size, model)


class _Null:
    def write(self, data: bytes) -> None:
        pass


def _inputs(inputs, recursive: bool, compressed: bool, quiet: bool) -> list[str]:
    """The files to work on. None named: standard input ('-'), unless it is a terminal (zstd's
    rule: nobody types compressed data). ``recursive`` (-r): a folder stands for the regular
    files under it (symbolic links not followed), in a stable order; when ``compressed`` (to
    decompress, test or list) only the .dlz ones, else every file but those, which already are
    (zstd skips files with its suffix too, and says so with -v)."""
    if not inputs:
        if sys.stdin.isatty():
            raise click.UsageError("no input files, and standard input is a terminal (dulzip --help)")
        return ["-"]
    if not recursive:
        return list(inputs)
    out = []
    for name in inputs:
        if name == "-" or not os.path.isdir(name) or os.path.islink(name):
            out.append(name)
            continue
        for root, dirs, files in os.walk(name):
            dirs.sort()
            for f in sorted(files):
                path = os.path.join(root, f)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                if f.endswith(SUFFIX) != compressed:
                    if not compressed and not quiet:
                        click.echo(f"dulzip: {path}: already has the {SUFFIX} suffix; ignored", err=True)
                    continue
                out.append(path)
    return out


def _run_each(inputs, verbose: int, fn, quiet: bool = False) -> None:
    """Run ``fn`` on every input; go on past failures, report each, exit 1 if any failed.
    Warnings (:class:`DulzipWarning`) raised on the way are printed as one line each, with the
    input's name, unless ``quiet``."""
    failed = 0
    for name in inputs:
        try:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always", DulzipWarning)
                try:
                    fn(name)
                finally:
                    for w in said:
                        if issubclass(w.category, DulzipWarning) and not quiet:
                            click.echo(f"dulzip: {name}: {w.message}", err=True)
                        elif not issubclass(w.category, DulzipWarning):
                            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        except (Failure, DulzipError, OSError, MemoryError) as e:
            failed += 1
            msg = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or "out of memory"
            click.echo(f"dulzip: {name}: {msg}", err=True)
        except KeyboardInterrupt:
            click.echo("dulzip: interrupted", err=True)
            sys.exit(130)
        except Exception as e:  # a bug (RecursionError too): still one line, and the next file
            failed += 1
            _internal_error(e, verbose, name)
    if failed:
        if len(inputs) > 1:
            click.echo(f"dulzip: {failed} of {len(inputs)} files failed", err=True)
        sys.exit(1)


def _internal_error(e: BaseException, verbose: int, name: str | None = None) -> None:
    """A bug, not the user's doing: one line that says so, not a traceback a user would take
    for the answer; with -v the traceback first (for a bug report)."""
    if verbose:
        click.echo("".join(traceback.format_exception(e)).rstrip(), err=True)
    text = " ".join(str(e).split())[:300]  # one line, whatever the message holds
    hint = "" if verbose else " (run with -v for a traceback)"
    where = f"{name}: " if name else ""
    click.echo(f"dulzip: {where}internal error: {type(e).__name__}: {text}{hint}", err=True)


def _check_output(name: str, out: Path | None, force: bool) -> bool:
    """Refuse, before any work, an output that would lose data: the input itself (through a
    link too), an existing file without -f, a symbolic link, a directory (see
    outfile.writes_through). Returns whether ``out`` will be a regular file of ours: only then
    may --rm delete the source (never after writing into /dev/null, a FIFO or standard output)."""
    if out is None:
        return False
    if name != "-" and same_file(name, out):
        raise Failure(f"the output {out} is the input file itself; refused")
    return not writes_through(out, force)


def _warn_memory(name: str, header: dict) -> None:
    """Say when the file just made needs more memory to decode than the default limit allows."""
    from dulzip import api
    from dulzip.schema import DEFAULT_MAX_MEMORY
    need = api.memory_needed(header)
    if need > DEFAULT_MAX_MEMORY:
        click.echo(f"dulzip: {name}: decoding it will need about {need / 2**30:.1f} GiB, above the default limit: "
                   f"decompress with --max-memory {-(-need // 2**30)}G", err=True)


def _kept_note(name: str, out: Path, quiet: bool) -> None:
    if not quiet:
        click.echo(f"dulzip: {name}: source kept ({out} is not a regular file)", err=True)


def _options(model="auto", exact=True, device="auto", threads=0, progress=False, tile=None, max_memory=None):
    from dulzip.api import Options
    opts = Options(model=model, exact=exact, device=device, threads=threads, tile=tile, progress=progress)
    if max_memory is not None:
        opts.max_memory = max_memory
    return opts


class ByteSize(click.ParamType):
    """A size in bytes: 4G, 512M, 1.5GiB, 300000 (K, M, G, T: powers of 1024)."""
    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(value).lower())
        if not m:
            self.fail(f"{value!r} is not a size (e.g. 4G, 512M)", param, ctx)
        return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


MAX_MEMORY = click.option("--max-memory", type=ByteSize(), default=None,
                          help="Refuse to decode a file that needs more memory than this (default 2G).")


def _show_progress(quiet: bool, no_progress: bool) -> bool:
    return not quiet and not no_progress and sys.stderr.isatty()


common = [
    click.option("-o", "--output", type=click.Path(path_type=Path), help="Output file (one input only)."),
    click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write to standard output."),
    click.option("-f", "--force", is_flag=True, help="Overwrite existing output files."),
    click.option("--rm", "remove", is_flag=True, help="Remove the source after a verified write."),
    click.option("-k", "--keep", is_flag=True, help="Keep the source (the default)."),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
    click.option("-T", "--threads", type=click.IntRange(0, 1024), default=0, help="CPU threads (0: default)."),
    click.option("-q", "--quiet", is_flag=True),
    click.option("-v", "--verbose", count=True),
    click.option("--no-progress", is_flag=True, help="No progress bar."),
    MAX_MEMORY,
]


def with_common(f):
    for opt in reversed(common):
        f = opt(f)
    return f


def _check_outputs(inputs, output, to_stdout) -> tuple[Path | None, bool]:
    """(output file, to standard output): ``-o -`` is standard output, as in zstd."""
    if output is not None and str(output) == "-":
        output, to_stdout = None, True
    if output is not None and len(inputs) > 1:
        raise click.UsageError("-o takes one input file")
    if output is not None and to_stdout:
        raise click.UsageError("-o and -c exclude each other")
    return output, to_stdout


RECURSIVE = click.option("-r", "--recursive", is_flag=True, help="Work on the files inside the folders named.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="dulzip")
def main() -> None:
    """Lossless compression with exact-integer neural models (PixelCNN, a flow and MADE for
    images, a char-RNN mixed with adaptive context models for text, a WaveNet for WAV audio)
    and a range coder; anything else through zstd.

    \b
    dulzip photo.png               -> photo.png.dlz (also: dulzip compress photo.png)
    dulzip -d photo.png.dlz        -> photo.png     (also: dulzip decompress ...)
    dulzip -dc x.dlz | less        to standard output; cat x | dulzip > x.dlz
    dulzip -t x.dlz / -l x.dlz     verify / list;  -r: the files in folders

    As with zstd: -d, -c, -f, -k, -q, -v, -o, -T combine anywhere (-dcf), -# is a level.
    """


@main.command()
@click.argument("inputs", nargs=-1)
@click.option("-m", "--model", default="auto", show_default=True, help="Model name, 'auto' or 'zstd'.")
@click.option("--level", type=click.IntRange(1, 19), default=None, metavar="N",
              help="Speed against ratio, also -1 .. -19, --fast (1), --best (9): 1-3 fast (images: the flow, "
                   "seconds), 4-6 by the input's size (the default: the PixelCNN up to 128 tiles of 64x64, the "
                   "flow above), 7-19 the most compact (images: the PixelCNN at every size, minutes for "
                   "photographs). Text and audio have one coder each: the same at every level.")
@click.option("--reencode", is_flag=True,
              help="PNG: where zlib does not reproduce the file's stream, restore the same pixels and chunks with a "
                   "fresh zlib stream (not byte-identical; smaller by the stream's description: 1-2% for photographs "
                   "from zopflipng, up to ~20% for optimized icons and diagrams).")
@click.option("--exact", is_flag=True, hidden=True, help="Byte for byte: the default (kept for scripts).")
@click.option("--tile", type=click.IntRange(4, 1024), default=None, help="Image tile size (default: the model's, 64; idf 256).")
@click.option("--model-only", is_flag=True, hidden=True, help="Never fall back to zstd (tests, benchmarks).")
@RECURSIVE
@with_common
def compress(inputs, model, level, reencode, exact, tile, model_only, recursive, output, to_stdout, force, remove, keep,
             device, threads, quiet, verbose, no_progress, max_memory):
    """Compress files (FILE -> FILE.dlz; none or '-': standard input to standard output)."""
    from dulzip import api
    inputs = _inputs(inputs, recursive, False, quiet)
    output, to_stdout = _check_outputs(inputs, output, to_stdout)
    if reencode and exact:
        raise click.UsageError("--reencode and --exact contradict each other")
    opts = _options(model, not reencode, device, threads, _show_progress(quiet, no_progress), tile)
    opts.fallback = not model_only
    opts.level = level
    # --rm decodes before removing: a file just made is trusted whatever its decode needs
    verify_opts = _options(device=device, threads=threads, max_memory=max_memory or 1 << 62)

    def one(name: str) -> None:
        to_out = to_stdout or (name == "-" and output is None)
        if to_out and sys.stdout.isatty():
            raise Failure("refusing to write compressed data to a terminal (use -o or redirect)")
        out = None if to_out else (output or Path(name + SUFFIX))
        if name != "-":
            _check_input(name)
        removes = _check_output(name, out, force) and remove and name != "-"
        like = _stat(name)  # the output takes the input's mode and times (as they were before reading)
        t0 = time.perf_counter()
        if _streams(name, opts.model):
            size = Path(name).stat().st_size
            with open(name, "rb") as src, atomic_output(out, force, like) as f:
                f = Counted(f)
                header = api.compress_stream(src, f, opts, size)
                if removes:  # verify before the source goes
                    f.flush()
                    with open(f.name, "rb") as check:
                        api.decompress_stream(check, _Null(), verify_opts)
            size_in, size_out = size, f.n
        else:
            with atomic_output(out, force, like) as f:  # opened first, as zstd does: an unwritable output fails before the work
                data = _read_input(name)
                blob = api.compress(data, opts)
                if removes and api.decompress(blob, verify_opts) != data:
                    raise Failure("verification failed; source kept")
                f.write(blob)
            size_in, size_out = len(data), len(blob)
            header = api.describe(blob)
            if not quiet:
                _warn_memory(name, header)
        if not quiet and header.get("exact") is False:
            click.echo(f"dulzip: {name}: decompresses to the same image, not the same bytes (--reencode: its zlib "
                       "stream is re-encoded)", err=True)
        if verbose or (not quiet and out is not None):
            click.echo(_summary(name, header, size_in, size_out, out, time.perf_counter() - t0, verbose), err=True)
        if removes:
            os.unlink(name)
        elif remove and name != "-" and out is not None:
            _kept_note(name, out, quiet)

    _run_each(inputs, verbose, one, quiet)


def _stat(name: str) -> os.stat_result | None:
    try:
        return None if name == "-" else os.stat(name)
    except OSError:
        return None  # reported when it is opened


def _dims(h: dict) -> tuple[int, str]:
    """(symbols the model coded, their name) of a header: sub-pixels, samples or bytes."""
    lay = h.get("layout") or {}
    if "height" in lay:
        return lay["height"] * lay["width"] * lay["channels"], "bits/sub-pixel"
    if "frames" in lay:
        return lay["frames"] * lay["channels"], "bits/sample"
    return int(h.get("length") or 0), "bits/byte"


def _summary(name: str, h: dict, size_in: int, size_out: int, out: Path | None, seconds: float,
             verbose: int) -> str:
    """One line per file, as zstd prints: sizes and ratio; with -v the coder, bits per
    dimension and time as well."""
    where = out if out is not None else "stdout"
    line = f"{name}: {size_in:,} -> {size_out:,} bytes ({100.0 * size_out / max(1, size_in):.2f}%) {where}"
    if not verbose:
        return line
    lay = h.get("layout") or {}
    model = (h.get("model") or {}).get("name") or next((c for c in ("image16", "cascade") if c in lay), "zstd")
    n, unit = _dims(h)
    rate = f", {8 * size_out / n:.3f} {unit}" if n else ""
    speed = f", {size_in / 2**20 / seconds:.2f} MiB/s" if seconds > 0 and size_in else ""
    return f"{line}  [{model}, {h.get('kind')}{rate}, {seconds:.2f} s{speed}]"


def _decompressed_name(name: str) -> Path:
    if not name.endswith(SUFFIX) or len(name) == len(SUFFIX):
        raise Failure(f"unknown suffix (expected {SUFFIX}); use -o to name the output")
    return Path(name[:-len(SUFFIX)])


@main.command()
@click.argument("inputs", nargs=-1)
@RECURSIVE
@with_common
def decompress(inputs, recursive, output, to_stdout, force, remove, keep, device, threads, quiet, verbose,
               no_progress, max_memory):
    """Decompress .dlz files (FILE.dlz -> FILE; none or '-': standard input to standard output)."""
    from dulzip import api
    inputs = _inputs(inputs, recursive, True, quiet)
    output, to_stdout = _check_outputs(inputs, output, to_stdout)
    opts = _options(device=device, threads=threads, progress=_show_progress(quiet, no_progress),
                    max_memory=max_memory)

    def one(name: str) -> None:
        to_out = to_stdout or (name == "-" and output is None)
        out = None if to_out else (output or _decompressed_name(name))
        removes = _check_output(name, out, force) and remove and name != "-"
        like = _stat(name)  # the .dlz file kept the original's mode and times
        t0 = time.perf_counter()
        # into a file: streamed (the temporary file is dropped on any error); into standard
        # output only when large (else decoded whole first, so an error writes nothing)
        if name != "-" and (out is not None or _check_input(name).stat().st_size >= sniff.STREAM_MIN):
            with open(name, "rb") as src, atomic_output(out, force, like) as f:
                n = api.decompress_stream(src, f, opts)  # checksum verified inside: else nothing is kept
        else:
            with atomic_output(out, force, like) as f:
                data = api.decompress(_read_input(name), opts)
                f.write(data)
            n = len(data)
        if verbose:
            where = out if out is not None else "stdout"
            click.echo(f"{name}: {n:,} bytes -> {where} ({time.perf_counter() - t0:.2f} s)", err=True)
        if removes:
            os.unlink(name)
        elif remove and name != "-" and out is not None:
            _kept_note(name, out, quiet)

    _run_each(inputs, verbose, one, quiet)


@main.command()
@click.argument("inputs", nargs=-1)
@RECURSIVE
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option("-T", "--threads", type=click.IntRange(0, 1024), default=0)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--no-progress", is_flag=True)
@click.option("-v", "--verbose", count=True, help="A traceback on an internal error.")
@MAX_MEMORY
def test(inputs, recursive, device, threads, quiet, no_progress, verbose, max_memory):
    """Decode .dlz files and verify them, writing nothing."""
    from dulzip import api
    inputs = _inputs(inputs, recursive, True, quiet)
    opts = _options(device=device, threads=threads, progress=_show_progress(quiet, no_progress),
                    max_memory=max_memory)

    def one(name: str) -> None:
        data = api.decompress(_read_input(name), opts)
        if not quiet:
            click.echo(f"{name}: OK ({len(data)} bytes)", err=True)

    _run_each(inputs, verbose, one)


def describe_lines(name: str, blob: bytes) -> list[str]:
    from dulzip.api import describe
    h = describe(blob)
    tool = str(h.get("tool", "?"))
    lines = [f"{name}: dulzip format {blob[4]}, made by {tool if tool.startswith('dulzip') else 'dulzip ' + tool}",
             f"  content:   {h.get('kind')}, {h.get('length')} bytes, blake2b {str(h.get('blake2b'))[:16]}…",
             f"  size:      {len(blob)} bytes ({100.0 * len(blob) / max(1, h.get('length') or 1):.2f}%)"]
    if h.get("kind") != "bytes":
        exact = h.get("exact", True)
        described = "png.deflate" in h.get("inline", {}) or any(s.get("name") == "png.deflate"
                                                                 for s in h.get("streams") or [])
        lines.append("  restores:  " + (("byte-identical file (its zlib stream re-created from its description)"
                                         if described else "byte-identical file") if exact else
                     "identical pixels and chunks, re-encoded zlib stream (not byte-identical)"))
    m = h.get("model")
    lines.append(f"  model:     {m['name']} (weights sha256 {m['sha256'][:12]}…)" if m else
                 "  model:     none" + (" (image16: the 16-bit predictive coder)" if "image16" in (h.get("layout") or {})
                                        else ""))
    lay = h.get("layout") or {}
    dims, _ = _dims(h)
    if "height" in lay:
        extra = []
        if lay.get("replicated"):
            extra.append("gray stored as RGB: coded once")
        if isinstance(lay.get("alpha"), int):
            extra.append(f"constant alpha {lay['alpha']}")
        if isinstance(lay.get("mixer"), int):
            extra.append(f"image mixer version {lay['mixer']}")
        if isinstance(lay.get("image16"), int):
            extra.append(f"16-bit samples, coded by the 16-bit predictive coder, version {lay['image16']}")
        coded = f"tiles {lay['tile']}" if "tile" in lay else "no tiles"
        lines.append(f"  image:     {lay['width']}x{lay['height']}, {lay['channels']} channels, {coded}"
                     + (f" ({'; '.join(extra)})" if extra else ""))
        lines.append(f"  bits/dim:  {8 * len(blob) / dims:.4f} (file), "
                     f"{h.get('model_bits', 0) / dims:.4f} (model estimate)")
    if h.get("kind") == "text" and h.get("length"):
        coders = [st["coder"] for st in h.get("streams", [])]
        lines.append(f"  text:      {8 * len(blob) / h['length']:.4f} bits/byte (file); blocks of up to "
                     f"{lay.get('block')} bytes: {coders.count('model')} by the model, {coders.count('zstd')} by zstd")
    if h.get("kind") == "wav" and "frames" in lay:
        n = dims
        coders = [st["coder"] for st in h.get("streams", []) if st["name"].startswith("audio.")]
        by = (f"{coders.count('cascade')} by the adaptive filters" if "cascade" in lay else
              f"{coders.count('model')} by the model, {coders.count('lpc')} by linear prediction")
        lines.append(f"  audio:     {lay['frames']} frames, {lay['channels']} channel(s), {lay['bits']}-bit, "
                     f"{lay['rate']} Hz; blocks: {by}, {coders.count('zstd')} by zstd")
        if n:
            lines.append(f"  bits/sample: {8 * len(blob) / n:.4f} (file), {h.get('model_bits', 0) / n:.4f} "
                         "(model estimate)")
    if h.get("note"):
        lines.append(f"  note:      {h['note']}")
    for s in h.get("streams", []):
        lines.append(f"  stream {s['name']:<12} {s['coder']:<7} {s['size']:>10} bytes")
    return lines


@main.command(name="list")
@click.argument("inputs", nargs=-1)
@RECURSIVE
@click.option("--json", "as_json", is_flag=True, help="Print the raw header as JSON.")
@click.option("-v", "--verbose", count=True, help="A traceback on an internal error.")
def list_cmd(inputs, recursive, as_json, verbose):
    """Show what a .dlz file holds (header, model, bits per dimension)."""
    from dulzip.api import describe
    inputs = _inputs(inputs, recursive, True, False)

    def one(name: str) -> None:
        blob = _read_input(name)
        if as_json:
            click.echo(json.dumps(describe(blob), indent=2))
        else:
            click.echo("\n".join(describe_lines(name, blob)))

    _run_each(inputs, verbose, one)


RESULT_KEYS = {"image": "bpsp", "text": "bpb", "audio": "bps"}  # a model card's results, by modality


@main.command()
@click.option("-v", "--verbose", count=True, help="A traceback on an internal error.")
def models(verbose):
    """List the installed models."""
    from dulzip import zoo
    from dulzip.models import registry
    every = zoo.all_cards()
    cards = zoo.cards()
    if not cards:
        click.echo("no models in " + ", ".join(str(d) for d in zoo.models_dirs()))
    for name, c in cards.items():
        res = c.get("results", {})
        family = registry.declared().get(c["architecture"])  # the results' unit is its modality's
        modality = family.modality if family else "image"
        label = registry.UNITS[modality]
        v = next((v for k, v in res.get(RESULT_KEYS[modality], {}).items() if k.startswith("dulzip")), None)
        click.echo(f"{name:<12} {c['architecture']:<10} {c.get('parameters', 0):>9} params  "
                   f"{c['weights']}" + (f"  {v:.3f} {label} on {res.get('corpus', '?')} (held out)" if v else "")
                   + ("" if Path(c["_folder"]) == zoo.SHIPPED and not verbose else f"  in {c['_folder']}"))
    for c in every:
        if c.get("retired"):
            click.echo(f"{c['name']:<12} older version {c['weights']}, kept to decode the files made with it")


class _FamilyChoice(click.Choice):
    """``--arch``'s choices: the registered model families (dulzip.models.registry), scanned
    when the option is used or shown rather than when dulzip starts."""

    @property
    def choices(self):
        from dulzip.models import registry
        return tuple(registry.names())

    @choices.setter
    def choices(self, _):  # click.Choice.__init__ assigns them
        pass


class _ArchOption(click.Option):
    """``--arch``'s help: each family's summary, from its declaration."""

    def get_help_record(self, ctx):
        from dulzip.models import registry
        self.help = "; ".join(f"{d.name}: {d.summary}" for d in registry.declared().values()) + "."
        return super().get_help_record(ctx)


def _family_defaults(option: str) -> str:
    """Each family's own default of a `dulzip train` option, from its declaration (no torch)."""
    from dulzip.models import registry
    found = [f"{d.name} {d.train_defaults[option]}" for d in registry.declared().values() if option in d.train_defaults]
    other = getattr(_train_fallback(), option, None)  # a training setting's; a model's has none
    if not found:
        return f" Default: {other}."
    return f" Default per family: {', '.join(found)}" + (f"; else {other}." if other is not None else ".")


def _train_fallback():
    from dulzip.train.config import TrainConfig
    return TrainConfig(data="", out="")


class _PerFamily(click.Option):
    """An option whose default is the family's (``Family.train_defaults``), listed in its help."""

    def get_help_record(self, ctx):
        base = self.help or ""
        self.help = base + _family_defaults(self.name)
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = base


@main.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of training files, read from disk as training goes (images; text: any files; audio: "
                   "WAV files), any number of them.")
@click.option("--out", type=click.Path(), default=None,
              help="Run folder (checkpoint, metrics.jsonl, curves); training resumes from it. Default: runs/ARCH.")
@click.option("--steps", type=int, default=None, cls=_PerFamily, help="Optimizer steps in all.")
@click.option("--warmup", type=int, default=None, cls=_PerFamily, help="Steps of linear learning-rate warm-up.")
@click.option("--batch", type=int, default=None, cls=_PerFamily,
              help="The global batch: split over the processes of a distributed run (a multiple of their number).")
@click.option("--crop", type=int, default=None, cls=_PerFamily, help="Image families: crop side.")
@click.option("--seq", type=int, default=None, cls=_PerFamily,
              help="charrnn: bytes per training window; wavenet: samples per window.")
@click.option("--lr", type=float, default=None, cls=_PerFamily, help="Peak learning rate.")
@click.option("--channels", type=int, default=None, cls=_PerFamily,
              help="Feature maps (pixelcnn) or residual channels (wavenet).")
@click.option("--layers", type=int, default=None, cls=_PerFamily,
              help="Gated layers (pixelcnn, wavenet), conv layers per net (pyramid), hidden layers (made) or "
                   "couplings per level (idf).")
@click.option("--head", type=int, default=None, cls=_PerFamily, help="Hidden units of the output head.")
@click.option("--arch", cls=_ArchOption, type=_FamilyChoice(()), default="pixelcnn", show_default=True)
@click.option("--hidden", type=int, default=None, cls=_PerFamily,
              help="MADE: units per hidden layer; charrnn: LSTM units; idf, pyramid: network channels.")
@click.option("--levels", type=int, default=None, cls=_PerFamily, help="idf: levels (squeeze, couplings, split).")
@click.option("--embed", type=int, default=None, cls=_PerFamily, help="charrnn: byte embedding size.")
@click.option("--seg-order", type=int, default=0, show_default=True,
              help="wavenet: order of each segment's own linear predictor, sent with it (music: 16).")
@click.option("--resid", is_flag=True, help="wavenet: the network also sees the reference predictor's residuals.")
@click.option("--time-limit", type=float, default=0.0,
              help="Train for at most this many seconds (the learning-rate schedule follows time too).")
@click.option("--gray-fraction", type=click.FloatRange(0, 1), default=0.15, show_default=True,
              help="pixelcnn, idf: the fraction of crops made gray (idf: packed as the flow codes gray).")
@click.option("--seed", type=int, default=0, show_default=True, help="The run's random seed (data and weights).")
@click.option("--heldout", type=click.FloatRange(0, 0.5), default=0.02, show_default=True,
              help="The fraction of --data's files held out (picked by a hash of their path) and evaluated on.")
@click.option("--heldout-data", type=click.Path(exists=True, file_okay=False), default=None,
              help="A folder of held-out files instead (then every file of --data trains).")
@click.option("--eval-every", type=int, default=500, show_default=True,
              help="Steps between held-out evaluations (bits per dimension in metrics.jsonl).")
@click.option("--log-every", type=click.IntRange(1), default=20, show_default=True,
              help="Steps between lines of metrics.jsonl (the loss, the mean over processes).")
@click.option("--workers", type=int, default=None,
              help="Processes per rank reading the data ahead of training (default: a quarter of this rank's "
                   "share of the CPU cores, at most 4; 0: none).")
@click.option("--crops-per-image", type=click.IntRange(1), default=1, show_default=True,
              help="Images: crops of a batch cut from each image drawn: fewer images decoded per step where "
                   "the folder is larger than --cache-mb, at some cost in what a step learns.")
@click.option("--cache-mb", type=click.IntRange(0), default=256, show_default=True,
              help="Images: MiB of decoded images each data process keeps (a folder that fits is decoded once).")
@click.option("--bf16/--no-bf16", default=None,
              help="bfloat16 autocast (default: on a GPU only). The exported integer model is what codes: the "
                   "card gives the held-out bits of the float model and of real files.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Under torchrun with cuda, each process takes the GPU of its LOCAL_RANK.")
@click.option("--init-from", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from this checkpoint's weights (fine-tuning); a wider model (e.g. a larger "
                   "--hidden) grows from them, computing the same at first.")
@click.option("--export", "export_name", default=None,
              help="Export the result as this model name: weights and a card with the command, data, steps, "
                   "hardware, and held-out results beside the baselines.")
@click.option("--card-files", type=int, default=4, show_default=True,
              help="With --export: held-out files compressed for the card's results (0: none).")
@click.option("--models-dir", type=click.Path(), default=None, help="Where to export (default: the first folder of $DULZIP_MODELS, else ~/.local/share/dulzip/models, "
                   "where dulzip looks for models first; to ship a model with the package: dulzip/models_data).")
@click.option("--prime-bytes", type=int, default=1 << 20, show_default=True,
              help="charrnn: bytes of training text whose coding primes the shipped adaptive state (0: none).")
@click.option("--report", "report_only", is_flag=True,
              help="Only write the run's curves (--out's metrics.jsonl as a plot, markdown and JSON), then stop.")
@click.option("-T", "--threads", type=int, default=0)
@click.option("--no-progress", is_flag=True)
@click.option("-v", "--verbose", count=True, help="A traceback on an internal error.")
def train(**o):
    """Train a model (resumable) and optionally export it to the model zoo.

    The same command runs on several processes under torchrun (one per GPU, or several on CPUs;
    several nodes with torchrun's rendezvous options): each trains on its part of every global
    batch, rank 0 logs, checkpoints and exports. See the README's "Training on your own data".

    MADE: --layers is its number of hidden layers (e.g. --arch made --layers 2 --hidden 500)."""
    from dulzip.train import dist
    ctx = click.get_current_context()
    out = ctx.params["out"] = o["out"] or f"runs/{o['arch']}"
    if o["report_only"]:
        from dulzip.train.report import write_report
        written = write_report(Path(out))
        if not written:
            raise UsageError(f"no metrics in {Path(out) / 'metrics.jsonl'} yet")
        for p in written:
            click.echo(f"wrote {p}")
        return
    if o["data"] is None:
        raise click.UsageError("--data is required (a folder of training files)")
    where = dist.from_env()
    try:
        _train(ctx, where)
    except (DulzipError, OSError, ValueError, RuntimeError) as e:
        if where.world == 1 or (isinstance(e, RuntimeError) and not isinstance(e, DulzipError) and o["verbose"]):
            raise
        raise UsageError(f"rank {where.rank} of {where.world}: {_message(e)}") from e
    finally:
        dist.stop()


def _given(ctx: click.Context) -> str:
    """The command as given: the options that came from the command line (for the card)."""
    from click.core import ParameterSource
    words = []
    for p in ctx.command.params:
        if ctx.get_parameter_source(p.name) != ParameterSource.COMMANDLINE:
            continue
        v = ctx.params[p.name]
        if getattr(p, "count", False):  # -v, -vv
            words += [p.opts[-1]] * v
        elif getattr(p, "is_flag", False):  # --resid, --no-bf16
            words.append((p.opts if v or not p.secondary_opts else p.secondary_opts)[-1])
        else:
            words += [p.opts[-1], str(v)]
    return "dulzip train " + shlex.join(words)


def _train(ctx: click.Context, where) -> None:
    """`dulzip train` with its options (``ctx.params``) on this process (``where``: its rank)."""
    import os

    from dulzip.models import registry
    from dulzip.train.loop import TrainConfig, train_model
    family = registry.family(ctx.params["arch"])
    o = {**ctx.params, **{k: v for k, v in family.train_defaults.items() if ctx.params.get(k) is None}}
    per_family = {k: o[k] if o[k] is not None else getattr(_train_fallback(), k)
                  for k in ("steps", "warmup", "batch", "crop", "seq", "lr")}
    workers = o["workers"] if o["workers"] is not None else min(4, (os.cpu_count() or 1) // where.world // 4)
    same = ("data", "out", "threads", "init_from", "device", "time_limit", "gray_fraction", "seed", "heldout",
            "heldout_data", "eval_every", "log_every", "crops_per_image", "cache_mb", "bf16")
    tcfg = TrainConfig(**{k: o[k] for k in same}, **per_family, workers=workers)
    mcfg = family.options(o)  # the family's defaults where not given
    ckpt = train_model(tcfg, mcfg, progress=not o["no_progress"] and sys.stderr.isatty())
    if not where.main:
        return
    from dulzip.train.report import write_report
    write_report(Path(tcfg.out))
    if o["export_name"]:
        from dulzip import zoo
        from dulzip.train.card import training_card
        from dulzip.train.export import export_checkpoint, sample_text
        prime = o["prime_bytes"]
        text = sample_text(tcfg.data, prime) if family.modality == "text" and prime else None
        models = Path(o["models_dir"] or zoo.models_dir())
        path = export_checkpoint(ckpt, o["export_name"], models, prime_text=text)
        click.echo(f"exported {path}")
        card = training_card(path, Path(tcfg.out), tcfg, where.world, o["card_files"], _given(ctx))
        if card.get("results"):
            r = card["results"]
            click.echo(f"held-out {r['corpus']}: " + ", ".join(
                f"{k.split(' (')[0]} {v:.3f}" for k, v in r[next(u for u in ('bpb', 'bps', 'bpsp') if u in r)].items()))


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(), default="benchmarks/results", show_default=True)
@click.option("--name", default=None, help="Report name (default: the folder's name).")
@click.option("-m", "--model", default="auto", show_default=True)
@click.option("--limit", type=int, default=0, help="Only the first N files.")
@click.option("-T", "--threads", type=int, default=0)
@click.option("-v", "--verbose", count=True, help="A traceback on an internal error.")
def bench(folder, out, name, model, limit, threads, verbose):
    """Benchmark on a folder: real .dlz sizes beside baselines, in bits per sample for a folder
    of mostly WAV files, in bits per sub-pixel for images, else in bits per byte (text and other files)."""
    from dulzip.bench.audio import is_wav_folder, run_audio_bench
    from dulzip.bench.images import _images, run_bench
    from dulzip.bench.text import run_text_bench
    if is_wav_folder(Path(folder)):
        run = run_audio_bench
    else:
        run = run_bench if _images(Path(folder), 0) else run_text_bench
    if threads:
        import torch
        torch.set_num_threads(threads)
    paths = run(Path(folder), Path(out), name or Path(folder).name, model, limit, threads)
    for p in paths:
        click.echo(f"wrote {p}")


PASSTHROUGH = {"models", "train", "bench"}  # commands whose options are their own (no zstd letters)


def entry() -> None:
    """Console entry: zstd's command line (``dulzip FILE``, ``dulzip -dc FILE``; see
    dulzip.argv) mapped onto the subcommands. Every error is one
    line and exit 1 (a bug's traceback only with -v); SIGINT and SIGTERM remove the temporary
    file and exit 130 and 143."""
    argv = sys.argv[1:]
    previous = _catch_signals()
    try:
        try:
            args = argv if set(argv[:1]) & PASSTHROUGH else translate(argv, set(main.commands))
        except DulzipError as e:
            click.echo(f"dulzip: {e}", err=True)
            sys.exit(2)
        main.main(args=args, prog_name="dulzip", standalone_mode=True)
    except Stopped as e:
        click.echo(f"dulzip: {e.message}", err=True)
        sys.exit(e.code)
    except (DulzipError, OSError, MemoryError) as e:  # errors outside the per-file loops
        click.echo(f"dulzip: {_message(e)}", err=True)
        sys.exit(1)
    except Exception as e:
        _internal_error(e, _verbose(argv))
        sys.exit(1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _catch_signals() -> dict:
    """SIGINT and SIGTERM raise Stopped, unless whoever started dulzip ignores them (nohup,
    a background job): returns the handlers replaced."""
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            handler = signal.getsignal(sig)
            if handler is not None and handler != signal.SIG_IGN:
                previous[sig] = signal.signal(sig, _stop)
        except ValueError:  # not the main thread: signals stay as they are
            break
    return previous


def _message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e) or "out of memory"


def _verbose(argv: list[str]) -> bool:
    """-v anywhere on the command line (for errors outside a command's own handling)."""
    words = argv[:argv.index("--")] if "--" in argv else argv
    return any(w == "--verbose" or re.fullmatch(r"-[a-zA-Z]*v[a-zA-Z]*", w) for w in words)


if __name__ == "__main__":
    entry()
