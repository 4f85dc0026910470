"""csfair-data against a loopback HTTP server (no network): the real sources file, fetched through
``--mirror`` from small fixtures in the sources' own formats, built from tiny slices of real data.

The server speaks HTTP Range (206 / Content-Range) and can cut a transfer after N bytes, so that
interruption and resumption are exercised over a real socket.
"""
import gzip
import http.server
import io
import json
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from csfair_cli import data as cd
from csfair_cli.fetch import ChecksumMismatch, SourceUnreachable, fetch
from csfair.io import sha256_file
from csfair.paths import data_root

DATA = data_root()
C4 = ("huggingface.co/datasets/allenai/c4/resolve/1ddc917116b730e1859edef32896ec5c16be51d0/multilingual/"
      "c4-{lang}.tfrecord-{shard:05d}-of-{n:05d}.json.gz")
XNLI_COLS = ["language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse",
             "sentence2_parse", "sentence1", "sentence2", "promptID", "pairID", "genre", "label1", "label2",
             "label3", "label4", "label5", "sentence1_tokenized", "sentence2_tokenized", "match"]


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` ({path: bytes}) with Range support; ``server.cut[path] = n`` sends only
    the first n bytes of the next full response, then closes the connection."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        path = self.path.split("?")[0]
        rng = self.headers.get("Range")
        srv.log.append((path, rng))
        body = srv.files.get(path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng and not srv.no_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = srv.cut.pop(path, None)
        self.wfile.write(body[start:cut] if cut is not None else body[start:])
        if cut is not None:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.files, srv.cut, srv.log, srv.no_range = {}, {}, [], False
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def head(path, n):
    with (gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")) as fh:
        return b"".join(fh.readline() for _ in range(n))


def zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def c4_shard(lines, per_doc=4):
    docs = ["\n".join(lines[i:i + per_doc]) for i in range(0, len(lines), per_doc)]
    raw = "".join(json.dumps({"text": d, "timestamp": "2020-01-01T00:00:00Z", "url": f"https://example.org/{i}"}) + "\n"
                  for i, d in enumerate(docs))
    return gzip.compress(raw.encode("utf-8"), mtime=0)


@pytest.fixture
def fixtures(server):
    """The en-fr sources in their real formats, from real data slices, at their mirrored paths."""
    f = server.files
    muse = {d: head(DATA / f"dict/muse/{d}.txt", 300) for d in ("en-fr", "fr-en")}
    for d, body in muse.items():
        f[f"/dl.fbaipublicfiles.com/arrival/dictionaries/{d}.txt"] = body
    en = head(DATA / "parallel/multi30k/val.en.gz", 400)
    fr = head(DATA / "parallel/multi30k/val.fr.gz", 400)
    f["/object.pouta.csc.fi/OPUS-NLLB/v1/moses/en-fr.txt.zip"] = zip_bytes(
        {"NLLB.en-fr.en": en, "NLLB.en-fr.fr": fr, "README": b"OPUS NLLB v1 (fixture)\n"})
    mono = {lg: (DATA / f"mono/derived/{lg}.txt").open(encoding="utf-8").read(200_000).split("\n")[:1200]
            for lg in ("en", "fr")}
    for shard in (0, 1):
        f["/" + C4.format(lang="en", shard=shard, n=11264)] = c4_shard(mono["en"][shard * 250:(shard + 1) * 250])
    f["/" + C4.format(lang="fr", shard=0, n=2048)] = c4_shard(mono["fr"][:600])
    rows = []
    for lg in ("en", "fr"):
        for line in head(DATA / f"nli/xnli-xtreme/dev-{lg}.tsv", 30).decode("utf-8").splitlines():
            p, h, label = line.split("\t")
            vals = dict.fromkeys(XNLI_COLS, "")
            vals.update(language=lg, gold_label=label, sentence1=p, sentence2=h, genre="fiction")
            rows.append("\t".join(vals[c] for c in XNLI_COLS))
    tsv = ("\t".join(XNLI_COLS) + "\n" + "\n".join(rows) + "\n").encode("utf-8")
    f["/dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip"] = zip_bytes(
        {"XNLI-1.0/xnli.dev.tsv": tsv, "XNLI-1.0/xnli.test.tsv": tsv, "XNLI-1.0/README.md": b"x\n"})
    stop = (DATA / "stopwords/stopwords-iso/stopwords-iso.json").read_bytes()
    f["/raw.githubusercontent.com/stopwords-iso/stopwords-iso/6e8e9a2d1c019ad2a885bcbe157628dea624dfb6/"
      "stopwords-iso.json"] = stop
    return {"muse": muse, "en": en, "fr": fr, "mono": mono, "xnli": tsv, "stop": stop}


def get(server, out, *extra):
    """Run `csfair-data get` in-process; returns the exit status."""
    argv = ["get", "--pair", "en-fr", "--out", str(out), "--mirror", server.url, "--retries", "0", "--quiet",
            "--pairs", "50", "--bytes-en", "30000", "--bytes-tgt", "6000", *extra]
    try:
        cd.main(argv)
    except SystemExit as e:
        return e.code
    return 0


WHAT = "muse,parallel,mono,xnli,stopwords"


def test_get_lays_out_the_sources_with_a_manifest_and_is_idempotent(server, fixtures, tmp_path, capsys):
    out = tmp_path / "data"
    assert get(server, out, "--what", WHAT) == 0
    # byte-exact copies and archive members
    assert (out / "dict/muse/en-fr.txt").read_bytes() == fixtures["muse"]["en-fr"]
    assert (out / "dict/muse/fr-en.txt").read_bytes() == fixtures["muse"]["fr-en"]
    assert (out / "nli/xnli-1.0/xnli.test.tsv").read_bytes() == fixtures["xnli"]
    assert (out / "stopwords/stopwords-iso/stopwords-iso.json").read_bytes() == fixtures["stop"]
    # the parallel sample: 50 real, aligned pairs in corpus order
    pairs = list(zip(fixtures["en"].decode().splitlines(), fixtures["fr"].decode().splitlines()))
    got_en = gzip.decompress((out / "parallel/nllb/en-fr/train.en.gz").read_bytes()).decode().splitlines()
    got_fr = gzip.decompress((out / "parallel/nllb/en-fr/train.fr.gz").read_bytes()).decode().splitlines()
    assert len(got_en) == len(got_fr) == 50
    index = [pairs.index(p) for p in zip(got_en, got_fr)]
    assert index == sorted(index) and len(set(index)) == 50
    # mono: whole paragraphs in shard order, within the byte budget, reaching into the second shard
    en_txt = (out / "mono/mc4/en.txt").read_bytes()
    longest = max(len(x.encode()) + 1 for x in fixtures["mono"]["en"])
    assert 30000 - longest < len(en_txt) <= 30000
    lines = en_txt.decode().splitlines()
    assert lines == [x.strip() for x in fixtures["mono"]["en"] if x.strip()][:len(lines)]
    assert any("00001-of-11264" in p for p, _ in server.log)
    assert len((out / "mono/mc4/fr.txt").read_bytes()) <= 6000
    # MANIFEST: the columns of $CSFAIR_DATA/MANIFEST.tsv, in order, then the checksums
    real_header = (DATA / "MANIFEST.tsv").read_text(encoding="utf-8").split("\n")[0].split("\t")
    header, rows = cd.read_manifest(out)
    assert header[:len(real_header)] == real_header and header[len(real_header):] == ["sha256", "source_sha256"]
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()
                   and p.name != "MANIFEST.tsv" and cd.DOWNLOADS not in p.parts)
    assert sorted(rows) == files
    for rel, row in rows.items():
        assert row["sha256"] == sha256_file(out / rel) and int(row["bytes"]) == (out / rel).stat().st_size
    assert not (out / cd.DOWNLOADS).exists() or not any(p.is_file() for p in (out / cd.DOWNLOADS).rglob("*"))
    n, problems = cd.verify(out, lines=True)
    assert n == len(files) and problems == []
    # second run: nothing is downloaded again
    before = len(server.log)
    assert get(server, out, "--what", WHAT) == 0
    assert len(server.log) == before
    # the same sample again elsewhere: the same bytes
    out2 = tmp_path / "again"
    assert get(server, out2, "--what", "parallel") == 0
    assert sha256_file(out2 / "parallel/nllb/en-fr/train.fr.gz") == rows["parallel/nllb/en-fr/train.fr.gz"]["sha256"]
    # verify notices a changed file
    (out / "dict/muse/en-fr.txt").write_bytes(fixtures["muse"]["en-fr"].replace(b"the", b"teh", 1))
    n, problems = cd.verify(out)
    assert problems == ["dict/muse/en-fr.txt: SHA-256 differs from the MANIFEST's"]


def test_interrupted_download_resumes_with_a_range_request(server, fixtures, tmp_path, capsys):
    out = tmp_path / "data"
    path = "/dl.fbaipublicfiles.com/arrival/dictionaries/en-fr.txt"
    server.cut[path] = 1000
    assert get(server, out, "--what", "muse") == 3
    err = capsys.readouterr().err
    assert server.url + path in err and "1000 bytes kept" in err
    part = out / cd.DOWNLOADS / "dl.fbaipublicfiles.com/arrival/dictionaries/.en-fr.txt.part"
    assert part.stat().st_size == 1000 and not (out / "dict/muse/en-fr.txt").exists()
    assert get(server, out, "--what", "muse") == 0
    assert (path, "bytes=1000-") in server.log
    assert (out / "dict/muse/en-fr.txt").read_bytes() == fixtures["muse"]["en-fr"] and not part.exists()


def test_checksum_mismatch_and_unreachable_sources_fail_clearly(server, fixtures, tmp_path, capsys):
    url = ("https://raw.githubusercontent.com/stopwords-iso/stopwords-iso/6e8e9a2d1c019ad2a885bcbe157628dea624dfb6/"
           "stopwords-iso.json")
    pinned = cd.load_sources()["kinds"]["stopwords"]["sha256"][url]
    assert pinned == sha256_file(DATA / "stopwords/stopwords-iso/stopwords-iso.json")
    server.files["/" + url.split("://")[1]] = fixtures["stop"].replace(b'"the"', b'"teh"', 1)
    dest = tmp_path / "sw.json"
    with pytest.raises(ChecksumMismatch, match="differs from the pinned"):
        fetch(url, dest, sha256=pinned, mirror=server.url, retries=0)
    assert not dest.exists() and not (tmp_path / ".sw.json.part").exists()
    # a missing file names the URL; a closed port names the URL and what to do
    with pytest.raises(SourceUnreachable, match=r"nothing\.txt: not found"):
        fetch("https://example.org/nothing.txt", tmp_path / "n.txt", mirror=server.url, retries=0)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    assert get(server, tmp_path / "d", "--what", "muse", "--mirror", closed) == 3
    err = capsys.readouterr().err
    assert f"{closed}/dl.fbaipublicfiles.com/arrival/dictionaries/en-fr.txt" in err and "CSFAIR_DATA_MIRROR" in err
    # the advice holds: files downloaded by hand to the named paths are used without the network
    for d in ("en-fr", "fr-en"):
        hand = tmp_path / "d" / cd.DOWNLOADS / f"dl.fbaipublicfiles.com/arrival/dictionaries/{d}.txt"
        assert str(hand) in err
        hand.write_bytes(fixtures["muse"][d])
    assert get(server, tmp_path / "d", "--what", "muse", "--mirror", closed) == 0
    assert (tmp_path / "d/dict/muse/fr-en.txt").read_bytes() == fixtures["muse"]["fr-en"]


def test_existing_data_is_kept_and_missing_sources_are_named(server, fixtures, tmp_path, capsys):
    out = tmp_path / "data"
    mine = out / "dict/muse/en-fr.txt"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"chat cat\n")
    assert get(server, out, "--what", "muse") == 0
    assert mine.read_bytes() == b"chat cat\n" and "kept existing dict/muse/en-fr.txt" in capsys.readouterr().out
    assert get(server, out, "--what", "muse", "--force") == 0
    assert mine.read_bytes() == fixtures["muse"]["en-fr"]
    # Swahili and Xhosa have no MUSE dictionary: asking for one is an error naming what exists
    for pair in ("en-sw", "en-xh"):
        with pytest.raises(ValueError, match="no facebookresearch/MUSE data for (sw|xh)"):
            cd.plan(cd.load_sources(), pair, ["muse"])


def test_verify_the_staged_data_by_size_and_lines():
    n, problems = cd.verify(DATA, lines=True)
    assert n > 100 and problems == []


def test_resume_without_range_support_and_after_a_complete_transfer(server, fixtures, tmp_path):
    path = "/dl.fbaipublicfiles.com/arrival/dictionaries/fr-en.txt"
    url = "https://" + path[1:]
    body = fixtures["muse"]["fr-en"]
    dest = tmp_path / "fr-en.txt"
    # a server that ignores Range answers 200: the partial file is rewritten from the start
    server.no_range = True
    server.cut[path] = 500
    with pytest.raises(SourceUnreachable, match="500 bytes kept"):
        fetch(url, dest, mirror=server.url, retries=0)
    res = fetch(url, dest, mirror=server.url, retries=0)
    assert dest.read_bytes() == body and res.resumed_from == 0
    # a transfer that completed but was not renamed (killed in between): 416, then kept as complete
    server.no_range = False
    dest.unlink()
    (tmp_path / ".fr-en.txt.part").write_bytes(body)
    res = fetch(url, dest, mirror=server.url, retries=0)
    assert dest.read_bytes() == body and res.resumed_from == len(body)
    assert server.log[-1] == (path, f"bytes={len(body)}-")


def tar_bytes(members, mode):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_panx_members_come_out_of_the_nested_archive(server, tmp_path):
    def panx(lang, rel):  # WikiANN rows (idx<TAB>token<TAB>tag) in PAN-X's lang:token<TAB>tag format
        out = []
        for line in head(DATA / rel, 120).decode("utf-8").splitlines():
            parts = line.split("\t")
            out.append(f"{lang}:{parts[1]}\t{parts[2]}" if len(parts) == 3 else "")
        return ("\n".join(out) + "\n").encode("utf-8")

    inner = {lg: {split: panx(lg, f"ner/{src}/{lg}/{f}.conllu") for split, f in (("train", "val"), ("dev", "test"), ("test", "test"))}
             for lg, src in (("en", "wikiann"), ("fr", "wikineural"))}
    outer = {f"./{lg}.tar.gz": tar_bytes(m, "w:gz") for lg, m in inner.items()}
    server.files["/www.dropbox.com/s/12h3qqog6q4bjve/panx_dataset.tar"] = tar_bytes(outer, "w")
    out = tmp_path / "data"
    assert get(server, out, "--what", "panx") == 0
    for lg, members in inner.items():
        for split, body in members.items():
            assert (out / f"ner/panx/{lg}/{split}").read_bytes() == body
    assert sorted(cd.read_manifest(out)[1]) == sorted(f"ner/panx/{lg}/{sp}" for lg in inner for sp in inner[lg])


def test_staged_files_come_byte_exact_with_the_staged_manifest_rows(server, tmp_path):
    real_header, real = cd.read_manifest(DATA)
    want = sorted(r for r in real if r.startswith("ud/UD_French-GSD/"))
    for rel in want:
        row = real[rel]
        server.files[f"/raw.githubusercontent.com/{row['source_repo']}/{row['commit']}/{row['source_path']}"] = \
            (DATA / rel).read_bytes()
    out = tmp_path / "data"
    assert get(server, out, "--what", "staged", "--only", "ud/UD_French-GSD/*") == 0
    _, rows = cd.read_manifest(out)
    assert sorted(rows) == want
    for rel in want:
        assert (out / rel).read_bytes() == (DATA / rel).read_bytes()
        assert [rows[rel][c] for c in real_header] == [real[rel][c] for c in real_header]
    # a staged folder (links to the real files, its MANIFEST without checksums): every file matches
    # its pin, so nothing is fetched and nothing is rewritten
    staged = tmp_path / "staged"
    for rel in want:
        (staged / rel).parent.mkdir(parents=True, exist_ok=True)
        (staged / rel).symlink_to(DATA / rel)
    (staged / "MANIFEST.tsv").write_bytes((DATA / "MANIFEST.tsv").read_bytes())
    n = len(server.log)
    assert get(server, staged, "--what", "staged", "--only", "ud/UD_French-GSD/*") == 0
    assert len(server.log) == n
    assert (staged / "MANIFEST.tsv").read_bytes() == (DATA / "MANIFEST.tsv").read_bytes()
    assert all((staged / rel).is_symlink() for rel in want)
