"""Build dulzip's text DEV corpus by genre (not only prose) from Debian packages, apart from
the training data.

Reproducible: the same package versions give the same files (each file's sources are read in
sorted order, nothing random).

    python benchmarks/corpora/text_genres.py --out data/text/genres [--work DIR]

writes ``<out>/<genre>/<file>`` and ``<out>/MANIFEST.txt`` (each file's bytes, package version
and source paths). Every file is whole: either one file of a package, or several whole files of
one package concatenated in sorted order (said below); nothing is cut. A package of the
training corpus (``TRAINING_PACKAGES``: ``text.py``'s ``train/``) or of its held-out
``prose-test``/``code-test`` is refused, and every file must be UTF-8 (or ASCII) without NUL
bytes: a file chosen by name that is not is an error, one of a concatenated group is left out
and named.

``rst/`` (reStructuredText sources, 0.68 MB)
    docutils-doc: the reST specification (``docs/ref/rst/restructuredtext.txt``), its directives
    (``docs/ref/rst/directives.txt``), the configuration reference (``docs/user/config.txt``),
    the FAQ (``FAQ.txt``) and the release history (``HISTORY.txt``); sphinx-doc: the ``_sources``
    of its HTML manual for the configuration, the domains, LaTeX and autodoc pages.
``markup/`` (HTML and Markdown, 0.65 MB)
    HTML: mutt's manual chapter on configuration (DocBook output, package mutt), the Filesystem
    Hierarchy Standard 3.0 and the machine-readable copyright format (debian-policy); Markdown:
    the README of dash.el (elpa-dash), the API of yargs (node-yargs), the README of commander
    (node-commander) and marked's ``USING_PRO.md`` (node-marked), the last three gunzipped.
``code/`` (source code, no Python, 0.76 MB)
    C: ``zlib.h`` and zlib's example ``gzlog.c`` (zlib1g-dev), libpng's ``pngtest.c``
    (libpng-dev); JavaScript (not minified): ``underscore.js`` (libjs-underscore), commander's
    ``lib/command.js`` (node-commander); shell: bash-completion's main ``bash_completion``
    script; Rust: memchr's ``src/memmem/mod.rs`` and ``twoway.rs`` (librust-memchr-dev); Go:
    cobra's ``command.go`` (golang-github-spf13-cobra-dev); Perl: ``LWP/UserAgent.pm`` (code
    and its pod, libwww-perl); Emacs Lisp: ``dash.el`` (elpa-dash).
``logs/`` (log-like, 0.53 MB; no package found here ships a real server log)
    ``fail2ban-test-logs.txt``: every file of fail2ban's ``tests/files/logs/`` (and ``bsd/``
    in it) concatenated: log lines of sshd, Apache, Postfix, Dovecot, Exim, Asterisk... (real
    formats, addresses anonymized), each group after the ``# failJSON: {...}`` comment line
    that fail2ban's tests read; ``debian-changelogs.txt``: the ``changelog.Debian`` of every package this corpus
    reads (in package-name order; ``changelog.gz`` for a native package), dated entries by
    maintainers: a log of package uploads, log-like rather than a machine's log.
``data/`` (CSV/TSV, JSON, tables, 0.68 MB)
    ``iab.csv`` of ieee-data (IEEE's registry of address blocks); ISO 3166-1, 639-2 and 4217 in
    JSON (iso-codes); Unicode's ``Scripts.txt`` (unicode-data, a semicolon-separated table with
    comments); ``zone1970.tab`` (tzdata, tab-separated); ``debian.csv`` and ``ubuntu.csv``
    (distro-info-data).
``dict/`` (dictionaries and word lists, not GCIDE or WordNet, 1.62 MB)
    the small American English word list (wamerican-small), the Devil's Dictionary (dict-devil)
    and V.E.R.A., a glossary of computer acronyms (dict-vera), the two dictd databases gunzipped.
``mail/`` (e-mail, 0.23 MB; no package found here ships a mailing-list archive or RFCs)
    ``git-howto-mails.txt``: the how-tos of git-doc that are messages of the git mailing list
    (those that begin with mail headers), concatenated; then the test messages of mail
    software (many real messages, some made up for an edge case), concatenated per package: jhillyerd/enmime's ``testdata/mail``
    (golang-github-jhillyerd-enmime-dev), HyperKitty's ``tests/testdata``
    (python3-django-hyperkitty), Mailman 3's ``tests/data/*.eml`` (mailman3) and SpamAssassin's
    two sample messages (spamassassin); test messages that are not UTF-8 are left out.
"""
from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path
from typing import Callable, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from debs import deb_corpus_main, fetch_deb, print_folder  # noqa: E402  (a script folder)

