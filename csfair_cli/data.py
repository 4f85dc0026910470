"""``csfair-data``: fetch and lay out the real data the recipes need, with checksums and a MANIFEST.

Subcommands:
  list     what exists for each of the paper's eight pairs, or for one pair (``--pair``): the files
           it would write and whether they are present in ``--out``
  get      fetch a pair's sources (``--what muse,parallel,mono,xnli,afrixnli,mnli,panx,ud,stopwords``)
           into ``--out`` (default ``$CSFAIR_DATA``) in the layout of ``$CSFAIR_DATA/README.md``
  verify   check every file a folder's ``MANIFEST.tsv`` lists (SHA-256 where recorded or pinned in
           ``staged_sources.tsv``; the others by size, and said so)

Sources, URLs, layout and pinned checksums live in ``csfair_cli/data_sources.toml`` (no URL in code).
Paper proportions (Visser et al. 2025, Sec. 3.1-3.2): 1M NLLB pairs for IBM-1; 1 GB English and
100 MB target-language mC4 text. ``get`` is idempotent (a file whose MANIFEST row was written with
the same recipe and whose SHA-256 still matches is skipped), resumable (partial downloads continue
with HTTP Range requests, see :mod:`csfair_cli.fetch`) and atomic (outputs are renamed into place
when complete). Every output gets a MANIFEST row: the columns of ``$CSFAIR_DATA/MANIFEST.tsv``
(``local_path source_repo source_path commit license bytes n_lines description``) followed by
``sha256`` (of the file) and ``source_sha256`` (of the downloaded file it came from).
"""
import argparse
import contextlib
import fnmatch
import gzip
import io
import itertools
import json
import os
import random
import shutil
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from csfair_cli import run_cli
from csfair_cli.fetch import ChecksumMismatch, SourceUnreachable, fetch
from csfair_cli.pairs import load_pairs
from csfair.io import InputFormatError, atomic_write, read_toml, sha256_file
from csfair.paths import data_root

#: the sources file shipped with the package
SOURCES = Path(__file__).with_name("data_sources.toml")
#: the paper's eight language pairs (Visser et al. 2025, Sec. 3.2), from the pairs table (csfair_cli/pairs.toml)
PAPER_PAIRS = tuple(load_pairs())
#: MANIFEST.tsv columns: those of $CSFAIR_DATA/MANIFEST.tsv, then the checksums
COLUMNS = ("local_path", "source_repo", "source_path", "commit", "license", "bytes", "n_lines", "description",
           "sha256", "source_sha256")
#: where raw downloads wait to be processed (inside the output folder, hidden)
DOWNLOADS = ".downloads"


def load_sources(path: Optional[os.PathLike] = None) -> Dict:
    """Read the sources file (default :data:`SOURCES`).

    Raises:
        FileNotFoundError: no such file.
        InputFormatError: the file is not valid TOML or has no ``[kinds.*]`` tables.
    """
    path = Path(path or SOURCES)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sources file not found")
    data = read_toml(path)
    if not data.get("kinds"):
        raise InputFormatError(path, 0, "no [kinds.*] tables")
    return data


def split_pair(pair: str) -> Tuple[str, str]:
    """``"en-fr"`` -> ``("en", "fr")``.

    Raises:
        ValueError: not ``en-XX`` (every source here is English-centred, like the paper's pairs).
    """
    bits = pair.split("-")
    if len(bits) != 2 or bits[0] != "en" or not bits[1] or bits[1] == "en":
        raise ValueError(f"pair {pair!r}: expected en-XX (e.g. {', '.join(PAPER_PAIRS)})")
    return bits[0], bits[1]


@dataclass
class Output:
    """One file a job writes: ``rel`` (path under the output folder) and what it is made from."""

    rel: str
    member: Optional[str] = None  # archive member (extract) or zip member (sample_parallel)
    lang: Optional[str] = None


