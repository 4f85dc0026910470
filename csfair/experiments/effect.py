"""What code-switching does: the controlled experiments of csfair issue 24 (protocol: docs/experiments.md).

* :func:`prepare_synthetic` builds experiment A's data: English and its script-mapped copy
  (:mod:`csfair.lexicons.synthetic`), disjoint slices, held-out words, the shared vocabulary, the
  binarised corpora and the ``ibm1`` and ``dict`` substitution tables (``csfair-lexicon table``,
  the library's defaults), and checks that no held-out word is in any table.
* :func:`prepare_pair` builds experiment B's data with the recipe (``scripts/recipes/pair.sh
  --prep-only``) and its held-out evaluation sets.
* :func:`train_runs` pretrains every system and seed (two runs at a time, one thread each), through
  ``fairseq-train --task codeswitch_masked_lm`` (A) or the recipe (B); a run is done only when the
  trainer exited 0 and its checkpoint reached its target.
* :func:`evaluate` extracts vectors (``python -m user_dir.features``) for the trained models and the
  random-init controls, computes the measures (:mod:`csfair.evaluation.crosslingual`), the held-out
  MLM accuracy (``scripts/eval_mlm.py --compare``) and prints the tables with the hierarchical test
  and Holm's correction over the primary family.

Everything is written under one output folder; every step skips itself when its outputs exist.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from csfair.evaluation import crosslingual as X
from csfair.io import atomic_write, iter_lines, read_text
from csfair.paths import data_file

ROOT = Path(__file__).resolve().parents[2]
SYN = "xx"  #: code of the synthetic language
SYSTEM_TABLE = {"none": None, "ibm1": "ibm1", "dict": "dict", "muse": "muse"}


def log(msg: str) -> None:
    print(f"[effect {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _python() -> str:
    return sys.executable


def _env(threads: Optional[int] = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    if threads:
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(threads)
    return env


def run(cmd: Sequence, log_path: Optional[Path] = None, threads: Optional[int] = None) -> str:
    """Run ``cmd`` (from the repository root); its output goes to ``log_path`` (or is returned).

    Raises:
        RuntimeError: non-zero exit (the last lines of its output in the message).
    """
    cmd = [str(c) for c in cmd]
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"# {time.strftime('%F %T')} {' '.join(cmd)}\n")
            fh.flush()
            p = subprocess.run(cmd, cwd=ROOT, env=_env(threads), stdout=fh, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            tail = read_text(log_path).splitlines()[-25:]
            raise RuntimeError(f"{cmd[0]} ... failed (exit {p.returncode}); {log_path}:\n" + "\n".join(tail))
        return ""
    p = subprocess.run(cmd, cwd=ROOT, env=_env(threads), capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed (exit {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    return p.stdout


def _write_json(path: Path, obj) -> None:
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=1, ensure_ascii=False, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        fh.writelines(line + "\n" for line in lines)


def _read_lines(path: Path) -> List[str]:
    text = read_text(path)
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def loadavg() -> str:
    try:
        return "%.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------------------- settings
@dataclass
class Shape:
    """Encoder shape (fairseq RoBERTa, ``cs_roberta_tiny`` with these overrides) and vocabulary."""

    layers: int = 2
    embed_dim: int = 64
    ffn_dim: int = 256
    heads: int = 4
    vocab_size: int = 2000
    arch: str = "cs_roberta_tiny"

    def args(self) -> List[str]:
        return ["--encoder-layers", self.layers, "--encoder-embed-dim", self.embed_dim,
                "--encoder-ffn-embed-dim", self.ffn_dim, "--encoder-attention-heads", self.heads]

    def eval_layers(self) -> Optional[List[int]]:
        """Layers whose vectors are kept: all for small models, else the embeddings, the middle and the top
        (a roberta-base's 13 layers of POS word vectors would take gigabytes)."""
        if self.layers <= 4:
            return None
        return [0, (self.layers + 1) // 2, self.layers]


@dataclass
class Training:
    """Pretraining settings shared by every system (the recipe's optimiser; Visser et al.'s dose)."""

    max_update: int = 3000
    batch_size: int = 32
    tokens_per_sample: int = 128
    lr: float = 1.5e-3
    warmup: Optional[int] = None  # default: 10% of max_update, as the recipe's 80 of 800
    save_interval: int = 0  # >0: keep a checkpoint every N updates (the curve)
    num_workers: int = 1
    cs_word_prob: float = 0.03
    cs_instance_prob: float = 0.5
    max_invalid_size_share: float = 0.02
    extra: List[str] = field(default_factory=list)  # more fairseq-train options (e.g. --bf16 on a GPU)
    cpu: bool = True  # train on the CPU (fairseq-train --cpu); False: fairseq's default device

    def warmup_updates(self) -> int:
        return self.warmup if self.warmup is not None else max(1, self.max_update // 10)


# ----------------------------------------------------------------------------------- A: synthetic data
@dataclass
class SyntheticData:
    """Slices and held-out words of experiment A (defaults: the protocol)."""

    corpus: str = "mono/derived/en.txt"
    train_lines: int = 30000
    parallel_lines: int = 5600
    retrieval_test: int = 1000
    retrieval_dev: int = 500
    test_lines: int = 1000
    valid_lines: int = 500
    held_out_fraction: float = 0.2
    min_test_count: int = 1
    dev_words: int = 500
    seen_words: int = 1000
    pos_train: int = 2000
    pos_test: int = 0  # 0: every sentence of the dev file
    seed: int = 1
    share_nonletters: bool = False


def _english_stopwords(corpus_path: Path):
    """The English list ``csfair-lexicon table`` uses by default (same function, same default spec)."""
    from csfair.pretraining.function_words import DEFAULT_SPEC, table_stopwords
    from csfair.text import CorpusCounts

    return table_stopwords(DEFAULT_SPEC, "en", CorpusCounts.from_files(corpus_path, "en"))


def _ud_pos(path: Path, n: int, seed: int):
    from csfair.evaluation.corpora import read_udpos_tsv

    sents = read_udpos_tsv(path)
    if n and n < len(sents):
        idx = np.sort(np.random.default_rng(seed).choice(len(sents), size=n, replace=False))
        sents = [sents[i] for i in idx]
    return [list(s.words) for s in sents], [list(s.labels) for s in sents]


def _build_vocab_and_bin(text: Path, data_bin: Path, langs: Sequence[str], vocab_size: int, logdir: Path,
                         spm_model: Optional[Path] = None) -> dict:
    """Shared sentencepiece model (``spm_model``, or one trained on every language's training text),
    fairseq dictionary and ``fairseq-preprocess --only-source`` per language."""
    from csfair.pretraining.vocab import encode_file, train_sentencepiece, write_fairseq_dict

    data_bin.mkdir(parents=True, exist_ok=True)
    stats = {} if spm_model else train_sentencepiece({lg: text / f"{lg}.train.tok" for lg in langs}, data_bin / "spm",
                                                     vocab_size=vocab_size)
    for lg in langs:
        for split in ("train", "valid", "test"):
            encode_file(data_bin / "spm.model", text / f"{lg}.{split}.tok", text / f"{lg}.{split}.spm")
    write_fairseq_dict(data_bin / "spm.model", [text / f"{lg}.train.spm" for lg in langs], data_bin / "dict.txt")
    for lg in langs:
        tmp = data_bin / f".{lg}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        run(["fairseq-preprocess", "--only-source", "--srcdict", data_bin / "dict.txt",
             "--trainpref", text / f"{lg}.train.spm", "--validpref", text / f"{lg}.valid.spm",
             "--testpref", text / f"{lg}.test.spm", "--destdir", tmp, "--workers", 1], log_path=logdir / "preprocess.log")
        shutil.rmtree(data_bin / lg, ignore_errors=True)
        tmp.rename(data_bin / lg)
    return stats


def _table(lexicon: Path, data_bin: Path, out: Path, src_corpus: Path, tgt_corpus: Path, extra: Sequence[str],
           logdir: Path) -> dict:
    stdout = run([_python(), "-m", "csfair_cli.lexicon", "table", "--lexicon", lexicon, "--spm-model",
                  data_bin / "spm.model", "--dict", data_bin / "dict.txt", "--out", out, "--src-corpus", src_corpus,
                  "--tgt-corpus", tgt_corpus, "--quiet", *extra])
    (logdir / f"table.{out.name}.json").write_text(stdout, encoding="utf-8")
    return json.loads(stdout.strip().splitlines()[-1])


def table_words(table_dir: Path) -> Tuple[set, set]:
    """Lower-cased source words and candidate words of a substitution table."""
    from csfair.pretraining.substitution_table import SubstitutionTable
    from csfair.text import lower

    t = SubstitutionTable.load(table_dir)
    return {lower(w) for w in t.source_words()}, {lower(w) for w in t.cand_words()}


def prepare_synthetic(out: Path, cfg: SyntheticData, shape: Shape) -> dict:
    """Experiment A's data under ``out`` (``data-bin/``, ``text/``, ``lexicons/``, ``eval_inputs.json``,
    ``manifest.json``); skipped when ``manifest.json`` holds the same configuration.

    Raises:
        ValueError: the corpus has too few lines for the slices; a held-out word in a table.
    """
    from csfair.io import LineIssues
    from csfair.lexicons.ibm1 import table_to_lexicon, train_ibm1
    from csfair.lexicons.synthetic import (
        build_script_map,
        char_inventory,
        filter_lexicon,
        held_out_types,
        true_lexicon,
        word_types,
    )
    from csfair.text import lower, moses_tokenize_lines

    config = dict(data=asdict(cfg), vocab_size=shape.vocab_size, version=3)
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        m = json.loads(read_text(manifest_path))
        if m.get("config") == config:
            log(f"data ready: {manifest_path}")
            return m
        raise ValueError(f"{out} holds data built with another configuration ({m.get('config')}); use another --out")
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    text, lexdir, data_bin, logdir = out / "text", out / "lexicons", out / "data-bin", out / "logs"
    for d in (text, lexdir, logdir):
        d.mkdir(parents=True, exist_ok=True)

    tok_cache = out / "corpus.tok"
    if tok_cache.exists():
        lines = _read_lines(tok_cache)
    else:
        src = data_file(cfg.corpus)
        issues = LineIssues(str(src))
        raw = [t for _, t in iter_lines(src, issues, max_chars=10000)]
        issues.report()
        log(f"Moses-tokenising {len(raw):,} lines of {src}")
        lines = [t for t in moses_tokenize_lines(raw, "en", False, 2) if t.strip()]
        _write_lines(tok_cache, lines)
    order = np.random.default_rng(cfg.seed).permutation(len(lines))
    sizes = [("en.train", cfg.train_lines), ("xx.train", cfg.train_lines), ("parallel", cfg.parallel_lines),
             ("retrieval.test", cfg.retrieval_test), ("retrieval.dev", cfg.retrieval_dev),
             ("en.test", cfg.test_lines), ("xx.test", cfg.test_lines), ("en.valid", cfg.valid_lines),
             ("xx.valid", cfg.valid_lines)]
    need = sum(n for _, n in sizes)
    if need > len(lines):
        raise ValueError(f"{cfg.corpus}: {len(lines):,} usable lines, the slices need {need:,}")
    sl, pos = {}, 0
    for name, n in sizes:
        sl[name] = [lines[i] for i in order[pos:pos + n]]
        pos += n

    pos_train_w, pos_train_t = _ud_pos(data_file("pos/udpos-xtreme/train-en.tsv"), cfg.pos_train, cfg.seed)
    pos_dev_w, pos_dev_t = _ud_pos(data_file("pos/udpos-xtreme/dev-en.tsv"), cfg.pos_test, cfg.seed)
    # the stopwords of the tables' English side (the library's default list): their images are the xx list
    _write_lines(text / "en.train.tok", sl["en.train"])
    en_stop, en_stop_info = _english_stopwords(text / "en.train.tok")
    inventory = char_inventory(lines)
    inventory.update(char_inventory(" ".join(s) for s in pos_train_w + pos_dev_w))
    inventory.update(char_inventory(en_stop))
    smap = build_script_map(inventory, share_nonletters=cfg.share_nonletters)
    smap.save(out / "script_map.json")

    for lg in ("en", SYN):
        for split in ("train", "valid", "test"):
            src_lines = sl[f"{lg}.{split}"]
            _write_lines(text / f"{lg}.{split}.tok", src_lines if lg == "en" else [smap.map(x) for x in src_lines])

    # held-out words: 20% of the corpus's types, out of every table; the test words among them
    types = word_types(lines)
    held = held_out_types(types, cfg.held_out_fraction, cfg.seed)
    held_img = {smap.map(w) for w in held}
    c_en, c_xx = word_types(sl["en.train"]), word_types(sl["xx.train"])
    eligible = sorted(w for w in held if w.isalpha() and c_en[w] >= cfg.min_test_count and c_xx[w] >= cfg.min_test_count)
    rng = np.random.default_rng(cfg.seed)
    dev_idx = set(rng.choice(len(eligible), size=min(cfg.dev_words, len(eligible) // 4), replace=False).tolist())
    dev_words = [w for i, w in enumerate(eligible) if i in dev_idx]
    test_words = [w for i, w in enumerate(eligible) if i not in dev_idx]
    log(f"{len(types):,} word types, {len(held):,} held out of every table; test words {len(test_words):,}, "
        f"dev words {len(dev_words):,}")

    # vocabulary and binarised corpora: a sentencepiece model of the English training text, mirrored
    # (each piece and its image, same score) so that the two languages segment isomorphically
    from csfair.lexicons.synthetic import mirror_sentencepiece
    from csfair.pretraining.vocab import train_sentencepiece

    en_model = out / "spm_en"
    spm_stats = train_sentencepiece({"en": text / "en.train.tok"}, en_model, vocab_size=(shape.vocab_size + 4) // 2)
    data_bin.mkdir(parents=True, exist_ok=True)
    spm_stats["mirror"] = mirror_sentencepiece(f"{en_model}.model", smap, data_bin / "spm.model")
    _build_vocab_and_bin(text, data_bin, ("en", SYN), shape.vocab_size, logdir, spm_model=data_bin / "spm.model")
    pieces = {}
    for lg in ("en", SYN):
        pieces[lg] = {}
        for line in _read_lines(text / f"{lg}.train.spm"):
            for p in line.split():
                pieces[lg][p] = pieces[lg].get(p, 0) + 1
    shared = sorted(set(pieces["en"]) & set(pieces[SYN]))
    share_report = {p: {lg: pieces[lg][p] / sum(pieces[lg].values()) for lg in ("en", SYN)} for p in shared}
    log(f"pieces used: en {len(pieces['en'])}, {SYN} {len(pieces[SYN])}, shared {shared} "
        f"(token share {json.dumps({p: {k: round(v, 4) for k, v in d.items()} for p, d in share_report.items()})})")

    # lexicons: IBM-1 on the parallel slice (tokenised, lower-cased), and the true map
    par_xx = [smap.map(x) for x in sl["parallel"]]
    _write_lines(text / "parallel.en", sl["parallel"])
    _write_lines(text / f"parallel.{SYN}", par_xx)
    fw, bw = train_ibm1([(lower(a), lower(b)) for a, b in zip(sl["parallel"], par_xx)], iterations=5, threads=1)
    lex_stats = {}
    for name, lex in (("ibm1.en-xx", table_to_lexicon(fw, "en", SYN)), ("ibm1.xx-en", table_to_lexicon(bw, SYN, "en"))):
        drop_src, drop_tgt = (held, held_img) if name.endswith("en-xx") else (held_img, held)
        lex, lex_stats[name] = filter_lexicon(lex, drop_src, drop_tgt)
        lex.save_tsv(lexdir / f"{name}.tsv")
    from csfair.lexicons.lexicon import word_forms

    kept = sorted(w for w in set(types) - held if not word_forms(w, "en") & held)
    true_lexicon(kept, smap, "en", SYN).save_tsv(lexdir / "dict.en-xx.tsv")
    true_lexicon(kept, smap, SYN, "en", inverse=True).save_tsv(lexdir / "dict.xx-en.tsv")

    # tables with the library's builder and defaults; on the xx side the image of the English stopwords
    _write_lines(lexdir / "stopwords.xx.txt", sorted(smap.map(w) for w in en_stop))
    tables = {}
    for name in ("ibm1", "dict"):
        for s, t in (("en", SYN), (SYN, "en")):
            extra = (["--tgt-stopwords", lexdir / "stopwords.xx.txt"] if t == SYN
                     else ["--src-stopwords", lexdir / "stopwords.xx.txt"])
            tables[f"{name}.{s}-{t}"] = _table(lexdir / f"{name}.{s}-{t}.tsv", data_bin, data_bin / "tables" / f"{name}.{s}-{t}",
                                               text / f"{s}.train.tok", text / f"{t}.train.tok", extra, logdir)
    # held out of every table, as keys and as candidates (the guarantee the word test rests on)
    leaks = {}
    in_tables = {"en": [], SYN: []}
    for key in tables:
        keys, cands = table_words(data_bin / "tables" / key)
        s, t = key.split(".")[1].split("-")
        bad = (keys & (held if s == "en" else held_img)) | (cands & (held if t == "en" else held_img))
        leaks[key] = len(bad)
        in_tables[s].append(keys)
        if bad:
            raise ValueError(f"{key}: {len(bad)} held-out word(s) in the table, e.g. {sorted(bad)[:5]}")
    seen_pool = sorted(w for w in set.intersection(*in_tables["en"]) if w.isalpha() and c_en[w] >= cfg.min_test_count
                       and c_xx[w] >= cfg.min_test_count and smap.map(w) in set.intersection(*in_tables[SYN]))
    seen = [seen_pool[i] for i in sorted(np.random.default_rng(cfg.seed).choice(
        len(seen_pool), size=min(cfg.seen_words, len(seen_pool)), replace=False))]

    inputs = dict(
        words={"test_en": test_words, "test_xx": [smap.map(w) for w in test_words],
               "dev_en": dev_words, "dev_xx": [smap.map(w) for w in dev_words],
               "seen_en": seen, "seen_xx": [smap.map(w) for w in seen]},
        sentences={"ret_test_en": sl["retrieval.test"], "ret_test_xx": [smap.map(x) for x in sl["retrieval.test"]],
                   "ret_dev_en": sl["retrieval.dev"], "ret_dev_xx": [smap.map(x) for x in sl["retrieval.dev"]]},
        tagged={"pos_train": pos_train_w, "pos_dev_en": pos_dev_w,
                "pos_dev_xx": [[smap.map(w) for w in s] for s in pos_dev_w]},
        tags={"pos_train": pos_train_t, "pos_dev_en": pos_dev_t, "pos_dev_xx": pos_dev_t},
    )
    _write_json(out / "eval_inputs.json", inputs)
    manifest = dict(
        config=config, experiment="synthetic", langs=["en", SYN], data_bin=str(data_bin), spm=str(data_bin / "spm.model"),
        text=str(text), systems_tables={"ibm1": "ibm1", "dict": "dict"}, lines_usable=len(lines),
        word_types=len(types), held_out_types=len(held), test_words=len(test_words), dev_words=len(dev_words),
        seen_words=len(seen), shared_pieces=share_report, pieces_used={k: len(v) for k, v in pieces.items()},
        spm_stats=spm_stats, lexicon_filter=lex_stats, tables=tables,
        held_out_in_tables=leaks, english_stopwords=en_stop_info, script_map_size=len(smap.forward),
        pos=dict(train_sentences=len(pos_train_w), test_sentences=len(pos_dev_w)),
        retrieval=dict(test=len(sl["retrieval.test"]), dev=len(sl["retrieval.dev"])),
        seconds=round(time.time() - t0, 1),
    )
    _write_json(manifest_path, manifest)
    log(f"data ready in {manifest['seconds']} s: {manifest_path}")
    return manifest


# ------------------------------------------------------------------------------------- B: the real pair
@dataclass
class PairData:
    """Experiment B's evaluation sets (defaults: the protocol)."""

    pair: str = "en-fr"
    data: str = ""  # the recipe's --data (staged | paper; "": the recipe's default for the pair)
    max_train_lines: int = 0  # the recipe's --max-train-lines (0: all)
    test_lines: int = 2000  # the recipe's --test-lines
    valid_lines: int = 500  # the recipe's --valid-lines
    retrieval: str = "parallel/multi30k/test_2016_flickr"
    held_out_fraction: float = 0.2
    min_count: int = 2
    seen_words: int = 1000
    pos_train: int = 2000
    pos_test: int = 0
    seed: int = 1


def _counts(path: Path, lang: str):
    from csfair.lexicons.synthetic import word_types

    return word_types(_read_lines(path), lang)


def prepare_pair(out: Path, cfg: PairData, shape: Shape) -> dict:
    """Experiment B's data: the recipe's ``--prep-only`` build and the held-out evaluation sets."""
    from csfair.text import lower, moses_tokenize_lines

    src, tgt = cfg.pair.split("-")
    config = dict(data=asdict(cfg), vocab_size=shape.vocab_size, version=1)
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        m = json.loads(read_text(manifest_path))
        if m.get("config") == config:
            log(f"data ready: {manifest_path}")
            return m
        raise ValueError(f"{out} holds data built with another configuration; use another --out")
    t0 = time.time()
    data_bin, work = out / "data-bin", out / "work"
    log(f"recipe data: pair.sh {cfg.pair} --prep-only (log {out / 'logs' / 'prep.log'})")
    recipe_args = ["--vocab-size", shape.vocab_size, "--test-lines", cfg.test_lines, "--valid-lines", cfg.valid_lines,
                   "--data-bin", data_bin, "--work", work]
    if cfg.data:
        recipe_args += ["--data", cfg.data]
    if cfg.max_train_lines:
        recipe_args += ["--max-train-lines", cfg.max_train_lines]
    recipe_args = [str(a) for a in recipe_args]
    heldout_file = out / "heldout_words.tsv"
    # 1. the recipe's data (its tables are built again below once the held-out words are known)
    run(["bash", "scripts/recipes/pair.sh", cfg.pair, "--prep-only", *recipe_args,
         *(["--heldout-words", heldout_file] if heldout_file.exists() else [])], log_path=out / "logs" / "prep.log")
    # 2. the held-out split of the lexicon's source words: a seeded share of the MUSE source words that occur
    #    in the training text (with a translation that does), out of every table with their translations
    c_src = _counts(work / "text" / f"{src}.train.tok", src)
    c_tgt = _counts(work / "text" / f"{tgt}.train.tok", tgt)
    muse: Dict[str, List[str]] = {}
    with open(data_file(f"dict/muse/{cfg.pair}.txt"), encoding="utf-8-sig") as fh:
        for line in fh:
            f = line.split()
            if len(f) == 2:
                muse.setdefault(lower(f[0], src), []).append(lower(f[1], tgt))
    usable = {}
    for s_, ts in sorted(muse.items()):
        good = [t for t in dict.fromkeys(ts) if t.isalpha() and t != s_ and c_tgt[t] >= cfg.min_count]
        if s_.isalpha() and c_src[s_] >= cfg.min_count and good:
            usable[s_] = good
    pool = sorted(usable)
    idx = np.random.default_rng(cfg.seed).choice(len(pool), size=int(round(cfg.held_out_fraction * len(pool))),
                                                 replace=False)
    held = sorted(pool[i] for i in idx)
    held_tgt = sorted({t for s_ in held for t in usable[s_]})
    lines = [f"{src}\t{w}" for w in held] + [f"{tgt}\t{w}" for w in held_tgt]
    if not heldout_file.exists() or _read_lines(heldout_file) != lines:
        _write_lines(heldout_file, lines)
        shutil.rmtree(data_bin / "tables", ignore_errors=True)  # built without (or with other) held-out words
        log(f"held out of every table: {len(held)} {src} words and {len(held_tgt)} {tgt} translations; tables again")
        run(["bash", "scripts/recipes/pair.sh", cfg.pair, "--prep-only", *recipe_args, "--heldout-words", heldout_file],
            log_path=out / "logs" / "prep.log")
    recipe_args += ["--heldout-words", str(heldout_file)]
    names = sorted({p.name.split(".")[0] for p in (data_bin / "tables").iterdir() if p.is_dir()})
    keys = {src: set(), tgt: set()}
    cands = {src: set(), tgt: set()}
    per_table = {}
    for p in sorted((data_bin / "tables").iterdir()):
        if not p.is_dir():
            continue
        k, c = table_words(p)
        s_, t = p.name.split(".")[1].split("-")
        keys[s_] |= k
        cands[t] |= c
        per_table[p.name] = (k, c)
    # 3. test pairs: held-out words none of whose forms any table holds (checked, not assumed); in-table pairs
    test, seen = [], []
    in_all = set.intersection(*[per_table[f"{n}.{src}-{tgt}"][0] for n in names])
    for s_ in held:
        ts = usable[s_]
        if s_ in keys[src] or s_ in cands[src] or any(t in keys[tgt] or t in cands[tgt] for t in ts):
            raise ValueError(f"held-out word {s_!r} (or a translation) is in a substitution table")
        test.append((s_, ts))
    for s_ in pool:
        if s_ in in_all:
            seen.append((s_, usable[s_]))
    if len(seen) > cfg.seen_words:
        idx = sorted(np.random.default_rng(cfg.seed).choice(len(seen), size=cfg.seen_words, replace=False))
        seen = [seen[i] for i in idx]
    log(f"word translation: {len(test)} held-out MUSE words in no table (of {', '.join(sorted(per_table))}); "
        f"{len(seen)} in-table words")

    def read_gz(rel):
        import gzip

        with gzip.open(data_file(rel), "rt", encoding="utf-8-sig") as fh:
            return [ln.rstrip("\n") for ln in fh]

    ret_src = list(moses_tokenize_lines(read_gz(f"{cfg.retrieval}.{src}.gz"), src, False, 2))
    ret_tgt = list(moses_tokenize_lines(read_gz(f"{cfg.retrieval}.{tgt}.gz"), tgt, False, 2))
    train_lines = {lg: set(_read_lines(work / "text" / f"{lg}.train.tok")) for lg in (src, tgt)}
    keep = [i for i, (a, b) in enumerate(zip(ret_src, ret_tgt))
            if a.strip() and b.strip() and a not in train_lines[src] and b not in train_lines[tgt]]
    dropped = len(ret_src) - len(keep)
    ret_src, ret_tgt = [ret_src[i] for i in keep], [ret_tgt[i] for i in keep]
    pos_train_w, pos_train_t = _ud_pos(data_file(f"pos/udpos-xtreme/train-{src}.tsv"), cfg.pos_train, cfg.seed)
    pos_test_w, pos_test_t = _ud_pos(data_file(f"pos/udpos-xtreme/dev-{tgt}.tsv"), cfg.pos_test, cfg.seed)
    pos_src_w, pos_src_t = _ud_pos(data_file(f"pos/udpos-xtreme/dev-{src}.tsv"), cfg.pos_test, cfg.seed)

    def words_and_gold(pairs):
        pool = sorted({t for _, ts in pairs for t in ts})
        index = {t: i for i, t in enumerate(pool)}
        return [s for s, _ in pairs], pool, [[index[t] for t in ts] for _, ts in pairs]

    q, pool, gold = words_and_gold(test)
    sq, spool, sgold = words_and_gold(seen)
    inputs = dict(
        words={"test_en": q, "test_xx": pool, "seen_en": sq, "seen_xx": spool},
        gold={"test": gold, "seen": sgold},
        sentences={"ret_test_en": ret_src, "ret_test_xx": ret_tgt},
        tagged={"pos_train": pos_train_w, "pos_dev_en": pos_src_w, "pos_dev_xx": pos_test_w},
        tags={"pos_train": pos_train_t, "pos_dev_en": pos_src_t, "pos_dev_xx": pos_test_t},
    )
    _write_json(out / "eval_inputs.json", inputs)
    manifest = dict(
        config=config, experiment="pair", langs=[src, tgt], data_bin=str(data_bin), spm=str(data_bin / "spm.model"),
        work=str(work), recipe_data_args=recipe_args, tables=sorted(per_table), systems_tables={n: n for n in names}, test_words=len(q),
        test_candidates=len(pool), seen_words=len(sq), retrieval=dict(test=len(ret_src), dropped_in_training_text=dropped),
        pos=dict(train_sentences=len(pos_train_w), test_sentences=len(pos_test_w)), seconds=round(time.time() - t0, 1),
    )
    _write_json(manifest_path, manifest)
    log(f"data ready in {manifest['seconds']} s: {manifest_path}")
    return manifest


# ------------------------------------------------------------------------------------------ pretraining
def train_command(manifest: dict, system: str, seed: int, save_dir: Path, shape: Shape, tr: Training) -> List[str]:
    """The pretraining command of one run: ``fairseq-train`` with the recipe's options (A), or the
    recipe itself (B, ``scripts/recipes/pair.sh``)."""
    curve = (["--save-interval-updates", tr.save_interval, "--keep-interval-updates", -1]
             if tr.save_interval else ["--save-interval-updates", tr.max_update, "--keep-interval-updates", 1])
    # ~1% of the lines are longer than 128 pieces with a 2,000-piece vocabulary (the longest 1,506): fairseq
    # skips them, counted in the log; the task refuses more than 1% unless accepted explicitly
    # a dose arm is named TABLE@WORD_PROB (e.g. dict@0.3: every eligible word of a code-switched instance
    # replaced with probability 0.3 instead of the paper's 0.03)
    base, _, word_prob = system.partition("@")
    dose = ["--cs-word-prob", word_prob or tr.cs_word_prob, "--cs-instance-prob", tr.cs_instance_prob,
            "--max-invalid-size-share", tr.max_invalid_size_share]
    table = SYSTEM_TABLE.get(base, base)
    if manifest["experiment"] == "pair":
        src_tgt = "-".join(manifest["langs"])
        return ["bash", "scripts/recipes/pair.sh", src_tgt, "--cs", table or "none", "--run", save_dir.name,
                "--seed", seed, "--arch", shape.arch, "--max-update", tr.max_update, "--warmup", tr.warmup_updates(),
                "--lr", tr.lr, "--batch-size", tr.batch_size, "--tokens-per-sample", tr.tokens_per_sample,
                "--num-workers", tr.num_workers, "--save-root", save_dir.parent, *manifest["recipe_data_args"],
                "--", *shape.args(), *dose, *curve, *(["--cpu"] if tr.cpu else []), *tr.extra]
    cs = ["--cs-mode", "none"] if table is None else ["--cs-mode", "multiview", "--cs-table-name", table]
    return ["fairseq-train", manifest["data_bin"], "--user-dir", ROOT / "user_dir", "--task", "codeswitch_masked_lm",
            "--langs", ",".join(manifest["langs"]), *cs, *dose, "--arch", shape.arch, *shape.args(),
            "--criterion", "cs_masked_lm", "--tokens-per-sample", tr.tokens_per_sample, "--sample-break-mode", "complete",
            "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--adam-eps", "1e-6", "--weight-decay", "0.01",
            "--clip-norm", "1.0", "--lr", tr.lr, "--lr-scheduler", "polynomial_decay", "--warmup-updates",
            tr.warmup_updates(), "--total-num-update", tr.max_update, "--max-update", tr.max_update, "--batch-size",
            tr.batch_size, "--dropout", "0.1", "--attention-dropout", "0.1", "--seed", seed, "--num-workers",
            tr.num_workers, "--log-format", "simple", "--log-interval", "100", "--save-dir", save_dir,
            "--no-epoch-checkpoints", *curve, "--skip-invalid-size-inputs-valid-test", *(["--cpu"] if tr.cpu else []),
            *tr.extra]


def _reached(ckpt: Path) -> bool:
    if not ckpt.exists():
        return False
    p = subprocess.run([_python(), str(ROOT / "scripts" / "training_progress.py"), str(ckpt)], cwd=ROOT,
                       env=_env(), capture_output=True, text=True)
    return p.returncode == 0


def train_runs(manifest: dict, systems: Sequence[str], seeds: Sequence[int], runs_dir: Path, shape: Shape,
               tr: Training, parallel: int = 2) -> Dict[str, dict]:
    """Pretrain every (system, seed), ``parallel`` runs at a time with one thread each.

    Returns:
        ``{run name: {"checkpoint", "seconds", "system", "seed"}}``.

    Raises:
        RuntimeError: a run failed or stopped before its target (its log named).
    """
    jobs = [(s, seed) for seed in seeds for s in systems]
    info: Dict[str, dict] = {}
    pending: List[Tuple[str, int]] = []
    for s, seed in jobs:
        name = f"{s}-s{seed}"
        d = runs_dir / name
        if (d / ".done").exists() and _reached(d / "checkpoint_last.pt"):
            done = json.loads(read_text(d / ".done"))
            info[name] = dict(checkpoint=str(d / "checkpoint_last.pt"), system=s, seed=seed,
                              seconds=done.get("seconds"), cpu_seconds=done.get("cpu_seconds"))
        else:
            pending.append((s, seed))
    running: List[Tuple[str, subprocess.Popen, float, object]] = []

    def start(s, seed):
        name = f"{s}-s{seed}"
        d = runs_dir / name
        d.mkdir(parents=True, exist_ok=True)
        cmd = [str(c) for c in train_command(manifest, s, seed, d, shape, tr)]
        fh = open(d / "effect_train.log", "a", encoding="utf-8")
        fh.write(f"# {time.strftime('%F %T')} {' '.join(cmd)}\n")
        fh.flush()
        log(f"train {name} (load {loadavg()})")
        p = subprocess.Popen(cmd, cwd=ROOT, env=_env(threads=1), stdout=fh, stderr=subprocess.STDOUT)
        running.append((name, p, time.time(), fh))

    try:
        while pending or running:
            while pending and len(running) < parallel:
                start(*pending.pop(0))
            time.sleep(5)
            for item in list(running):
                name, p, t_start, fh = item
                # wait4: the run's CPU time (its data workers included), the idle-machine measure of its cost
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid == 0:
                    continue
                p.returncode = os.waitstatus_to_exitcode(status)
                running.remove(item)
                fh.close()
                d = runs_dir / name
                ckpt = d / "checkpoint_last.pt"
                if p.returncode != 0 or not _reached(ckpt):
                    raise RuntimeError(f"run {name} failed (exit {p.returncode}, target reached: {_reached(ckpt)}); "
                                       f"see {d / 'effect_train.log'}")
                secs = round(time.time() - t_start, 1)
                cpu = round(ru.ru_utime + ru.ru_stime, 1)
                _write_json(d / ".done", dict(seconds=secs, cpu_seconds=cpu, loadavg=loadavg()))
                s, seed = name.rsplit("-s", 1)
                info[name] = dict(checkpoint=str(ckpt), system=s, seed=int(seed), seconds=secs, cpu_seconds=cpu)
                log(f"done {name} in {secs} s wall, {cpu} s CPU (load {loadavg()})")
    finally:
        for _, p, _, fh in running:  # a failure or an interruption stops the other runs too
            p.terminate()
            fh.close()
    return info


# ------------------------------------------------------------------------------------------- evaluation
def extract(manifest: dict, inputs: dict, models: Sequence[dict], out_dir: Path, layers=None, threads: int = 2,
            device: str = "cpu") -> None:
    """Vectors of every model not extracted yet (one ``python -m user_dir.features`` process)."""
    todo = [m for m in models if not Path(m["out"]).exists()]
    if not todo:
        return
    spec = dict(data=manifest["data_bin"], spm=manifest["spm"], layers=layers, threads=threads, device=device,
                words=inputs.get("words"), sentences=inputs.get("sentences"), tagged=inputs.get("tagged"), models=todo)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path = out_dir / "features_spec.json"
    _write_json(spec_path, spec)
    log(f"features of {len(todo)} model(s) (load {loadavg()})")
    run([_python(), "-m", "user_dir.features", spec_path], log_path=out_dir / "features.log")


def _gold(inputs: dict, which: str) -> List[List[int]]:
    g = inputs.get("gold", {}).get(which)
    return g if g is not None else [[i] for i in range(len(inputs["words"][f"{which}_en"]))]


def measures_of(f, inputs: dict, layers: Sequence[int], tags: dict, sets=("test", "seen"), pos=True) -> Dict[str, np.ndarray]:
    """Every measure of one model's vectors (``f``: its ``.npz``), per item: ``{key: float [items]}``."""
    res: Dict[str, np.ndarray] = {}
    reps = ["emb"] + [f"L{l}" for l in layers]
    for s in sets:
        if f"words/{s}_en/emb" not in f:
            continue
        gold = _gold(inputs, s)
        for rep in reps:
            a, b = f[f"words/{s}_en/{rep}"], f[f"words/{s}_xx/{rep}"]
            for method in ("nn", "csls"):
                for c in (True, False):
                    res[f"wt/{s}/{rep}/{method}/{'c' if c else 'raw'}"] = X.word_translation(a, b, gold, method, c)
    for s in ("ret_test", "ret_dev"):
        if f"sent/{s}_en/L0" not in f:
            continue
        for l in layers:
            a, b = f[f"sent/{s}_en/L{l}"], f[f"sent/{s}_xx/L{l}"]
            for c in (True, False):
                res[f"sr/{s}/L{l}/en-xx/{'c' if c else 'raw'}"] = X.sentence_retrieval(a, b, c)
                res[f"sr/{s}/L{l}/xx-en/{'c' if c else 'raw'}"] = X.sentence_retrieval(b, a, c)
    if pos and "tagged/pos_train/L0" in f:
        train_y = [t for s in tags["pos_train"] for t in s]
        for l in layers:
            tests = {name: (f[f"tagged/{name}/L{l}"], [t for s in tags[name] for t in s], [len(s) for s in tags[name]])
                     for name in ("pos_dev_en", "pos_dev_xx")}
            for name, (num, den) in X.pos_probe(f[f"tagged/pos_train/L{l}"], train_y, tests).items():
                res[f"pos/{name}/L{l}"] = num
                res[f"pos_den/{name}"] = den
    return res


def no_model_measures(manifest: dict, inputs: dict) -> Dict[str, np.ndarray]:
    """The no-model control: bags of pieces (word translation, retrieval) and majority tags (POS)."""
    from csfair.pretraining.vocab import WordEncoder

    enc = WordEncoder(manifest["spm"], Path(manifest["data_bin"]) / "dict.txt")
    V = len(enc.vocab)
    bag = lambda texts: X.bag_of_pieces([[i for w in t.split() for i in enc(w)] for t in texts], V)  # noqa: E731
    res = {}
    for s in ("test", "seen"):
        if f"{s}_en" in inputs["words"]:
            sims = X.similarity(bag(inputs["words"][f"{s}_en"]), bag(inputs["words"][f"{s}_xx"]))
            res[f"wt/{s}/pieces"] = X.top1_hits(sims, _gold(inputs, s))
    for s in ("ret_test", "ret_dev"):
        if f"{s}_en" in inputs["sentences"]:
            a, b = bag(inputs["sentences"][f"{s}_en"]), bag(inputs["sentences"][f"{s}_xx"])
            res[f"sr/{s}/pieces/en-xx"] = X.top1_hits(X.similarity(a, b), [[i] for i in range(a.shape[0])])
            res[f"sr/{s}/pieces/xx-en"] = X.top1_hits(X.similarity(b, a), [[i] for i in range(a.shape[0])])
    tw = [w for s in inputs["tagged"]["pos_train"] for w in s]
    tt = [t for s in inputs["tags"]["pos_train"] for t in s]
    for name in ("pos_dev_en", "pos_dev_xx"):
        words = [w for s in inputs["tagged"][name] for w in s]
        tags = [t for s in inputs["tags"][name] for t in s]
        res[f"pos/{name}/majority"], _ = X.majority_scores(tw, tt, words, tags, [len(s) for s in inputs["tags"][name]])
    return res


def mlm_scores(manifest: dict, runs: Dict[str, dict], out_dir: Path, lang: str, device: str = "cpu") -> Dict[str, dict]:
    """Held-out MLM accuracy of every run on ``lang``'s test split on identical masks
    (``scripts/eval_mlm.py --compare``): ``{run: {"accuracy", "correct" [sent], "scored" [sent]}}``
    (per-sentence arrays when eval_mlm saves them)."""
    js = out_dir / f"mlm_{lang}.json"
    if not js.exists():
        named = [f"{n}={r['checkpoint']}" for n, r in sorted(runs.items())]
        log(f"held-out MLM on {lang} test (load {loadavg()})")
        run([_python(), "scripts/eval_mlm.py", "--compare", *named, "--data", manifest["data_bin"], "--lang", lang,
             "--split", "test", "--json", js, *(["--cpu"] if device == "cpu" else [])], log_path=out_dir / "mlm.log",
            threads=2)
    res = {r["name"]: dict(accuracy=r["accuracy"]) for r in json.loads(read_text(js))["rows"]}
    npz = out_dir / f"mlm_{lang}.sentences.npz"
    if npz.exists():
        z = np.load(npz)
        for n in res:
            res[n]["correct"] = z[f"{n}/sent_correct"].astype(np.float64)
            res[n]["scored"] = z[f"{n}/sent_scored"].astype(np.float64)
    return res


def evaluate(manifest: dict, runs: Dict[str, dict], out: Path, reference: str = "none", controls_seeds=(1, 2, 3),
             n_boot: int = 1000, boot_seed: int = 12345, mlm: bool = True, test=None, layers=None,
             device: str = "cpu") -> dict:
    """Measures, tables and the decision of the protocol; writes ``results.json`` and ``results.md``.

    ``test``: the comparison test (:func:`csfair.evaluation.crosslingual.compare`'s; default the
    hierarchical bootstrap of csfair issue 19)."""
    inputs = json.loads(read_text(Path(manifest["data_bin"]).parent / "eval_inputs.json"))
    feats = out / "features"
    models = [dict(name=n, checkpoint=r["checkpoint"], random_init=None, out=str(feats / f"{n}.npz"))
              for n, r in sorted(runs.items())]
    proto = sorted(runs.values(), key=lambda r: (r["system"] != reference, r["seed"]))[0]["checkpoint"]
    models += [dict(name=f"random-init-s{s}", checkpoint=proto, random_init=s, out=str(feats / f"random-init-s{s}.npz"))
               for s in controls_seeds]
    extract(manifest, inputs, models, feats, layers=layers, device=device)
    per_model = {}
    for m in models:
        with np.load(m["out"]) as z:
            f = {k: z[k] for k in z.files}
        layers = [int(x) for x in f["layers"]]
        per_model[m["name"]] = measures_of(f, inputs, layers, inputs["tags"])
    L = max(layers)
    mid = (L + 1) // 2
    if mid not in layers:
        raise ValueError(f"the middle layer {mid} was not extracted (layers {layers})")
    systems: Dict[str, List[str]] = {}
    for n, r in runs.items():
        systems.setdefault(r["system"], []).append(n)
    systems = {k: sorted(v, key=lambda n: runs[n]["seed"]) for k, v in systems.items()}
    systems["random-init"] = [m["name"] for m in models if m["name"].startswith("random-init")]
    if not systems["random-init"]:
        raise ValueError("no random-init control: give at least one controls seed")
    nomodel = no_model_measures(manifest, inputs)
    den_pos = {name: per_model[models[0]["name"]][f"pos_den/{name}"] for name in ("pos_dev_en", "pos_dev_xx")}

    def stack(key):
        return {s: np.stack([per_model[n][key] for n in names]) for s, names in systems.items()}

    def table_row(key, nm_key=None, den=None):
        scores = stack(key)
        res = X.compare({s: v for s, v in scores.items() if s != "random-init"}, reference, den=den,
                        n_boot=n_boot, seed=boot_seed, test=test)
        ri = scores["random-init"]
        per_run = ri.sum(1) / (den.sum() if den is not None else ri.shape[1])
        res["random-init"] = dict(mean=float(per_run.mean()), sd_runs=float(per_run.std(ddof=1)) if len(per_run) > 1 else 0.0,
                                  runs=ri.shape[0], items=ri.shape[1])
        if nm_key is not None and nm_key in nomodel:
            v = nomodel[nm_key]
            res["no-model"] = dict(mean=float(v.sum() / (den.sum() if den is not None else len(v))), runs=1, items=len(v))
        return res

    lang2 = manifest["langs"][1]
    primary = {
        "P1 word translation (CSLS, centred, input emb.)": table_row("wt/test/emb/csls/c", "wt/test/pieces"),
        f"P2 sentence retrieval en→{lang2} (centred, layer {mid})": table_row(f"sr/ret_test/L{mid}/en-xx/c",
                                                                             "sr/ret_test/pieces/en-xx"),
        f"P3 zero-shot POS (probe, layer {mid})": table_row(f"pos/pos_dev_xx/L{mid}", "pos/pos_dev_xx/majority",
                                                         den=den_pos["pos_dev_xx"]),
    }
    tests = [(m, s) for m, rows in primary.items() for s, r in rows.items() if "p" in r]
    adj = X.holm([primary[m][s]["p"] for m, s in tests])
    for (m, s), pa in zip(tests, adj):
        primary[m][s]["p_holm"] = float(pa)
    decision = []
    for (m, s), pa in zip(tests, adj):
        r = primary[m][s]
        verdict = ("adds to" if r["diff"] > 0 else "lowers") if pa < 0.05 else "no difference detected on"
        decision.append(f"{s} vs {reference}: {verdict} {m.split(' ', 1)[1]} (Δ {r['diff']:+.4f} "
                        f"[{r['lo']:+.4f}, {r['hi']:+.4f}], Holm p={pa:.3g})")
    wt = {
        "input emb., CSLS, centred": table_row("wt/test/emb/csls/c", "wt/test/pieces"),
        "input emb., NN, centred": table_row("wt/test/emb/nn/c"),
        "input emb., CSLS, raw": table_row("wt/test/emb/csls/raw"),
        "input emb., NN, raw": table_row("wt/test/emb/nn/raw"),
        f"layer {mid}, CSLS, centred": table_row(f"wt/test/L{mid}/csls/c"),
        f"layer {L}, CSLS, centred": table_row(f"wt/test/L{L}/csls/c"),
        f"layer {L}, NN, raw": table_row(f"wt/test/L{L}/nn/raw"),
    }
    seen = {}
    if "wt/seen/emb/csls/c" in per_model[models[0]["name"]]:
        seen = {"in-table words, input emb., CSLS, centred": table_row("wt/seen/emb/csls/c", "wt/seen/pieces"),
                f"in-table words, layer {mid}, CSLS, centred": table_row(f"wt/seen/L{mid}/csls/c")}
    sr = {}
    for l in layers:
        sr[f"layer {l}, centred"] = table_row(f"sr/ret_test/L{l}/en-xx/c", "sr/ret_test/pieces/en-xx" if l == 0 else None)
    sr[f"layer {L}, raw"] = table_row(f"sr/ret_test/L{L}/en-xx/raw")
    sr[f"layer {mid}, {lang2}→en, centred"] = table_row(f"sr/ret_test/L{mid}/xx-en/c", "sr/ret_test/pieces/xx-en")
    pos = {f"layer {l}": table_row(f"pos/pos_dev_xx/L{l}", "pos/pos_dev_xx/majority" if l == mid else None,
                                   den=den_pos["pos_dev_xx"]) for l in layers}
    pos[f"source language (English dev), layer {mid}"] = table_row(f"pos/pos_dev_en/L{mid}", "pos/pos_dev_en/majority",
                                                                   den=den_pos["pos_dev_en"])
    mlm_rows = {}
    if mlm:
        for lang in manifest["langs"]:
            if not (Path(manifest["data_bin"]) / lang / "test.idx").exists():
                continue
            sc = mlm_scores(manifest, runs, out, lang, device)
            if all("correct" in v for v in sc.values()):
                scores = {s: np.stack([sc[n]["correct"] for n in names]) for s, names in systems.items() if s != "random-init"}
                den = next(iter(sc.values()))["scored"]
                mlm_rows[f"held-out MLM accuracy, {lang}"] = X.compare(scores, reference, den=den, n_boot=n_boot,
                                                                       seed=boot_seed, test=test)
            else:
                mlm_rows[f"held-out MLM accuracy, {lang}"] = {
                    s: dict(mean=float(np.mean([sc[n]["accuracy"] for n in names])),
                            sd_runs=float(np.std([sc[n]["accuracy"] for n in names], ddof=1)) if len(names) > 1 else 0.0,
                            runs=len(names)) for s, names in systems.items() if s != "random-init"}
    controls = ("no-model", "random-init")
    tables = [
        X.format_table(f"Primary measures ({manifest['experiment']}; each system vs `{reference}`, Holm over the "
                       f"{len(tests)} tests marked *)", primary, reference, controls),
        X.format_table(f"Word translation P@1, en→{lang2}, {len(inputs['words']['test_en'])} held-out words "
                       f"({len(inputs['words']['test_xx'])} candidates)", wt, reference, controls),
    ]
    if seen:
        tables.append(X.format_table(f"Mechanism check: in-table words ({len(inputs['words']['seen_en'])}), "
                                     "pairs code-switching showed", seen, reference, controls))
    tables += [
        X.format_table(f"Sentence retrieval P@1 en→{lang2} per layer, {len(inputs['sentences']['ret_test_en'])} "
                       "held-out pairs (mean-pooled)", sr, reference, controls),
        X.format_table(f"Zero-shot POS accuracy, frozen-encoder probe trained on {len(inputs['tagged']['pos_train'])} "
                       f"English sentences, tested on {len(inputs['tagged']['pos_dev_xx'])} {lang2} sentences",
                       pos, reference, controls),
    ]
    if mlm_rows:
        tables.append(X.format_table("Held-out MLM accuracy (eval_mlm, identical masks)", mlm_rows, reference))
    legend = ("Cells: mean over pretraining seeds ± their sd; Δ: difference to the reference with the 95% interval "
              "and p of the hierarchical test (csfair.evaluation.stats.hierarchical_bootstrap: pretraining seeds, "
              "then items); * = significant after Holm's correction over the primary family. Controls: random-init = "
              "the same architecture untrained (3 seeds); no-model = bags of sentencepiece pieces (retrieval, word "
              "translation) or each word form's majority training tag (POS).")
    text = "\n\n".join(tables + [legend, "Decision (protocol, docs/experiments.md):\n" + "\n".join(f"- {d}" for d in decision)])
    res = dict(primary=primary, word_translation=wt, seen=seen, retrieval=sr, pos=pos, mlm=mlm_rows, decision=decision,
               runs=runs, layers=dict(L=L, mid=mid))
    _write_json(out / "results.json", res)
    (out / "results.md").write_text(text + "\n", encoding="utf-8")
    print(text, flush=True)
    return res


def curve(manifest: dict, runs_dir: Path, systems: Sequence[str], seed: int, out: Path) -> str:
    """Dev measures at every kept checkpoint of the pilot runs (the sizing curve; dev data only)."""
    inputs = json.loads(read_text(Path(manifest["data_bin"]).parent / "eval_inputs.json"))
    dev = dict(words={k: v for k, v in inputs["words"].items() if k.startswith("dev_")},
               sentences={k: v for k, v in inputs["sentences"].items() if k.startswith("ret_dev")})
    models = []
    for s in systems:
        for ck in sorted((runs_dir / f"{s}-s{seed}").glob("checkpoint_*_*.pt"), key=lambda p: int(p.stem.split("_")[-1])):
            upd = int(ck.stem.split("_")[-1])
            models.append(dict(name=f"{s}@{upd}", checkpoint=str(ck), random_init=None,
                               out=str(out / "curve" / f"{s}@{upd}.npz"), system=s, updates=upd))
    extract(manifest, dev, [{k: v for k, v in m.items() if k in ("name", "checkpoint", "random_init", "out")} for m in models],
            out / "curve")
    rows = []
    for m in models:
        with np.load(m["out"]) as z:
            f = {k: z[k] for k in z.files}
        layers = [int(x) for x in f["layers"]]
        mid = (max(layers) + 1) // 2
        r = measures_of(f, dev, layers, {}, sets=("dev",), pos=False)
        rows.append((m["system"], m["updates"], float(r["wt/dev/emb/csls/c"].mean()),
                     float(r[f"sr/ret_dev/L{mid}/en-xx/c"].mean()), float(r[f"sr/ret_dev/L{max(layers)}/en-xx/c"].mean())))
    lines = ["| system | updates | dev word translation (CSLS, centred, input emb.) | dev retrieval en→xx (centred, "
             "middle layer) | dev retrieval (centred, top layer) |", "|---|---|---|---|---|"]
    lines += [f"| {s} | {u} | {a:.4f} | {b:.4f} | {c:.4f} |" for s, u, a, b, c in rows]
    text = "\n".join(lines)
    (out / "curve.md").write_text(text + "\n", encoding="utf-8")
    _write_json(out / "curve.json", rows)
    print(text, flush=True)
    return text


# ---------------------------------------------------------------------------------------------- command
def build_parser():
    import argparse

    p = argparse.ArgumentParser(prog="scripts/effect.py", description=(
        "What code-switching does (docs/experiments.md): experiment A, a synthetic positive control "
        "(`synthetic`), and experiment B, the real pair (`pair`); one command each builds the data, pretrains "
        "every system and seed, evaluates and prints the tables."))
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("synthetic", "pair"):
        s = sub.add_parser(name)
        s.add_argument("--out", default=None, help=f"output folder (default runs/effect/{name} or runs/effect/PAIR)")
        s.add_argument("--systems", default=None, help="comma-separated (A: none,ibm1,dict; B: none,ibm1,muse)")
        s.add_argument("--seeds", default="1,2,3")
        s.add_argument("--reference", default="none")
        s.add_argument("--parallel", type=int, default=2, help="runs at a time (one thread each)")
        s.add_argument("--prep-only", action="store_true")
        s.add_argument("--pilot", action="store_true",
                       help="the sizing pilot: systems none,ibm1, seed 101, a checkpoint every --save-interval "
                       "updates, dev measures at each (the curve), no test measure")
        s.add_argument("--no-mlm", action="store_true", help="skip the held-out MLM comparison")
        s.add_argument("--n-boot", type=int, default=1000)
        g = s.add_argument_group("model and training (the same for every system)")
        for a, d in (("layers", 2), ("embed-dim", 64), ("ffn-dim", 256), ("heads", 4), ("vocab-size", 2000)):
            g.add_argument(f"--{a}", type=int, default=d)
        g.add_argument("--max-update", type=int, default=3000)
        g.add_argument("--batch-size", type=int, default=32)
        g.add_argument("--tokens-per-sample", type=int, default=128)
        g.add_argument("--lr", type=float, default=1.5e-3)
        g.add_argument("--warmup", type=int, default=None, help="default: 10%% of --max-update")
        g.add_argument("--save-interval", type=int, default=0)
        g.add_argument("--cs-word-prob", type=float, default=0.03)
        g.add_argument("--cs-instance-prob", type=float, default=0.5)
        g.add_argument("--arch", default="cs_roberta_tiny", help="fairseq architecture the shape options override")
        g.add_argument("--extra-args", default="", help="more fairseq-train options, e.g. '--bf16' on a GPU")
        g.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                       help="cpu: train with --cpu and evaluate on the CPU; cuda: fairseq's default device and CUDA")
        g.add_argument("--num-workers", type=int, default=1, help="DataLoader workers per run (the recipe's CPU default)")
        g.add_argument("--random-init-seeds", default="1,2,3", help="seeds of the random-init control")
        d = s.add_argument_group("data (defaults: the protocol; smaller values for tests)")
        if name == "synthetic":
            for a, v in asdict(SyntheticData()).items():
                if a in ("corpus",):
                    d.add_argument(f"--{a.replace('_', '-')}", default=v)
                elif isinstance(v, bool):
                    d.add_argument(f"--{a.replace('_', '-')}", action="store_true")
                else:
                    d.add_argument(f"--{a.replace('_', '-')}", type=type(v), default=v)
        else:
            for a, v in asdict(PairData()).items():
                d.add_argument(f"--{a.replace('_', '-')}", type=type(v), default=v)

    return p


def main(argv=None) -> None:
    import signal

    args = build_parser().parse_args(argv)
    # a terminated experiment stops its runs (train_runs' finally) instead of leaving them behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.time()
    load0 = loadavg()
    import shlex

    shape = Shape(args.layers, args.embed_dim, args.ffn_dim, args.heads, args.vocab_size, args.arch)
    tr = Training(args.max_update, args.batch_size, args.tokens_per_sample, args.lr, args.warmup, args.save_interval,
                  num_workers=args.num_workers, cs_word_prob=args.cs_word_prob, cs_instance_prob=args.cs_instance_prob,
                  extra=shlex.split(args.extra_args), cpu=args.device == "cpu")
    if args.cmd == "synthetic":
        cfg = SyntheticData(**{k: getattr(args, k) for k in asdict(SyntheticData())})
        out = Path(args.out or ROOT / "runs" / "effect" / "synthetic")
        manifest = prepare_synthetic(out / "data", cfg, shape)
        systems = (args.systems or "none,ibm1,dict").split(",")
    else:
        cfg = PairData(**{k: getattr(args, k) for k in asdict(PairData())})
        out = Path(args.out or ROOT / "runs" / "effect" / cfg.pair)
        manifest = prepare_pair(out / "data", cfg, shape)
        systems = (args.systems or "none,ibm1,muse").split(",")
    t_prep = time.time() - t0
    if args.prep_only:
        log(f"--prep-only: data in {out / 'data'} ({t_prep:.0f} s)")
        return
    if args.pilot:
        systems, seeds = ["none", "ibm1"], [101]
        tr.save_interval = tr.save_interval or 500
        runs_dir = out / "pilot"
    else:
        seeds = [int(x) for x in args.seeds.split(",")]
        runs_dir = out / "runs"
    t1 = time.time()
    runs = train_runs(manifest, systems, seeds, runs_dir, shape, tr, args.parallel)
    t_train = time.time() - t1
    t2 = time.time()
    if args.pilot:
        curve(manifest, runs_dir, systems, seeds[0], out / "pilot")
        per_update = {n: dict(wall=round(r["seconds"] / tr.max_update, 4),
                              cpu=round((r.get("cpu_seconds") or float("nan")) / tr.max_update, 4))
                      for n, r in runs.items() if r.get("seconds")}
        log(f"pilot: seconds per update (wall, {args.parallel} runs at a time, one thread each; CPU): "
            f"{json.dumps(per_update)}")
    else:
        evaluate(manifest, runs, out / "eval", reference=args.reference, n_boot=args.n_boot, mlm=not args.no_mlm,
                 controls_seeds=[int(x) for x in args.random_init_seeds.split(",")], layers=shape.eval_layers(),
                 device=args.device)
    t_eval = time.time() - t2
    summary = dict(command=" ".join(sys.argv), prep_s=round(t_prep), train_s=round(t_train), eval_s=round(t_eval),
                   total_s=round(time.time() - t0), loadavg_start=load0, loadavg_end=loadavg(),
                   shape=asdict(shape), training=asdict(tr), systems=systems, seeds=seeds)
    _write_json(out / ("pilot" if args.pilot else "eval") / "wall_time.json", summary)
    log(f"wall time: data {t_prep:.0f} s, pretraining {t_train:.0f} s, evaluation {t_eval:.0f} s, total "
        f"{time.time() - t0:.0f} s; load average at start {load0}, at end {loadavg()}")
