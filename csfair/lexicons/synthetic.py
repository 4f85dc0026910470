"""A synthetic second language: English written in other scripts, one character for one.

The controlled experiments of K et al. (2020, "Cross-lingual ability of multilingual BERT": "Fake-
English" with shifted token ids), Dufter & Schütze (2020, "Identifying elements essential for BERT's
multilinguality": English and a vocabulary-disjoint copy) and PreAlign (2024, an "English clone")
pair a language with a copy of itself that shares no subword with it, so that the true translation
of every word is known and any cross-lingual alignment a model shows must come from structure, not
from shared pieces. csfair's positive control (docs/experiments.md, experiment A) builds such a copy
at the *character* level, before the shared sentencepiece vocabulary is trained:

* :func:`build_script_map` maps every character of the source text one to one (a bijection on the
  text's character inventory) onto characters that the source text never uses: cased letters onto
  letters of cased scripts (Deseret, Osage, Adlam, Armenian, ...) keeping upper/lower-case
  pairs (``map(c.upper()) == map(c).upper()``), so that the table builder's case variants and
  name detection behave in the copy as in English; other letters onto uncased letters (Yi
  syllables); decimal digits onto numbers of the Common script in digit order (``⓿❶❷…``); every
  other non-space character (punctuation, symbols, marks, controls) onto Common-script symbols
  (arrows, mathematical and geometric symbols, dingbats) that are not alphanumeric, keeping ``str.isalnum`` (the table's punctuation filter) unchanged. Whitespace
  is kept. Images are stable under NFKC (sentencepiece's normalisation), so no two images collapse.
  With ``share_nonletters`` only letters are mapped (digits, punctuation and symbols stay shared:
  the non-strict control).
* :func:`held_out_types` draws the word types held out of every substitution table (their
  translation is the word-translation test); :func:`csfair.lexicons.lexicon.filter_lexicon` removes
  them from a lexicon as keys and as candidates; :func:`true_lexicon` is the map itself as a dictionary.

Map text that is already tokenised (Moses punctuation splitting does not know the image symbols).
"""
import json
import string
import unicodedata
from collections import Counter, OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from csfair.io import PathLike, atomic_write, read_text
from csfair.lexicons.lexicon import Lexicon, filter_lexicon, word_forms  # noqa: F401  (re-exported)
from csfair.text import lower

#: Blocks scanned, in order, for upper/lower-case letter pairs (upper-case code point ranges). Chosen
#: so that sentencepiece treats them like Latin: on English and its image under each of these
#: scripts, a unigram model gives each language the same number of pieces (349/351 of 700 for
#: Deseret, Osage, Adlam and Armenian); Glagolitic and Coptic get 188 of 700 (sentencepiece splits
#: their words into single characters), so they are not used.
CASED_RANGES = (
    (0x10400, 0x10428),  # Deseret: a-z and the 14 most frequent other cased letters
    (0x104B0, 0x104D4),  # Osage
    (0x1E900, 0x1E922),  # Adlam
    (0x0531, 0x0557),  # Armenian
    (0x118A0, 0x118C0),  # Warang Citi
    (0x16E40, 0x16E60),  # Medefaidrin
    (0x10C80, 0x10CB3),  # Old Hungarian
)
#: Uncased letters (Yi syllables).
UNCASED_RANGES = ((0xA000, 0xA48D),)
#: Images of decimal digits: numbers of the Common script (like ASCII digits, so that sentencepiece
#: joins them to the word-boundary marker as it does digits), ``0``-``9`` onto ``⓿❶❷…❾``.
DIGIT_IMAGES = "\u24ff" + "".join(chr(c) for c in range(0x2776, 0x277F)) + "".join(chr(c) for c in range(0x2780, 0x2794))
#: Alphanumeric characters that are neither letters nor decimal digits (``No``/``Nl``: ``²``, ``½``).
OTHER_ALNUM_RANGES = ((0x2460, 0x24FF), (0x3251, 0x3260), (0x1D360, 0x1D379), (0x10107, 0x10134))
#: Non-alphanumeric symbols of the Common script (arrows, mathematical operators, technical and geometric
#: symbols, dingbats) for punctuation, symbols, marks and controls: like ASCII punctuation, sentencepiece
#: joins them to the word-boundary marker (Braille, a script of its own, it does not).
SYMBOL_RANGES = ((0x2190, 0x2200), (0x2200, 0x2300), (0x2300, 0x2400), (0x25A0, 0x2600), (0x2600, 0x2700),
                 (0x2700, 0x2776), (0x2794, 0x27C0), (0x2B00, 0x2C00))

SPM_SPACE = "\u2581"  # sentencepiece's word-boundary marker: never an image


def _stable(c: str) -> bool:
    return unicodedata.normalize("NFKC", c) == c and unicodedata.category(c) != "Cn"


