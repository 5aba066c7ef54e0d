"""Corpora from Debian packages: download and unpack a .deb without installing it, and the
command line and the summary of what was written shared by the corpus scripts (images.py,
text.py, text_genres.py, audio.py)."""
from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path


def fetch_deb(pkg: str, workdir: Path) -> Path:
    """apt-get download PKG and unpack it (no install needed). Returns the unpack root."""
    root = workdir / pkg
    if root.exists():
        return root
    subprocess.run(["apt-get", "download", pkg], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deb = sorted(workdir.glob(f"{pkg}_*.deb"))[-1]
    subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


def print_folder(folder: Path) -> None:
    """What a corpus script wrote in a folder: its files and their sizes."""
    files = sorted(folder.iterdir())
    print(f"{folder.name}: {len(files)} files, {sum(f.stat().st_size for f in files):,} bytes")
    for f in files:
        print(f"  {f.name:32s} {f.stat().st_size:>12,}")


def deb_corpus_main(build, default_out: str, description: str) -> None:
    """The command line of a corpus script built from .deb packages: ``--out``, ``--work``
    (where the packages are downloaded and unpacked; a temporary folder by default)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", type=Path, default=Path(default_out))
    ap.add_argument("--work", type=Path, default=None,
                    help="folder for the downloaded and unpacked .deb files (default: a temporary one)")
    args = ap.parse_args()
    if args.work is None:
        with tempfile.TemporaryDirectory() as work:
            build(args.out, Path(work))
    else:
        args.work.mkdir(parents=True, exist_ok=True)
        build(args.out, args.work)


def cached_corpus_main(build, description: str) -> None:
    """The command line of a corpus script whose .deb downloads are kept between runs (images.py,
    images16.py): ``--out`` (default data/corpora), ``--cache`` (default a dulzip-debs folder in
    the temporary directory)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", type=Path, default=Path("data/corpora"))
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "dulzip-debs")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    build(args.out, args.cache)
