"""csfair issue 24: the synthetic language, the cross-lingual measures with their controls, word
alignment error rate, feature extraction and the user's own data in scripts/analyze.py."""
import json
import sys
import unicodedata

import numpy as np
import pytest

from conftest import ROOT, data_path, head_lines, run
from csfair.evaluation import crosslingual as X
from csfair.lexicons.synthetic import (
    ScriptMap,
    build_script_map,
    char_inventory,
    filter_lexicon,
    held_out_types,
    mirror_sentencepiece,
    true_lexicon,
    word_types,
)


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    """2,000 real English lines, whitespace-tokenised as stored (mono/derived is one sentence per line)."""
    d = tmp_path_factory.mktemp("english")
    path = head_lines(data_path("mono/derived/en.txt"), d / "en.txt", 2000)
    return [ln for ln in path.read_text(encoding="utf-8").split("\n") if ln.strip()]


@pytest.fixture(scope="module")
def smap(english):
    return build_script_map(char_inventory(english))


def test_script_map_is_a_bijection_into_unused_characters(english, smap):
    inventory = set("".join(english)) - {" "}
    images = set(smap.forward.values())
    assert len(images) == len(smap.forward) >= len(inventory)  # injective, covers the text
    assert not images & inventory  # no character of the English text is an image: no shared piece possible
    for line in english:
        m = smap.map(line)
        assert smap.unmap(m) == line and len(m) == len(line)
        assert [len(w) for w in m.split(" ")] == [len(w) for w in line.split(" ")]  # whitespace kept
    for c, img in smap.forward.items():
        assert unicodedata.normalize("NFKC", img) == img  # sentencepiece's normalisation keeps images apart
        assert c.isalnum() == img.isalnum() and c.isalpha() == img.isalpha()  # the table's filters see the same
    # case pairs: the table builder's case variants and name detection behave alike in the copy
    text = "The Quick brown FOX jumps over 12 lazy dogs , said Emile ."
    assert smap.map(text.upper()) == smap.map(text).upper() and smap.map(text.lower()) == smap.map(text).lower()
    assert smap.map("0123456789") == "⓿❶❷❸❹❺❻❼❽❾"
    with pytest.raises(ValueError, match="outside the script map"):
        smap.map("ツ")  # a character the map was not built for would be shared: refused
    # lower-casing stays inside the map (the case closure): "İ".lower() is "i" + U+0307
    m2 = build_script_map(char_inventory(["İstanbul"]))
    assert m2.unmap(m2.map("İstanbul".lower())) == "İstanbul".lower()
    # the non-strict control: digits and punctuation shared, letters mapped
    loose = build_script_map(char_inventory(english), share_nonletters=True)
    assert loose.map("a 12 , b .")[1:] == " 12 , " + loose.map("b") + " ."
    # saved and loaded: the same map
    assert ScriptMap(smap.forward).forward == smap.forward


def test_mirrored_vocabulary_segments_isomorphically_and_shares_only_the_boundary(english, smap, tmp_path):
    import sentencepiece as spm

    from csfair.pretraining.vocab import train_sentencepiece

    (tmp_path / "en.txt").write_text("\n".join(english) + "\n", encoding="utf-8")
    train_sentencepiece({"en": tmp_path / "en.txt"}, tmp_path / "en", vocab_size=400)
    info = mirror_sentencepiece(tmp_path / "en.model", smap, tmp_path / "both.model")
    assert info["shared"] == ["▁"] and info["pieces"] == 2 * info["source_pieces"] - 4  # <unk> <s> </s> ▁ once
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "both.model"))
    used = {"en": set(), "xx": set()}
    for line in english[:400]:
        pe = sp.encode(line, out_type=str)
        px = sp.encode(smap.map(line), out_type=str)
        # the image's segmentation is the image of the segmentation, piece for piece
        assert px == [smap.map(p.replace("▁", " ")).replace(" ", "▁") for p in pe]
        used["en"].update(pe)
        used["xx"].update(px)
    assert used["en"] & used["xx"] <= {"▁"}