# text.py's training sources (train/), refused here, and the packages of its held-out
# prose-test and code-test corpora, also refused so that the corpora do not overlap.
TRAINING_PACKAGES = ("dict-gcide", "dict-wn", "perl-doc", "python3.11-doc", "manpages", "manpages-dev",
                     "libpython3.11-minimal", "libpython3.11-stdlib")
TEXT_TEST_PACKAGES = ("bible-kjv", "bible-kjv-text", "fortunes", "debian-reference-en")

DOC = "usr/share/doc"
GO = "usr/share/gocode/src/github.com"


def _mail_headers(data: bytes) -> bool:
    """A message: the file begins with a mail header field."""
    return re.match(rb"(From|Date|Subject|To|Message-ID):", data) is not None


class Source(NamedTuple):
    """One file of the corpus: ``patterns`` (globs under the unpacked package) name whole files,
    read in sorted order and concatenated. A pattern without ``*`` must name one text file; the
    matches of one with ``*`` that are not text, or not ``keep``, are left out."""
    genre: str
    name: str
    package: str
    patterns: tuple[str, ...]
    keep: Callable[[bytes], bool] | None = None


SOURCES = (
    Source("rst", "docutils-restructuredtext.txt", "docutils-doc",
           (f"{DOC}/docutils-doc/docs/ref/rst/restructuredtext.txt",)),
    Source("rst", "docutils-directives.txt", "docutils-doc", (f"{DOC}/docutils-doc/docs/ref/rst/directives.txt",)),
    Source("rst", "docutils-config.txt", "docutils-doc", (f"{DOC}/docutils-doc/docs/user/config.txt",)),
    Source("rst", "docutils-FAQ.txt", "docutils-doc", (f"{DOC}/docutils-doc/FAQ.txt",)),
    Source("rst", "docutils-HISTORY.txt", "docutils-doc", (f"{DOC}/docutils-doc/HISTORY.txt",)),
    Source("rst", "sphinx-configuration.rst", "sphinx-doc",
           (f"{DOC}/sphinx-doc/html/_sources/usage/configuration.rst.txt",)),
    Source("rst", "sphinx-domains.rst", "sphinx-doc",
           (f"{DOC}/sphinx-doc/html/_sources/usage/restructuredtext/domains.rst.txt",)),
    Source("rst", "sphinx-latex.rst", "sphinx-doc", (f"{DOC}/sphinx-doc/html/_sources/latex.rst.txt",)),
    Source("rst", "sphinx-autodoc.rst", "sphinx-doc",
           (f"{DOC}/sphinx-doc/html/_sources/usage/extensions/autodoc.rst.txt",)),

    Source("markup", "mutt-configuration.html", "mutt", (f"{DOC}/mutt/html/configuration.html",)),
    Source("markup", "fhs-3.0.html", "debian-policy", (f"{DOC}/debian-policy/fhs/fhs-3.0.html",)),
    Source("markup", "copyright-format-1.0.html", "debian-policy", (f"{DOC}/debian-policy/copyright-format-1.0.html",)),
    Source("markup", "dash-README.md", "elpa-dash", (f"{DOC}/elpa-dash/README.md.gz",)),
    Source("markup", "yargs-api.md", "node-yargs", (f"{DOC}/node-yargs/api.md.gz",)),
    Source("markup", "commander-Readme.md", "node-commander", (f"{DOC}/node-commander/Readme.md.gz",)),
    Source("markup", "marked-USING_PRO.md", "node-marked", (f"{DOC}/node-marked/USING_PRO.md.gz",)),

    Source("code", "zlib.h", "zlib1g-dev", ("usr/include/zlib.h",)),
    Source("code", "gzlog.c", "zlib1g-dev", (f"{DOC}/zlib1g-dev/examples/gzlog.c",)),
    Source("code", "pngtest.c", "libpng-dev", (f"{DOC}/libpng-dev/examples/pngtest.c",)),
    Source("code", "underscore.js", "libjs-underscore", ("usr/share/javascript/underscore/underscore.js",)),
    Source("code", "commander-command.js", "node-commander", ("usr/share/nodejs/commander/lib/command.js",)),
    Source("code", "bash_completion.sh", "bash-completion", ("usr/share/bash-completion/bash_completion",)),
    Source("code", "memchr-memmem-mod.rs", "librust-memchr-dev",
           ("usr/share/cargo/registry/memchr-2.5.0/src/memmem/mod.rs",)),
    Source("code", "memchr-memmem-twoway.rs", "librust-memchr-dev",
           ("usr/share/cargo/registry/memchr-2.5.0/src/memmem/twoway.rs",)),
    Source("code", "cobra-command.go", "golang-github-spf13-cobra-dev", (f"{GO}/spf13/cobra/command.go",)),
    Source("code", "LWP-UserAgent.pm", "libwww-perl", ("usr/share/perl5/LWP/UserAgent.pm",)),
    Source("code", "dash.el", "elpa-dash", ("usr/share/emacs/site-lisp/elpa-src/dash-*/dash.el",)),

    Source("logs", "fail2ban-test-logs.txt", "fail2ban",
           ("usr/lib/python3/dist-packages/fail2ban/tests/files/logs/*",
            "usr/lib/python3/dist-packages/fail2ban/tests/files/logs/bsd/*")),
    # debian-changelogs.txt: from every package above and below, written by build()

    Source("data", "ieee-iab.csv", "ieee-data", ("usr/share/ieee-data/iab.csv",)),
    Source("data", "iso_3166-1.json", "iso-codes", ("usr/share/iso-codes/json/iso_3166-1.json",)),
    Source("data", "iso_639-2.json", "iso-codes", ("usr/share/iso-codes/json/iso_639-2.json",)),
    Source("data", "iso_4217.json", "iso-codes", ("usr/share/iso-codes/json/iso_4217.json",)),
    Source("data", "unicode-Scripts.txt", "unicode-data", ("usr/share/unicode/Scripts.txt",)),
    Source("data", "zone1970.tab", "tzdata", ("usr/share/zoneinfo/zone1970.tab",)),
    Source("data", "distro-info.csv", "distro-info-data",
           ("usr/share/distro-info/debian.csv", "usr/share/distro-info/ubuntu.csv")),

    Source("dict", "american-english-small.txt", "wamerican-small", ("usr/share/dict/american-english-small",)),
    Source("dict", "devil.dict", "dict-devil", ("usr/share/dictd/devil.dict.dz",)),
    Source("dict", "vera.dict", "dict-vera", ("usr/share/dictd/vera.dict.dz",)),

    Source("mail", "git-howto-mails.txt", "git-doc", (f"{DOC}/git-doc/howto/*.txt",), keep=_mail_headers),
    Source("mail", "enmime-test-mail.txt", "golang-github-jhillyerd-enmime-dev",
           (f"{GO}/jhillyerd/enmime/testdata/mail/*",)),
    Source("mail", "hyperkitty-test-mail.txt", "python3-django-hyperkitty",
           ("usr/lib/python3/dist-packages/hyperkitty/tests/testdata/*.txt",)),
    Source("mail", "mailman3-test-mail.eml", "mailman3",
           ("usr/lib/python3/dist-packages/mailman/*/tests/data/*.eml",)),
    Source("mail", "spamassassin-samples.txt", "spamassassin", (f"{DOC}/spamassassin/examples/sample-*.txt",)),
)