def _kind(c: str) -> str:
    """``space``, ``cased`` (a letter with a one-character case partner), ``letter``, ``digit``, ``alnum``, ``other``."""
    if c.isspace():
        return "space"
    if c.isalpha():
        if c.islower() and len(c.upper()) == 1 and c.upper() != c and c.upper().lower() == c:
            return "cased"
        if c.isupper() and len(c.lower()) == 1 and c.lower() != c and c.lower().upper() == c:
            return "cased"
        return "letter"
    if unicodedata.category(c) == "Nd":
        return "digit"
    if c.isalnum():
        return "alnum"
    return "other"


def _pool(ranges, keep) -> List[str]:
    return [chr(cp) for a, b in ranges for cp in range(a, b) if keep(chr(cp))]


class ScriptMap:
    """A one-to-one character map (see the module docstring) with its inverse.

    Args:
        forward: ``{source character: image character}``, injective.
        share_nonletters: whether digits, punctuation and symbols were left unmapped.

    Raises:
        ValueError: the map is not injective, maps a whitespace character, or an image is also a
            source character.
    """

    def __init__(self, forward: Dict[str, str], share_nonletters: bool = False):
        self.forward = dict(forward)
        self.share_nonletters = share_nonletters
        images = list(self.forward.values())
        if len(set(images)) != len(images):
            raise ValueError("script map is not injective: two characters share an image")
        if any(len(k) != 1 or len(v) != 1 or k.isspace() or v.isspace() for k, v in self.forward.items()):
            raise ValueError("script map: keys and images must be single non-space characters")
        clash = set(images) & set(self.forward)
        if clash:
            raise ValueError(f"script map: {len(clash)} image(s) are also source characters, e.g. {sorted(clash)[:3]}")
        self.inverse = {v: k for k, v in self.forward.items()}
        self._fwd = str.maketrans(self.forward)
        self._inv = str.maketrans(self.inverse)

    def map(self, text: str) -> str:
        """The image of ``text`` (whitespace kept).

        Raises:
            ValueError: ``text`` holds a character the map was not built for (it would be shared
                between the two languages).
        """
        out = text.translate(self._fwd)
        unknown = {c for c, o in zip(text, out)
                   if c == o and not c.isspace() and (not self.share_nonletters or c.isalpha())}
        if unknown:
            raise ValueError(f"characters outside the script map's inventory: {''.join(sorted(unknown))!r}")
        return out

    def unmap(self, text: str) -> str:
        """The inverse of :meth:`map`."""
        return text.translate(self._inv)

    def save(self, path: PathLike) -> None:
        """Write the map as JSON (atomically): ``{"share_nonletters": bool, "forward": {...}}``."""
        with atomic_write(path) as fh:
            json.dump({"share_nonletters": self.share_nonletters, "forward": self.forward}, fh, ensure_ascii=False,
                      sort_keys=True)

    @classmethod
    def load(cls, path: PathLike) -> "ScriptMap":
        d = json.loads(read_text(path))
        return cls(d["forward"], d.get("share_nonletters", False))


def build_script_map(chars, share_nonletters: bool = False) -> ScriptMap:
    """The one-to-one map of a text's character inventory into unused scripts.

    Deterministic: the same inventory always gives the same map. Cased letters: ``a``-``z`` in
    order, then by decreasing frequency; other kinds in code-point order (ASCII ``0``-``9`` first).

    Args:
        chars: every character the text holds; a ``{character: count}`` mapping (e.g.
            :func:`char_inventory`) orders the cased letters after ``a``-``z`` by frequency.
        share_nonletters: map letters only (digits, punctuation, symbols stay shared).

    Returns:
        ScriptMap

    Raises:
        ValueError: a pool of image characters is too small for the inventory.
    """
    # printable ASCII always (any English word and number maps), and every character of the text
    given = {c for c in chars if not c.isspace()} | set(string.ascii_letters + string.digits + string.punctuation)
    # the case closure: lower- or upper-casing a word must stay inside the map ("İ".lower() is "i" + U+0307)
    closure = {x for c in given for x in c.lower() + c.upper() if not x.isspace()}
    source = sorted(given | closure)
    forbidden = set(source) | {SPM_SPACE}
    usable = lambda c: c not in forbidden and _stable(c)  # noqa: E731
    cased_upper = _pool(CASED_RANGES, lambda c: usable(c) and _kind(c) == "cased" and c.isupper()
                        and usable(c.lower()))
    pools = {
        "letter": _pool(UNCASED_RANGES, lambda c: usable(c) and c.isalpha() and _kind(c) == "letter"),
        "digit": [c for c in DIGIT_IMAGES if usable(c)],
        "alnum": _pool(OTHER_ALNUM_RANGES, lambda c: usable(c) and c.isalnum() and not c.isalpha()
                       and unicodedata.category(c) != "Nd"),
        "other": _pool(SYMBOL_RANGES, lambda c: usable(c) and not c.isalnum() and not c.isspace()),
    }
    forward: Dict[str, str] = {}
    # cased letters: one pair per lower/upper pair of the source (a lone upper-case letter takes a pair
    # too); a-z first, then by frequency, so that a word's frequent letters share one script
    counts = chars if isinstance(chars, dict) else {}
    freq = Counter()
    for c in source:
        if _kind(c) == "cased":
            freq[c.lower()] += counts.get(c, 0)
    pairs = sorted(freq, key=lambda c: (not ("a" <= c <= "z"), c if "a" <= c <= "z" else "", -freq[c], c))
    if len(pairs) > len(cased_upper):
        raise ValueError(f"{len(pairs)} cased letter pairs but only {len(cased_upper)} image pairs")
    for low, up_img in zip(pairs, cased_upper):
        forward[low] = up_img.lower()
        forward[low.upper()] = up_img
    by_kind: Dict[str, List[str]] = {}
    for c in source:
        k = _kind(c)
        if k in ("cased", "space"):
            continue
        if share_nonletters and k != "letter":
            continue
        by_kind.setdefault(k, []).append(c)
    for k, cs in by_kind.items():
        pool = pools[k]
        if k == "digit":  # in digit order: ASCII 0-9 (always in the inventory) onto 0-9 of the images
            cs = sorted(cs, key=lambda c: (not c.isascii(), ord(c)))
        if len(cs) > len(pool):
            raise ValueError(f"{len(cs)} source characters of kind {k!r} but only {len(pool)} image characters")
        forward.update(zip(cs, pool))
    # both members of each case pair are mapped, also when the text holds only one (lower-casing a
    # word must stay inside the map)
    return ScriptMap(forward, share_nonletters)