def test_held_out_words_are_absent_from_every_table(tmp_path):
    """Through the experiment's real data step (the library's table builder, both directions, both
    arms): no held-out word, in any casing, is a key or a candidate of any table."""
    from csfair.experiments.effect import Shape, SyntheticData, prepare_synthetic, table_words

    corpus = head_lines(data_path("mono/derived/en.txt"), tmp_path / "en.txt", 2600)
    cfg = SyntheticData(corpus=str(corpus), train_lines=1000, parallel_lines=300, retrieval_test=60,
                        retrieval_dev=30, test_lines=60, valid_lines=30, dev_words=10, seen_words=30,
                        pos_train=40, pos_test=30)
    m = prepare_synthetic(tmp_path / "data", cfg, Shape(vocab_size=500))
    smap = ScriptMap.load(tmp_path / "data" / "script_map.json")
    inputs = json.loads((tmp_path / "data" / "eval_inputs.json").read_text(encoding="utf-8"))
    test_words = set(inputs["words"]["test_en"]) | set(inputs["words"]["dev_en"])
    assert m["test_words"] > 50 and m["held_out_in_tables"] == {k: 0 for k in m["tables"]}
    assert set(m["tables"]) == {"ibm1.en-xx", "ibm1.xx-en", "dict.en-xx", "dict.xx-en"}
    lines = [ln for ln in (tmp_path / "data" / "corpus.tok").read_text(encoding="utf-8").split("\n") if ln]
    held = held_out_types(word_types(lines), 0.2, 1)
    assert test_words <= held and len(held) == round(0.2 * len(word_types(lines)))
    held_img = {smap.map(w) for w in held}
    for key in m["tables"]:
        keys, cands = table_words(tmp_path / "data" / "data-bin" / "tables" / key)
        assert keys and cands
        s, t = key.split(".")[1].split("-")
        assert not keys & (held if s == "en" else held_img), key
        assert not cands & (held if t == "en" else held_img), key
    # the in-table words of the mechanism check are keys of both arms' tables
    for key in ("ibm1.en-xx", "dict.en-xx"):
        assert set(inputs["words"]["seen_en"]) <= table_words(tmp_path / "data" / "data-bin" / "tables" / key)[0]
    # pieces: the two languages share only the word-boundary piece, used about equally often
    assert set(m["shared_pieces"]) <= {"▁"}
    share = m["shared_pieces"].get("▁", {"en": 0, "xx": 0})
    assert abs(share["en"] - share["xx"]) < 0.01
    # the xx side of the retrieval pairs is the image of the English side
    assert [smap.unmap(x) for x in inputs["sentences"]["ret_test_xx"]] == inputs["sentences"]["ret_test_en"]


def test_filter_lexicon_drops_held_out_words_and_their_case_variants():
    lex = true_lexicon(["gross", "groß", "house", "akın"], build_script_map(char_inventory(["gross groß house akın"])),
                       "en", "xx")
    kept, stats = filter_lexicon(lex, {"gross", "akin"}, set())
    # "groß" -> "GROSS" and "akın" -> "AKIN" would key upper-case forms of held-out words
    assert kept.src_words == ["house"] and stats["rows_removed"] == 3


def test_word_translation_csls_and_centring_on_known_geometry():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(200, 16))
    gold = [[i] for i in range(200)]
    assert X.word_translation(src, src + 0.01 * rng.normal(size=src.shape), gold, "nn", False).mean() == 1.0
    # a language-specific offset hides the alignment from raw cosine; centring recovers it
    offset = rng.normal(size=16)
    shifted = src + 0.5 * rng.normal(size=src.shape) + 30 * offset / np.linalg.norm(offset)
    raw, cen = X.sentence_retrieval(src, shifted, centred=False).mean(), X.sentence_retrieval(src, shifted, centred=True).mean()
    assert raw < 0.85 and cen > 0.95
    # CSLS (Conneau et al. 2018, Eq. 6): 2 cos - r_T(x) - r_S(y), r the mean cosine of the k nearest
    # neighbours in the other language; a candidate near many queries (a hub) is discounted
    tgt = src[:50] + 1.5 * rng.normal(size=(50, 16))
    cos = X.similarity(src, tgt, "nn")
    r_src = np.sort(cos, 1)[:, -10:].mean(1)
    r_tgt = np.sort(cos, 0)[-10:, :].mean(0)
    assert np.allclose(X.similarity(src, tgt, "csls", k=10), 2 * cos - r_src[:, None] - r_tgt[None, :])
    hub = np.vstack([tgt, src.mean(0, keepdims=True)])
    picks = lambda m: (np.argmax(X.similarity(src, hub, m), 1) == 50).sum()  # noqa: E731
    assert picks("csls") <= picks("nn")
    # per-query hits: 0/1, one per query, any gold candidate counts
    h = X.top1_hits(np.array([[0.1, 0.9], [0.8, 0.2]]), [[1], [1, 0]])
    assert h.tolist() == [1.0, 1.0]