@dataclass
class Job:
    """One download (or series of shards) and the files made from it."""

    kind: str
    how: str
    url: str
    outputs: List[Output]
    spec: Dict
    sha256: Optional[str] = None
    params: Dict = field(default_factory=dict)
    meta: Dict = field(default_factory=dict)  # MANIFEST fields given by the source (staged rows)

    def description(self) -> str:
        """The MANIFEST description: the kind's, plus the parameters that decide the file's bytes."""
        if "description" in self.meta:
            return self.meta["description"]
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return self.spec.get("description", self.kind) + (f" [{extra}]" if extra else "")


def kind_langs(spec: Dict, tgt: str) -> Optional[List[str]]:
    """Languages a kind fetches for pair en-``tgt`` (None when the kind has nothing for ``tgt``; English alone
    when the kind has nothing for ``tgt`` but ``en_always``: the English UD treebank, for English's function words)."""
    if tgt not in spec.get("langs", []):
        return ["en"] if spec.get("en_always") else None
    return (["en"] if spec.get("en") else []) + [tgt]


def _fmt(template: str, **values) -> str:
    try:
        return template.format(**values)
    except KeyError as e:
        raise ValueError(f"data_sources.toml: template {template!r} uses unknown field {e.args[0]}") from None


def staged_rows(spec: Dict) -> List[Dict[str, str]]:
    """Rows of the staged-data listing (``spec["rows"]``, next to the sources file).

    Raises:
        InputFormatError: a row with another number of fields than the header.
    """
    path = SOURCES.with_name(spec["rows"])
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split("\t")
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        if line:
            vals = line.split("\t")
            if len(vals) != len(header):
                raise InputFormatError(path, i, f"{len(vals)} fields, the header has {len(header)}")
            rows.append(dict(zip(header, vals)))
    return rows


def plan(sources: Dict, pair: Optional[str], kinds: Optional[Iterable[str]] = None, overrides: Optional[Dict] = None
         ) -> Tuple[List[Job], List[str]]:
    """The jobs that fetch ``kinds`` (default: all) for ``pair``.

    Args:
        sources: :func:`load_sources` output.
        pair: ``en-XX``.
        kinds: kind names; an explicitly asked kind that has nothing for the pair is an error.
        overrides: ``pairs``, ``seed``, ``bytes_en``, ``bytes_tgt`` replacing the sources file's values.

    Returns:
        (jobs, notes): notes say which default kinds have nothing for the pair.

    Raises:
        ValueError: bad pair, unknown kind, or an asked kind unavailable for the pair (naming which
            languages it covers).
    """
    table = sources["kinds"]
    overrides = overrides or {}
    explicit = kinds is not None
    kinds = list(kinds) if explicit else [k for k in table if not table[k].get("any_pair")]
    unknown = [k for k in kinds if k not in table]
    if unknown:
        raise ValueError(f"unknown --what {', '.join(unknown)} (known: {', '.join(table)})")
    if pair is None:
        need = [k for k in kinds if not table[k].get("any_pair")]
        if need or not kinds:
            raise ValueError(f"--pair is needed for {', '.join(need) or 'the default kinds'} "
                             f"(only {', '.join(k for k in table if table[k].get('any_pair'))} work without one)")
        src = tgt = ""
    else:
        src, tgt = split_pair(pair)
    jobs, notes = [], []
    opus = "-".join(sorted((src, tgt)))
    for kind in kinds:
        spec = table[kind]
        if spec["how"] == "manifest":
            from urllib.parse import quote

            for r in staged_rows(spec):
                url = _fmt(spec["url"], repo=r["source_repo"], commit=r["commit"], path=quote(r["source_path"]))
                meta = {c: r[c] for c in ("source_repo", "source_path", "commit", "license", "description")}
                jobs.append(Job(kind, "copy", url, [Output(r["local_path"])], spec, r["sha256"], meta=meta))
            continue
        langs = kind_langs(spec, tgt)
        if langs is None:
            msg = (f"{kind}: no {spec.get('source', kind)} data for {tgt} "
                   f"(it covers: {', '.join(spec.get('langs', []))})")
            if explicit:
                raise ValueError(msg)
            notes.append(msg)
            continue
        pins = spec.get("sha256", {})
        how = spec["how"]
        if how == "copy":
            for lang in (langs if kind == "ud" else [tgt]):
                extra = {}
                if kind == "ud":
                    ud_dir, ud_prefix = spec["treebanks"][lang].split(":")
                    extra = dict(ud_dir=ud_dir, ud_prefix=ud_prefix)
                for f in spec["files"]:
                    url = _fmt(f["url"], lang=lang, src=src, tgt=tgt, **extra)
                    out = _fmt(f["out"], lang=lang, src=src, tgt=tgt, **extra)
                    jobs.append(Job(kind, how, url, [Output(out, lang=lang)], spec, pins.get(url)))
        elif how == "extract":
            url = _fmt(spec["url"], tgt=tgt)
            outs = [Output(_fmt(m["out"], lang=lg), _fmt(m["member"], lang=lg), lg)
                    for lg in (langs if spec.get("en") else [tgt]) for m in spec["members"]]
            if spec.get("shared"):  # one archive for every language: members do not use {lang}
                outs = list({o.rel: o for o in outs}.values())
            jobs.append(Job(kind, how, url, outs, spec, pins.get(url)))
        elif how == "sample_parallel":
            url = _fmt(spec["url"], opus=opus, src=src, tgt=tgt)
            prefix = _fmt(spec["out"], src=src, tgt=tgt)
            outs = [Output(f"{prefix}.{lg}.gz", _fmt(spec["member"], opus=opus, lang=lg), lg) for lg in (src, tgt)]
            params = {"pairs": int(overrides.get("pairs") or spec["pairs"]),
                      "seed": int(overrides.get("seed") or spec["seed"])}
            jobs.append(Job(kind, how, url, outs, spec, pins.get(url), params))
        elif how == "mono_bytes":
            for lg in langs:
                budget = spec["bytes"].get(lg, spec["bytes"]["default"])
                if lg == "en" and overrides.get("bytes_en"):
                    budget = int(overrides["bytes_en"])
                if lg != "en" and overrides.get("bytes_tgt"):
                    budget = int(overrides["bytes_tgt"])
                if lg not in spec["n_shards"]:
                    raise ValueError(f"mono: data_sources.toml has no n_shards for {lg}")
                jobs.append(Job(kind, how, spec["url"], [Output(_fmt(spec["out"], lang=lg), lang=lg)], spec, None,
                                {"bytes": int(budget), "lang": lg, "n_shards": spec["n_shards"][lg]}))
        else:
            raise ValueError(f"data_sources.toml: kind {kind}: unknown how = {how!r}")
    return jobs, notes