def char_inventory(lines: Iterable[str]) -> Counter:
    """Character counts of some lines."""
    c: Counter = Counter()
    for line in lines:
        c.update(line)
    return c


def word_types(lines: Iterable[str], lang: str = "en") -> Counter:
    """Lower-cased counts of the tokens with a letter in whitespace-tokenised lines."""
    c: Counter = Counter()
    for line in lines:
        c.update(lower(w, lang) for w in line.split() if any(ch.isalpha() for ch in w))
    return c


def held_out_types(types: Iterable[str], fraction: float = 0.2, seed: int = 1) -> Set[str]:
    """A seeded random ``fraction`` of word types (sorted first, so the draw depends only on the set).

    Args:
        types: word types (lower-cased).
        fraction: share held out, in ``[0, 1]``.
        seed: ``numpy.random.default_rng`` seed.

    Returns:
        the held-out set (``round(fraction * n)`` types).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1], got {fraction}")
    pool = sorted(set(types))
    k = int(round(fraction * len(pool)))
    idx = np.random.default_rng(seed).choice(len(pool), size=k, replace=False)
    return {pool[i] for i in idx}


def true_lexicon(words: Sequence[str], smap: ScriptMap, src_lang: str, tgt_lang: str,
                 inverse: bool = False) -> Lexicon:
    """The map as a one-candidate dictionary (``kind="dict"``, not probabilistic, like MUSE).

    Args:
        words: source-language word types (lower-cased English words; with ``inverse`` their images
            are the source words).
        smap: the script map.
        inverse: the ``xx -> en`` direction.
    """
    mapping: "OrderedDict[str, List[Tuple[str, float]]]" = OrderedDict()
    for w in sorted(set(words)):
        img = smap.map(w)
        s, t = (img, w) if inverse else (w, img)
        mapping[s] = [(t, 1.0)]
    return Lexicon.from_mapping(mapping, src_lang, tgt_lang, "dict", probabilistic=False)


def mirror_sentencepiece(model_in: PathLike, smap: ScriptMap, model_out: PathLike) -> dict:
    """A sentencepiece model for both languages: ``model_in`` (trained on the source language only) plus
    the image of each of its pieces with the same score.

    The two languages then segment isomorphically: the pieces that can cover a mapped word are the
    images of the pieces that cover the word, with the same scores, so the unigram (or BPE) best
    segmentation of ``map(w)`` is the image of ``w``'s (K et al. 2020 shift token ids for the same
    effect). A jointly trained model is not: on English and its image, sentencepiece keeps ``▁wom``
    but not its image (ties between equally frequent pieces are broken by their bytes), and the two
    languages would differ in more than their script. Pieces whose image is themselves (the bare
    ``▁``, unmapped characters with ``share_nonletters``) are the shared ones.

    Returns:
        ``{"pieces": total, "source_pieces": n, "shared": [pieces that are their own image]}``.
    """
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(open(model_in, "rb").read())
    normal = sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
    have = {p.piece for p in proto.pieces}
    shared, added = [], []
    for p in list(proto.pieces):
        if p.type != normal:
            continue
        img = smap.map(p.piece.replace(SPM_SPACE, " ")).replace(" ", SPM_SPACE) if not smap.share_nonletters else \
            p.piece.translate(smap._fwd)
        if img == p.piece:
            shared.append(p.piece)
            continue
        if img in have:
            raise ValueError(f"piece {p.piece!r}: its image {img!r} is already a piece of {model_in}")
        added.append((img, p.score))
    for img, score in added:
        q = proto.pieces.add()
        q.piece, q.score, q.type = img, score, normal
    proto.trainer_spec.vocab_size = len(proto.pieces)
    with atomic_write(model_out, mode="wb", encoding=None) as fh:
        fh.write(proto.SerializeToString())
    return dict(pieces=len(proto.pieces), source_pieces=len(proto.pieces) - len(added), shared=shared)