def test_bag_of_pieces_is_the_shared_vocabulary_control(english):
    ids = {}
    seqs = []
    for line in english[:50]:
        seqs.append([ids.setdefault(w, len(ids)) for w in line.split()])
    V = len(ids) + 10
    a = X.bag_of_pieces(seqs, V)
    assert a.shape == (50, V) and a.sum() == sum(len(s) for s in seqs)
    # identical bags retrieve their twin; disjoint vocabularies (the synthetic language) give nothing to match
    assert X.top1_hits(X.similarity(a, a), [[i] for i in range(50)]).mean() == 1.0
    disjoint = X.bag_of_pieces([[t + V for t in s] for s in seqs], 2 * V)
    assert np.allclose(X.similarity(X.bag_of_pieces(seqs, 2 * V), disjoint), 0.0)
    with pytest.raises(ValueError):
        X.bag_of_pieces([[V]], V)


def test_pos_probe_and_majority_control_on_real_ud_data():
    from csfair.evaluation.corpora import read_udpos_tsv

    sents = read_udpos_tsv(data_path("pos/udpos-xtreme/dev-en.tsv"))[:300]
    train, test = sents[:200], sents[200:]
    tags = sorted({t for s in sents for t in s.labels})
    rng = np.random.default_rng(0)
    centre = {t: rng.normal(size=8) for t in tags}

    def feats(ss, noise):
        return np.stack([centre[t] + noise * rng.normal(size=8) for s in ss for t in s.labels])

    lens = [len(s.labels) for s in test]
    gold = [t for s in test for t in s.labels]
    res = X.pos_probe(feats(train, 0.1), [t for s in train for t in s.labels],
                      {"clean": (feats(test, 0.1), gold, lens), "noise": (feats(test, 5.0), gold, lens)})
    num, den = res["clean"]
    assert den.tolist() == lens and num.sum() / den.sum() > 0.95 and (num <= den).all()
    assert res["noise"][0].sum() < num.sum()
    # majority control: real word forms on English; on unseen forms (a mapped language) the overall majority tag
    words = [w for s in test for w in s.words]
    c, d = X.majority_scores([w for s in train for w in s.words], [t for s in train for t in s.labels], words, gold, lens)
    assert 0.6 < c.sum() / d.sum() < 0.98
    c2, _ = X.majority_scores([w for s in train for w in s.words], [t for s in train for t in s.labels],
                              ["\u2603" + w for w in words], gold, lens)
    most = max(set(gold), key=[t for s in train for t in s.labels].count)
    assert c2.sum() == sum(t == most for t in gold)


def test_holm_and_compare_with_a_test_of_the_hierarchical_signature():
    assert np.allclose(X.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])  # R: p.adjust(method="holm")
    calls = []

    def local_test(a, b, n_boot=1000, seed=12345, den=None):  # same signature as stats.hierarchical_bootstrap
        calls.append((a.shape, b.shape, den is not None))
        d = b.mean(0).sum() / (den.sum() if den is not None else b.shape[1]) - \
            a.mean(0).sum() / (den.sum() if den is not None else a.shape[1])
        return dict(diff=d, lo=d - 0.1, hi=d + 0.1, p=0.5)

    rng = np.random.default_rng(1)
    scores = {"none": rng.integers(0, 2, (3, 40)).astype(float), "ibm1": rng.integers(0, 2, (2, 40)).astype(float)}
    res = X.compare(scores, "none", test=local_test)
    assert calls == [((3, 40), (2, 40), False)]
    assert res["none"]["runs"] == 3 and "diff" not in res["none"] and res["ibm1"]["items"] == 40
    assert np.isclose(res["ibm1"]["diff"], scores["ibm1"].mean() - scores["none"].mean())
    den = np.full(40, 5.0)
    X.compare({k: v * 5 for k, v in scores.items()}, "none", den=den, test=local_test)
    assert calls[-1][2]
    with pytest.raises(ValueError, match="different numbers of items"):
        X.compare({"none": np.zeros((1, 3)), "x": np.zeros((1, 4))}, "none", test=local_test)
    table = X.format_table("t", {"m": res}, "none")
    assert "| ibm1 |" in table and "(ref.)" in table