def text_of(path: Path) -> bytes | None:
    """The bytes of a file (gunzipped if ``.gz``/``.dz``: dictzip is gzip), or None where they
    are not text: not UTF-8, or with NUL bytes."""
    data = path.read_bytes()
    if path.suffix in (".gz", ".dz"):
        data = gzip.decompress(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if b"\0" in data else data


def unpacked(pkg: str, work: Path) -> Path:
    """``fetch_deb``, refusing the packages of the training corpus and of text.py's test corpora."""
    if pkg in TRAINING_PACKAGES or pkg in TEXT_TEST_PACKAGES:
        raise SystemExit(f"{pkg} is used by text.py's corpora (training or held out): not for this corpus")
    return fetch_deb(pkg, work)


def deb_version(pkg: str, work: Path) -> str:
    """The version of the .deb that ``fetch_deb`` unpacked (from its file name)."""
    return sorted(work.glob(f"{pkg}_*.deb"))[-1].name.split("_")[1].replace("%3a", ":")


def gather(src: Source, work: Path) -> tuple[bytes, list[str]]:
    """The file's bytes and the package paths they came from."""
    root = unpacked(src.package, work)
    parts, used = [], []
    for pattern in src.patterns:
        matches = sorted(p for p in root.glob(pattern) if p.is_file())
        if not matches:
            raise SystemExit(f"{src.package}: nothing matches {pattern}")
        for p in matches:
            data = text_of(p)
            rel = p.relative_to(root).as_posix()
            if data is None and "*" not in pattern:
                raise SystemExit(f"{src.package}: {rel} is not UTF-8 text")
            if data is None or (src.keep is not None and not src.keep(data)):
                print(f"  left out: {src.package} {rel} ({'not text' if data is None else 'not kept'})")
                continue
            parts.append(data)
            used.append(rel)
    return b"".join(parts), used


def debian_changelog(doc: Path) -> Path | None:
    """A doc folder's Debian changelog: ``changelog.Debian.gz``, or for a native package (none
    such) ``changelog.gz`` where it is in the Debian format."""
    for name in ("changelog.Debian.gz", "changelog.gz"):
        p = doc / name
        if p.is_file() and re.match(rb"\S+ \([^)]+\) [^;]+; urgency=", gzip.decompress(p.read_bytes())):
            return p
    return None


def changelogs(packages: list[str], work: Path) -> tuple[bytes, list[str]]:
    """The Debian changelog of each package, in the order given (a package whose doc folder is
    a link to another package's has none of its own; one that is not UTF-8 is left out)."""
    parts, used = [], []
    for pkg in packages:
        root = unpacked(pkg, work)
        for p in filter(None, map(debian_changelog, sorted((root / DOC).iterdir()))):
            data = text_of(p)
            rel = f"{pkg}:{p.relative_to(root).as_posix()}"
            if data is None:
                print(f"  left out: {rel} (not text)")
                continue
            parts.append(data)
            used.append(rel)
    return b"".join(parts), used


def build(out: Path, work: Path) -> None:
    manifest = []
    for src in SOURCES:
        data, used = gather(src, work)
        dest = out / src.genre / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        manifest.append(f"{src.genre}/{src.name}\t{len(data)}\t{src.package} {deb_version(src.package, work)}\t"
                        + " ".join(used))
    packages = sorted({s.package for s in SOURCES})
    data, used = changelogs(packages, work)
    (out / "logs" / "debian-changelogs.txt").write_bytes(data)
    manifest.append(f"logs/debian-changelogs.txt\t{len(data)}\t{len(used)} packages\t" + " ".join(used))
    (out / "MANIFEST.txt").write_text("\n".join(sorted(manifest)) + "\n", "utf-8")

    for genre in sorted({s.genre for s in SOURCES}):
        print_folder(out / genre)


def main() -> None:
    deb_corpus_main(build, "data/text/genres", __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