# ----------------------------------------------------------------------------------------------
# MANIFEST.tsv


def read_manifest(folder: os.PathLike) -> Tuple[List[str], Dict[str, Dict[str, str]]]:
    """``(columns, {local_path: row})`` of ``folder/MANIFEST.tsv`` (empty when there is none).

    Raises:
        InputFormatError: a row with a different number of fields than the header.
    """
    path = Path(folder) / "MANIFEST.tsv"
    if not path.exists():
        return list(COLUMNS), {}
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split("\t")
    if header[0] != "local_path":
        raise InputFormatError(path, 1, f"expected a header starting with local_path, got {lines[0][:80]!r}")
    rows = {}
    for i, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        vals = line.split("\t")
        if len(vals) != len(header):
            raise InputFormatError(path, i, f"{len(vals)} fields, the header has {len(header)}")
        rows[vals[0]] = dict(zip(header, vals))
    return header, rows


def write_manifest(folder: os.PathLike, header: List[str], rows: Dict[str, Dict[str, str]]) -> None:
    """Write ``folder/MANIFEST.tsv`` atomically (columns: ``header`` plus any of :data:`COLUMNS` missing)."""
    cols = list(header) + [c for c in COLUMNS if c not in header]
    with atomic_write(Path(folder) / "MANIFEST.tsv") as fh:
        fh.write("\t".join(cols) + "\n")
        for rel in rows:
            fh.write("\t".join(str(rows[rel].get(c, "")).replace("\t", " ").replace("\n", " ") for c in cols) + "\n")