def test_alignment_error_rate_readers_and_aligner_on_the_mapped_copy(english, smap, tmp_path):
    from csfair.lexicons.alignment import alignment_error_rate, diagonal_alignment, read_gold_alignments

    # Och & Ney's definition on a hand case: A = {(0,0),(1,2)}, S = {(0,0)}, P = S + {(1,1),(1,2)}
    r = alignment_error_rate([{(0, 0), (1, 2)}], [({(0, 0)}, {(0, 0), (1, 1), (1, 2)})])
    assert np.isclose(r["aer"], 1 - (1 + 2) / (2 + 1)) and r["precision"] == 1.0 and r["recall"] == 1.0
    assert np.isclose(alignment_error_rate([{(0, 1)}], [({(0, 0)}, {(0, 0)})])["aer"], 1.0)
    (tmp_path / "g.pharaoh").write_text("0-0 1?2 2-1-P\n\n", encoding="utf-8")
    (tmp_path / "g.naacl").write_text("1 1 1 S\n1 2 3 P\n1 3 2 P\n", encoding="utf-8")
    ph = read_gold_alignments(tmp_path / "g.pharaoh")
    na = read_gold_alignments(tmp_path / "g.naacl", n_pairs=2)
    assert ph == na == [({(0, 0)}, {(0, 0), (1, 2), (2, 1)}), (set(), set())]
    assert read_gold_alignments(tmp_path / "g.pharaoh", reverse=True)[0][1] == {(0, 0), (2, 1), (1, 2)}
    (tmp_path / "bad").write_text("0-0 x-1\n", encoding="utf-8")
    from csfair.io import InputFormatError

    with pytest.raises(InputFormatError, match="bad:1"):
        read_gold_alignments(tmp_path / "bad")
    assert diagonal_alignment(2, 4) == {(0, 0), (0, 1), (1, 2), (1, 3)}
    # English and its image with the word order reversed: the gold alignment is known (i -> n-1-i).
    # IBM-1 (no position prior) finds most links; the no-model diagonal finds almost none
    lines = [ln for ln in english[:300] if 3 <= len(ln.split()) <= 40]
    (tmp_path / "a.en").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "a.xx").write_text("\n".join(" ".join(reversed(smap.map(ln).split())) for ln in lines) + "\n",
                                   encoding="utf-8")
    (tmp_path / "gold").write_text("\n".join(" ".join(f"{i}-{len(ln.split()) - 1 - i}" for i in range(len(ln.split())))
                                             for ln in lines) + "\n", encoding="utf-8")
    out = {}
    for model in ("ibm1", "diagonal"):
        p = run([sys.executable, "-m", "csfair_cli.lexicon", "align", "--src-file", tmp_path / "a.en", "--tgt-file",
                 tmp_path / "a.xx", "--src-lang", "en", "--tgt-lang", "xx", "--tokenised", "--model", model,
                 "--out", tmp_path / f"{model}.align", "--gold", tmp_path / "gold"])
        out[model] = json.loads(p.stdout.strip().splitlines()[-1])
        assert len((tmp_path / f"{model}.align").read_text().splitlines()) == len(lines)
    assert out["ibm1"]["aer"] < 0.3 and out["ibm1"]["sentences"] == len(lines)
    assert out["diagonal"]["aer"] > 0.8
    # a gold file for fewer sentences is an error (exit 2), not a score
    (tmp_path / "short").write_text("0-0\n", encoding="utf-8")
    from csfair_cli.lexicon import main as lexicon_main

    with pytest.raises(SystemExit) as e:
        lexicon_main(["align", "--src-file", str(tmp_path / "a.en"), "--tgt-file", str(tmp_path / "a.xx"), "--src-lang",
                      "en", "--tgt-lang", "xx", "--tokenised", "--model", "diagonal", "--gold", str(tmp_path / "short"),
                      "--gold-format", "pharaoh"])
    assert e.value.code == 2


def test_features_of_a_checkpoint_truncate_and_window_long_inputs(tiny_mlm, tiny_pair, tmp_path, capsys):
    from user_dir import features as F

    hub = F.load(str(tiny_mlm), str(tiny_pair["bin"]), str(tiny_pair["spm"]))
    rnd = F.load(str(tiny_mlm), str(tiny_pair["bin"]), str(tiny_pair["spm"]), random_init=1)
    enc = F.Encoder(hub)
    layers = [0, 1, 2]
    long_line = " ".join(["international"] * 300)  # ~600 pieces: the bare IndexError of issue 24
    sv = F.sentence_vectors(hub, enc, ["a dog runs .", long_line], layers, "test")
    assert sv["L2"].shape == (2, 128) and int(sv["truncated"]) == 1 and np.isfinite(sv["L2"]).all()
    assert "longer than the model's" in capsys.readouterr().err
    words = ["dog", "house", "international"]
    wv = F.word_vectors(hub, enc, words, layers)
    assert wv["emb"].shape == (3, 128) and wv["L1"].shape == (3, 128)
    emb = hub.model.encoder.sentence_encoder.embed_tokens.weight.detach().numpy()
    ids = enc.word("dog")
    assert np.allclose(wv["emb"][0], emb[[ids[k] for k in enc.content(ids)]].mean(0), atol=1e-6)
    assert not np.allclose(F.word_vectors(rnd, F.Encoder(rnd), words, layers)["emb"], wv["emb"])
    # a sentence longer than the positions is encoded in windows: one vector per word, all finite
    tv = F.tagged_vectors(hub, enc, [["a", "dog"], long_line.split()], layers)
    assert tv["L2"].shape == (302, 128) and int(tv["windowed"]) == 1 and np.isfinite(tv["L2"]).all()


