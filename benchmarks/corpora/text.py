"""Build dulzip's text training and held-out benchmark corpora from Debian packages.

Reproducible: the same package versions give the same files (sources are read in sorted
order, nothing random).

    python benchmarks/corpora/text.py --out data/text [--work DIR]

writes, under ``--out``:

``train/``
    one file per source: the GCIDE and WordNet dictionaries (dictd databases, gunzipped),
    the Perl pod documentation, the Python 3.11 HTML documentation (the main part of each
    page as plain text), the Linux man pages (roff sources, gunzipped and concatenated) and
    the Python 3.11 standard library (``*.py`` of Debian's libpython3.11-minimal and
    libpython3.11-stdlib; test folders left out).
``prose-test/`` (held out: never used for training)
    ``bible.txt``: the King James Bible as printed by ``bible -f Gen1:1-Rev22:21`` (package
    bible-kjv run straight from its unpacked .deb on the data of bible-kjv-text): one verse a
    line, each after its reference (``Ge1:1 In the beginning ...``), 4.4 MB. The Canterbury
    large corpus's bible.txt has the same text, formatted otherwise. Also a few whole files
    of the fortunes package (none of it is used for training), the Debian Reference in the
    plain-text rendering its package ships, and a few Perl pod files.
``code-test/`` (held out)
    whole Python standard-library modules (the ``email`` package is held out entirely) and
    two man pages (roff).
"""
from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from debs import deb_corpus_main, fetch_deb, print_folder  # noqa: E402  (a script folder)

# Held out from training, so benchmark numbers are on unseen text.
HELD_OUT_FORTUNES = ("cookie", "computers", "songs-poems", "definitions")  # of package fortunes
HELD_OUT_POD = ("perlfaq4.pod", "perlop.pod", "perlre.pod")
# Python standard library (paths relative to /usr/lib/python3.11): whole packages out of training,
# and the modules copied to code-test/ (all of them also out of training).
HELD_OUT_PY_PACKAGES = ("email",)
HELD_OUT_PY = ("argparse.py", "typing.py", "tarfile.py", "email/message.py",
               "email/_header_value_parser.py", "email/utils.py")
HELD_OUT_MAN = ("man2/open.2", "man7/signal.7")  # of packages manpages(-dev) (roff)
# perltoc.pod is generated: the headings of every other pod, the held-out ones included.
POD_SKIP = ("perltoc.pod",)
PY_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages"}
# Index pages of the Python docs: lists of links, not prose.
HTML_SKIP = re.compile(r"genindex.*|contents|py-modindex|search")


class _MainText(HTMLParser):
    """Text of the main part of a Sphinx page (``<div role="main">``), without script, style
    and the headings' permalink marks; block elements start a new line."""

    BLOCKS = {"p", "div", "pre", "li", "dt", "dd", "tr", "br", "table", "section",
              "h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.depth = 0  # nesting depth of divs, from the main one; 0: outside it
        self.skipping: str | None = None  # tag whose content is being dropped

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div" and (self.depth or ("role", "main") in attrs):
            self.depth += 1
        if self.skipping is None and (tag in ("script", "style")
                                      or tag == "a" and "headerlink" in (dict(attrs).get("class") or "")):
            self.skipping = tag
        if tag in self.BLOCKS and self.depth:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == self.skipping:
            self.skipping = None
        if tag in self.BLOCKS and self.depth:
            self.parts.append("\n")
        if tag == "div" and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and self.skipping is None:
            self.parts.append(data)


def html_text(html: str) -> str:
    """Plain text of a Sphinx HTML page: trailing blanks stripped, blank-line runs collapsed."""
    parser = _MainText()
    parser.feed(html)
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def bible(work: Path) -> bytes:
    """The King James Bible, one verse a line, from the bible-kjv program and its data."""
    prog = fetch_deb("bible-kjv", work) / "usr/bin/bible"
    data = fetch_deb("bible-kjv-text", work) / "usr/lib"
    return subprocess.run([str(prog), "-f", "-p", str(data), "Gen1:1-Rev22:21"], check=True,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE).stdout


def stdlib_files(work: Path) -> dict[str, Path]:
    """Python standard library modules by path relative to /usr/lib/python3.11."""
    files = {}
    for pkg in ("libpython3.11-minimal", "libpython3.11-stdlib"):
        root = fetch_deb(pkg, work) / "usr/lib/python3.11"
        for f in root.rglob("*.py"):
            rel = f.relative_to(root)
            if f.is_file() and not f.is_symlink() and not PY_SKIP_DIRS & set(rel.parts[:-1]):
                files[rel.as_posix()] = f
    return dict(sorted(files.items()))


def build(out: Path, work: Path) -> None:
    train, prose, code = out / "train", out / "prose-test", out / "code-test"
    for d in (train, prose, code):
        d.mkdir(parents=True, exist_ok=True)

    for name, pkg, db in (("gcide", "dict-gcide", "gcide"), ("wordnet", "dict-wn", "wn")):
        dz = fetch_deb(pkg, work) / f"usr/share/dictd/{db}.dict.dz"  # dictzip: a gzip file
        (train / f"{name}.txt").write_bytes(gzip.decompress(dz.read_bytes()))

    pods = sorted((fetch_deb("perl-doc", work) / "usr/share/perl").glob("*/pod/*.pod"))
    (train / "perl-doc.txt").write_bytes(b"".join(
        f.read_bytes() for f in pods if f.name not in HELD_OUT_POD + POD_SKIP))
    for name in HELD_OUT_POD:
        shutil.copyfile(next(f for f in pods if f.name == name), prose / name)

    html = fetch_deb("python3.11-doc", work) / "usr/share/doc/python3.11/html"
    pages = [f for f in sorted(html.rglob("*.html"))
             if "_static" not in f.parts and not HTML_SKIP.fullmatch(f.stem)]
    (train / "python-doc.txt").write_text("".join(html_text(f.read_text("utf-8")) for f in pages), "utf-8")

    man = {}
    for pkg in ("manpages", "manpages-dev"):
        root = fetch_deb(pkg, work) / "usr/share/man"
        for f in root.glob("man*/*.gz"):
            if f.is_file() and not f.is_symlink():
                man[f.relative_to(root).as_posix()[:-3]] = f
    (train / "manpages.txt").write_bytes(b"".join(
        gzip.decompress(man[k].read_bytes()) for k in sorted(man) if k not in HELD_OUT_MAN))
    for k in HELD_OUT_MAN:
        (code / k.split("/")[-1]).write_bytes(gzip.decompress(man[k].read_bytes()))

    py = stdlib_files(work)
    held_out = set(HELD_OUT_PY)
    (train / "python-stdlib.txt").write_bytes(b"".join(
        f.read_bytes() for rel, f in py.items()
        if rel not in held_out and rel.split("/")[0] not in HELD_OUT_PY_PACKAGES))
    for rel in HELD_OUT_PY:
        shutil.copyfile(py[rel], code / rel.replace("/", "-"))

    (prose / "bible.txt").write_bytes(bible(work))
    fortunes = fetch_deb("fortunes", work) / "usr/share/games/fortunes"
    for name in HELD_OUT_FORTUNES:
        shutil.copyfile(fortunes / name, prose / f"fortunes-{name}.txt")
    ref = fetch_deb("debian-reference-en", work) / "usr/share/debian-reference/debian-reference.en.txt.gz"
    (prose / "debian-reference.txt").write_bytes(gzip.decompress(ref.read_bytes()))

    for d in (train, prose, code):
        print_folder(d)


def main() -> None:
    deb_corpus_main(build, "data/text", __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