def n_lines(path: os.PathLike) -> int:
    """Newline characters in a file (decompressed for ``.gz``): ``wc -l``, the staged MANIFEST's n_lines."""
    opener = gzip.open if str(path).endswith(".gz") else open
    n = 0
    with opener(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


def _row(job: Job, out: Output, folder: Path, source_sha: str, source_path: str) -> Dict[str, str]:
    path = folder / out.rel
    spec = job.spec
    row = {"local_path": out.rel, "source_repo": spec.get("source", job.kind), "source_path": source_path,
           "commit": spec.get("version", ""), "license": spec.get("license", ""),
           "bytes": str(path.stat().st_size), "n_lines": str(n_lines(path)),
           "description": job.description(), "sha256": sha256_file(path), "source_sha256": source_sha}
    row.update(job.meta)
    return row


def is_verified(folder: Path, rows: Dict[str, Dict[str, str]], job: Job, out: Output) -> bool:
    """True when ``out`` exists, its MANIFEST row has this job's description and its SHA-256 still matches
    (or, for a byte-exact copy with a pinned checksum, when the file matches the pin)."""
    path, row = folder / out.rel, rows.get(out.rel)
    if job.how == "copy" and job.sha256 and path.is_file():
        return sha256_file(path) == job.sha256
    if row is None or not path.is_file() or row.get("description") != job.description():
        return False
    if str(path.stat().st_size) != row.get("bytes"):
        return False
    return bool(row.get("sha256")) and sha256_file(path) == row["sha256"]


# ----------------------------------------------------------------------------------------------
# archives


def _norm(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def _open_archive(data) -> Tuple[str, object]:
    """(``"zip"``|``"tar"``, handle) for a path or a binary file object."""
    if zipfile.is_zipfile(data):
        return "zip", zipfile.ZipFile(data)
    if hasattr(data, "seek"):
        data.seek(0)
        return "tar", tarfile.open(fileobj=data, mode="r:*")
    return "tar", tarfile.open(data, mode="r:*")


@contextlib.contextmanager
def open_member(archive: os.PathLike, member: str) -> Iterator[io.BufferedIOBase]:
    """Open ``member`` of a zip/tar(.gz) archive; ``a!b`` opens ``b`` inside the nested archive ``a``.

    Raises:
        InputFormatError: the archive lacks the member (names the archive and what it has).
    """
    parts = member.split("!")
    with contextlib.ExitStack() as stack:
        handle: object = archive
        for depth, name in enumerate(parts):
            kind, arc = _open_archive(handle)
            stack.enter_context(arc)
            names = arc.namelist() if kind == "zip" else arc.getnames()
            match = next((n for n in names if _norm(n) == name), None)
            if match is None:
                shown = ", ".join(sorted(_norm(n) for n in names)[:12])
                raise InputFormatError(archive, 0, f"no member {name!r} (has: {shown}{' ...' if len(names) > 12 else ''})")
            fh = arc.open(match) if kind == "zip" else arc.extractfile(match)
            stack.enter_context(fh)
            if depth < len(parts) - 1:
                handle = io.BytesIO(fh.read())  # nested archives are small (one language)
            else:
                yield fh


# ----------------------------------------------------------------------------------------------
# jobs


class Runner:
    """Runs jobs into ``folder``, updating its MANIFEST after each finished output."""

    def __init__(self, folder: os.PathLike, mirror: Optional[str] = None, keep_downloads: bool = False,
                 retries: int = 3, timeout: float = 60.0, quiet: bool = False, force: bool = False):
        self.folder = Path(folder)
        self.force = force
        self.mirror = mirror
        self.keep = keep_downloads
        self.retries = retries
        self.timeout = timeout
        self.quiet = quiet
        self.header, self.rows = read_manifest(self.folder)

    def say(self, msg: str) -> None:
        if not self.quiet:
            print(msg, flush=True)

    def _fetch(self, url: str, dest: Path, sha256: Optional[str]):
        return fetch(url, dest, sha256=sha256, mirror=self.mirror, retries=self.retries, timeout=self.timeout)

    def _download(self, url: str, sha256: Optional[str]):
        """Fetch ``url`` into the download cache (``.downloads/HOST/PATH``; skipped when complete and matching)."""
        from urllib.parse import urlsplit

        p = urlsplit(url)
        dest = self.folder / DOWNLOADS / p.netloc / p.path.lstrip("/")
        if dest.is_file() and (not sha256 or sha256_file(dest) == sha256):
            return dest, sha256_file(dest)
        res = self._fetch(url, dest, sha256)
        return dest, res.sha256

    def _done(self, row: Dict[str, str]) -> None:
        self.rows[row["local_path"]] = row
        write_manifest(self.folder, self.header, self.rows)
        self.say(f"   wrote {row['local_path']} ({row['bytes']} bytes, {row['n_lines']} lines, sha256 {row['sha256'][:12]}...)")

    def _drop(self, path: Path) -> None:
        if not self.keep:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def run(self, job: Job) -> str:
        """Run one job; returns ``"skipped"`` or ``"done"``."""
        verified = {o.rel for o in job.outputs if is_verified(self.folder, self.rows, job, o)}
        todo = [o for o in job.outputs if o.rel not in verified]
        # A file this recipe did not write (another source, e.g. the staged data, or other
        # parameters) is kept unless --force: get never silently replaces someone's data.
        foreign = [o for o in todo if (self.folder / o.rel).exists()
                   and self.rows.get(o.rel, {}).get("description") != job.description()]
        if foreign and not self.force:
            for o in foreign:
                row = self.rows.get(o.rel)
                origin = f"MANIFEST: {row.get('source_repo')} {row.get('source_path')}" if row else "not in MANIFEST.tsv"
                print(f"   kept existing {o.rel} ({origin}; not written by this recipe; --force replaces it)")
            todo = [o for o in todo if o not in foreign]
            if job.how == "sample_parallel" and todo:
                todo = []  # both sides of a sample are written together
        if not todo:
            for o in job.outputs:
                if o.rel in verified:
                    self.say(f"   verified, skipped: {o.rel}")
            return "skipped"
        getattr(self, f"_{job.how}")(job, todo)
        return "done"

    def _copy(self, job: Job, todo: List[Output]) -> None:
        (out,) = todo
        self.say(f"== {job.kind}: {job.url} -> {out.rel}")
        cached, digest = self._download(job.url, job.sha256)
        dest = self.folder / out.rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self.keep:
            with atomic_write(dest, "wb") as dst, open(cached, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
        else:
            os.replace(cached, dest)  # same file system: atomic
        self._done(_row(job, out, self.folder, digest, job.url))

    def _extract(self, job: Job, todo: List[Output]) -> None:
        self.say(f"== {job.kind}: {job.url}")
        archive, digest = self._download(job.url, job.sha256)
        for out in todo:
            with open_member(archive, out.member) as src, atomic_write(self.folder / out.rel, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            self._done(_row(job, out, self.folder, digest, f"{job.url}!{out.member}"))
        self._drop(archive)

    def _sample_parallel(self, job: Job, todo: List[Output]) -> None:
        n_want, seed = job.params["pairs"], job.params["seed"]
        self.say(f"== {job.kind}: {job.url} (sample of {n_want} pairs, seed {seed})")
        archive, digest = self._download(job.url, job.sha256)
        a, b = job.outputs  # both sides are written together: one sample
        # pass 1: count the pairs (both sides together, so that a misaligned corpus is caught)
        n = 0
        with open_member(archive, a.member) as fa, open_member(archive, b.member) as fb:
            for la, lb in itertools.zip_longest(fa, fb):
                if la is None or lb is None:
                    short = a.member if la is None else b.member
                    raise InputFormatError(archive, 0, f"member {short} ends after {n} lines but the other side "
                                                       "continues: not a line-aligned moses corpus")
                n += 1
        keep = sorted(random.Random(seed).sample(range(n), n_want)) if n > n_want else range(n)
        if n < n_want:
            self.say(f"   the corpus has only {n} pairs: all of them are kept")
        with contextlib.ExitStack() as st:
            fa, fb = (st.enter_context(open_member(archive, o.member)) for o in (a, b))
            outs = []
            for o in (a, b):
                raw = st.enter_context(atomic_write(self.folder / o.rel, "wb"))
                # filename="" and mtime=0: the same sample gives the same bytes (and SHA-256)
                outs.append(st.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)))
            it = iter(keep)
            nxt = next(it, None)
            for i, (la, lb) in enumerate(zip(fa, fb)):
                if i == nxt:
                    outs[0].write(la if la.endswith(b"\n") else la + b"\n")
                    outs[1].write(lb if lb.endswith(b"\n") else lb + b"\n")
                    nxt = next(it, None)
                    if nxt is None:
                        break
        for o in (a, b):
            self._done(_row(job, o, self.folder, digest, f"{job.url}!{o.member}"))
        self._drop(archive)

    def _mono_bytes(self, job: Job, todo: List[Output]) -> None:
        (out,) = todo
        budget, lang, n_shards = job.params["bytes"], job.params["lang"], job.params["n_shards"]
        self.say(f"== {job.kind}: {lang}, {budget} bytes of text from {_fmt(job.url, lang=lang, shard=0, n_shards=n_shards)} ...")
        written, used, shards = 0, [], []
        with atomic_write(self.folder / out.rel, "wb") as dst:
            for shard in range(n_shards):
                if written >= budget:
                    break
                url = _fmt(job.url, lang=lang, shard=shard, n_shards=n_shards)
                path, _ = self._download(url, None)
                shards.append(path)
                used.append(shard)
                full = False
                with gzip.open(path, "rb") as fh:
                    for lineno, raw in enumerate(fh, start=1):
                        try:
                            text = json.loads(raw)["text"]
                        except (ValueError, KeyError, TypeError) as e:
                            raise InputFormatError(path, lineno, f"not an mC4 json line with a 'text' field ({e})") from None
                        for para in text.replace("\r", " ").split("\n"):
                            para = para.strip()
                            if not para:
                                continue
                            data = (para + "\n").encode("utf-8")
                            if written + len(data) > budget:
                                full = True
                                break
                            dst.write(data)
                            written += len(data)
                        if full:
                            break
                if full:
                    break
        if written < budget:
            self.say(f"   mC4 has only {written} bytes of {lang} text in its {n_shards} shards (asked for {budget})")
        src = f"{_fmt(job.url, lang=lang, shard=used[0], n_shards=n_shards)} .. shard {used[-1]:05d}"
        self._done(_row(job, out, self.folder, "", src))
        for p in shards:
            self._drop(p)


# ----------------------------------------------------------------------------------------------
# verify / list


def staged_pins(sources: Optional[Dict] = None) -> Dict[str, Dict[str, str]]:
    """``{local_path: row}`` of the staged data's pinned files (``staged_sources.tsv``: source
    repository, path, commit and the SHA-256 of the byte-exact copy)."""
    table = (sources or load_sources())["kinds"]
    out = {}
    for spec in table.values():
        if spec.get("how") == "manifest":
            for r in staged_rows(spec):
                if r.get("sha256"):
                    out[r["local_path"]] = r
    return out


def verify(folder: os.PathLike, lines: bool = False, methods: Optional[Dict[str, str]] = None
           ) -> Tuple[int, List[str]]:
    """Check every file of ``folder/MANIFEST.tsv``: it exists, has the listed size and a SHA-256
    equal to the MANIFEST's own ``sha256`` column or, where the row has none (the staged data's
    MANIFEST), to the checksum pinned for that file in ``staged_sources.tsv`` when the row names the
    same source (repository, path and commit); line counts too with ``lines``.

    Args:
        folder: the data folder.
        lines: also recount lines.
        methods: filled with ``{local_path: "sha256" | "sha256 (pinned)" | "size"}``: how each file
            was checked ("size": no checksum recorded or pinned for it).

    Returns:
        (number of files checked, problems as ``path: what`` strings). Lines are counted as
        :func:`n_lines` (``wc -l``).

    Raises:
        FileNotFoundError: no MANIFEST.tsv in ``folder``.
    """
    folder = Path(folder)
    if not (folder / "MANIFEST.tsv").is_file():
        raise FileNotFoundError(f"{folder / 'MANIFEST.tsv'}: no MANIFEST.tsv (is {folder} a csfair data folder?)")
    _, rows = read_manifest(folder)
    pins = staged_pins()
    methods = methods if methods is not None else {}
    problems = []
    for rel, row in rows.items():
        path = folder / rel
        pin = pins.get(rel)
        if row.get("sha256"):
            want, how = row["sha256"], "sha256"
        elif pin and all(pin.get(k) == row.get(k) for k in ("source_repo", "source_path", "commit")):
            want, how = pin["sha256"], "sha256 (pinned)"
        else:
            want, how = None, "size"
        methods[rel] = how
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        size = path.stat().st_size
        if row.get("bytes") and str(size) != row["bytes"]:
            problems.append(f"{rel}: {size} bytes, MANIFEST says {row['bytes']}")
            continue
        if want and sha256_file(path) != want:
            problems.append(f"{rel}: SHA-256 differs from the MANIFEST's" if how == "sha256" else
                            f"{rel}: SHA-256 differs from the one pinned in {SOURCES.with_name('staged_sources.tsv').name} "
                            f"({row.get('source_repo')}@{row.get('commit', '')[:12]}:{row.get('source_path')}); same size: "
                            "the content was changed")
            continue
        if lines and row.get("n_lines") and str(n_lines(path)) != row["n_lines"]:
            problems.append(f"{rel}: {n_lines(path)} lines, MANIFEST says {row['n_lines']}")
    return len(rows), problems


def _status(folder: Path, rows: Dict, rel: str) -> str:
    path = folder / rel
    if not path.is_file():
        return "missing"
    row = rows.get(rel)
    if row is None:
        return "present (not in MANIFEST)"
    if row.get("bytes") and str(path.stat().st_size) != row["bytes"]:
        return "present, size differs from MANIFEST"
    return "present"


def cmd_list(args) -> None:
    sources = load_sources(args.sources)
    table = sources["kinds"]
    if not args.pair:
        pairs = PAPER_PAIRS
        width = max(len(k) for k in table)
        print(f"{'kind':<{width}}  " + "  ".join(pairs) + "  source")
        for kind, spec in table.items():
            if spec.get("any_pair"):
                print(f"{kind:<{width}}  (any pair: csfair-data get --what {kind})  {spec.get('description', '')}")
                continue
            marks = ["  yes" if kind_langs(spec, split_pair(p)[1]) else "   - " for p in pairs]
            print(f"{kind:<{width}}  " + "  ".join(f"{m:<5}" for m in marks) + f"  {spec.get('source', '')}: {spec.get('description', '')}")
        return
    folder = Path(args.out) if args.out else data_root()
    _, rows = read_manifest(folder) if (folder / "MANIFEST.tsv").exists() else (None, {})
    jobs, notes = plan(sources, args.pair, args.what.split(",") if args.what else None)
    for job in jobs:
        for o in job.outputs:
            if args.paths:
                print(f"{job.kind}\t{o.rel}")
            else:
                print(f"{job.kind:<10} {o.rel:<55} {_status(folder, rows, o.rel):<10}  {job.url if job.how != 'mono_bytes' else job.url.split('{')[0] + '...'}")
    if not args.paths:
        for n in notes:
            print(f"(none) {n}")


def cmd_get(args) -> None:
    sources = load_sources(args.sources)
    folder = Path(args.out) if args.out else data_root()
    folder.mkdir(parents=True, exist_ok=True)
    mirror = args.mirror or os.environ.get("CSFAIR_DATA_MIRROR") or None
    overrides = {"pairs": args.pairs, "seed": args.seed, "bytes_en": args.bytes_en, "bytes_tgt": args.bytes_tgt}
    jobs, notes = plan(sources, args.pair, args.what.split(",") if args.what else None, overrides)
    if args.only:
        jobs = [j for j in jobs if any(fnmatch.fnmatch(o.rel, args.only) for o in j.outputs)]
        if not jobs:
            raise ValueError(f"--only {args.only!r} matches none of the files (csfair-data list shows them)")
    for n in notes:
        print(f"   nothing to fetch: {n}")
    runner = Runner(folder, mirror=mirror, keep_downloads=args.keep_downloads, retries=args.retries,
                    timeout=args.timeout, quiet=args.quiet, force=args.force)
    failed = []
    counts = {"done": 0, "skipped": 0}
    for job in jobs:
        try:
            counts[runner.run(job)] += 1
        except (SourceUnreachable, ChecksumMismatch, InputFormatError) as e:
            failed.append(f"{job.kind}: {e}")
            print(f"csfair-data get: error: {job.kind}: {e}", file=sys.stderr)
    print(f"csfair-data get {args.pair or args.what}: {counts['done']} fetched, {counts['skipped']} skipped (verified or kept), "
          f"{len(failed)} failed -> {folder}")
    if failed:
        raise SystemExit(3)


def cmd_verify(args) -> None:
    methods: Dict[str, str] = {}
    n, problems = verify(args.dir, lines=args.lines, methods=methods)
    for p in problems:
        print(f"FAILED {p}")
    by_sha = sum(1 for m in methods.values() if m.startswith("sha256"))
    size_only = sorted(rel for rel, m in methods.items() if m == "size")
    for rel in size_only:
        if not any(p.startswith(f"{rel}:") for p in problems):
            print(f"size-checked {rel} (no checksum recorded or pinned)")
    print(f"{args.dir}: {n - len(problems)} of {n} files verified ({by_sha} checked by SHA-256, {len(size_only)} "
          f"size-checked only{'; lines recounted' if args.lines else ''})")
    if problems:
        raise SystemExit(1)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="csfair-data", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Sources: csfair_cli/data_sources.toml. Exit status: 1 verify found problems, "
                                       "2 bad arguments or input, 3 a source could not be fetched.")
    p.add_argument("--sources", default=None, help="sources file (default: csfair_cli/data_sources.toml)")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("list", help="sources per pair, or one pair's files and whether they are present")
    s.add_argument("--pair", help="en-XX: list its files (default: the availability table of the paper's pairs)")
    s.add_argument("--what", help="comma-separated kinds (default: all the pair has)")
    s.add_argument("--out", help="data folder to check (default: $CSFAIR_DATA)")
    s.add_argument("--paths", action="store_true", help="print only 'kind<TAB>path' lines")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("get", help="fetch a pair's sources into a data folder")
    s.add_argument("--pair", help="en-XX, e.g. en-fr (the paper's: " + ", ".join(PAPER_PAIRS) + "); not needed for --what staged")
    s.add_argument("--what", help="comma-separated kinds: muse, parallel, mono, xnli, afrixnli, mnli, panx, ud, "
                                  "stopwords, staged (default: every kind the pair has, staged excepted)")
    s.add_argument("--only", help="only the files whose path (under --out) matches this glob, e.g. 'ud/*'")
    s.add_argument("--out", help="data folder (default: $CSFAIR_DATA); its MANIFEST.tsv is updated")
    s.add_argument("--mirror", help="fetch https://HOST/PATH from MIRROR/HOST/PATH instead (default: $CSFAIR_DATA_MIRROR)")
    s.add_argument("--pairs", type=int, help="parallel: pairs to sample (default from the sources file: 1,000,000)")
    s.add_argument("--seed", type=int, help="parallel: sampling seed (default 1)")
    s.add_argument("--bytes-en", type=int, help="mono: bytes of English text (default 1,000,000,000)")
    s.add_argument("--bytes-tgt", type=int, help="mono: bytes of target-language text (default 100,000,000)")
    s.add_argument("--keep-downloads", action="store_true",
                   help=f"keep raw downloads (archives, mC4 shards) in OUT/{DOWNLOADS}/ after processing")
    s.add_argument("--retries", type=int, default=3, help="attempts after a failed transfer, each resuming (default 3)")
    s.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a read fails (default 60)")
    s.add_argument("--quiet", action="store_true", help="print only the summary and errors")
    s.add_argument("--force", action="store_true",
                   help="replace existing files that this recipe did not write (default: keep them and say so)")
    s.set_defaults(func=cmd_get)

    s = sub.add_parser("verify", help="check the files a MANIFEST.tsv lists (SHA-256 where recorded or pinned, "
                                      "else size, said per file)")
    s.add_argument("dir", help="data folder holding MANIFEST.tsv")
    s.add_argument("--lines", action="store_true", help="also recount lines (slower)")
    s.set_defaults(func=cmd_verify)
    return p


def main(argv=None) -> None:
    run_cli(build_parser(), argv)


if __name__ == "__main__":
    main()