def test_analyze_takes_the_users_files_and_prints_the_controls(tiny_mlm, tmp_path):
    src = [ln for ln in head_lines(data_path("parallel/multi30k/val.en.gz"), tmp_path / "v.en", 40).read_text().split("\n") if ln]
    tgt = [ln for ln in head_lines(data_path("parallel/multi30k/val.fr.gz"), tmp_path / "v.fr", 40).read_text().split("\n") if ln]
    src[3] = " ".join(["international"] * 120)  # a line longer than the model's positions
    (tmp_path / "u.en").write_text("\n".join(src) + "\n", encoding="utf-8")
    (tmp_path / "u.fr").write_text("\n".join(tgt) + "\n", encoding="utf-8")
    (tmp_path / "pairs.txt").write_text("dog chien\nhouse maison\nman homme\nwoman femme\nwater eau\n", encoding="utf-8")
    out = tmp_path / "an"
    p = run([sys.executable, ROOT / "scripts" / "analyze.py", "--checkpoint", f"m={tiny_mlm}", "--parallel",
             tmp_path / "u.en", tmp_path / "u.fr", "--word-pairs", tmp_path / "pairs.txt", "--no-figures", "--out", out])
    assert "longer than the model's" in p.stderr
    res = json.loads((out / "analysis.json").read_text())
    assert set(res) >= {"m", "random-init", "no-model", "truncated"} and res["truncated"]["user.en"] == 1
    assert len(res["m"]["user_sentence_retrieval_by_layer"]) == 3
    report = (out / "report.md").read_text()
    assert "| measure | m | random-init | no-model |" in report and "Truncated to the model's positions" in report


def test_table_exclude_words_keeps_held_out_words_out_of_a_real_table(tiny_pair, tmp_path):
    """csfair-lexicon table --exclude-words (the recipe's --heldout-words): no held-out word, in any casing,
    is a key or a candidate; the file's checksum is in meta.json; a malformed list names its line."""
    from csfair_cli.lexicon import main as lexicon_main
    from csfair.experiments.effect import table_words
    from csfair.io import InputFormatError
    from csfair.lexicons.lexicon import Lexicon, read_word_list

    lex = Lexicon.load_tsv(tiny_pair["lex_en_fr"])
    held_en = [w for w in lex.src_words if w.isalpha() and len(w) >= 4][:40]
    held_fr = sorted({t for w in held_en[:10] for t, _ in lex.candidates(w)} | {"maison"})
    (tmp_path / "held.tsv").write_text("".join(f"en\t{w}\n" for w in held_en) + "".join(f"fr\t{w}\n" for w in held_fr),
                                       encoding="utf-8")
    common = ["table", "--lexicon", str(tiny_pair["lex_en_fr"]), "--spm-model", str(tiny_pair["spm"]),
              "--dict", str(tiny_pair["dict"]), "--src-stopwords", "none", "--tgt-stopwords", "none", "--quiet"]
    lexicon_main(common + ["--out", str(tmp_path / "full")])
    lexicon_main(common + ["--out", str(tmp_path / "held"), "--exclude-words", str(tmp_path / "held.tsv")])
    full_keys, full_cands = table_words(tmp_path / "full")
    keys, cands = table_words(tmp_path / "held")
    assert set(held_en) & full_keys and set(held_fr) & full_cands  # they were there before
    assert not keys & set(held_en) and not cands & set(held_fr)
    assert keys and keys <= full_keys - set(held_en)
    meta = json.loads((tmp_path / "held" / "meta.json").read_text())
    assert meta["excluded_words"]["words"] == {"en": len(held_en), "fr": len(held_fr)}
    assert read_word_list(tmp_path / "held.tsv")["fr"] == set(held_fr)
    (tmp_path / "bad.tsv").write_text("en\tdog\nfr chien\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="bad.tsv:2"):
        read_word_list(tmp_path / "bad.tsv")
