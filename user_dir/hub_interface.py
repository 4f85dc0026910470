"""Python interface to csfair checkpoints (in the style of fairseq's ``RobertaHubInterface``).

    >>> from user_dir.hub_interface import from_pretrained
    >>> cs = from_pretrained("checkpoints/en-fr/ibm1")             # MLM checkpoint of the demo
    >>> cs.fill_mask("a man is riding a <mask> .", topk=3)        # [(sentence, prob, token), ...]
    >>> cs.extract_features(cs.encode("a dog runs ."), layer=2).shape   # torch.Size([1, 6, 256])
    >>> cs.codeswitch("Two young men are working outside .", lang="en", seed=1, word_prob=0.5)

Importing this module registers csfair's fairseq plugin (tasks, criterions, architectures), so
loading never fails with an unknown-task error when ``--user-dir`` was forgotten. Text goes through
the pipeline the model was trained with: Moses tokenisation (``lang``), then sentencepiece. Batched
methods sort their inputs by length and pad them; results come back in input order.
"""
import os
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from csfair.paths import find_upwards
import user_dir  # noqa: F401  (registers the plugin)

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _resolve(path: str, *bases: str) -> Optional[str]:
    if not path:
        return None
    if os.path.isabs(path):
        return path if os.path.exists(path) else None
    for base in (os.getcwd(),) + bases:
        cand = os.path.join(base, path)
        if os.path.exists(cand):
            return os.path.abspath(cand)
    return None


def from_pretrained(model_dir: str, checkpoint_file: str = "checkpoint_last.pt", data_name_or_path: Optional[str] = None,
                    bpe_model: Optional[str] = None, device: Optional[str] = None) -> "CodeSwitchHubInterface":
    """Load a csfair checkpoint (pretraining, tagging or classification).

    Args:
        model_dir: directory of the checkpoint.
        checkpoint_file: file name inside ``model_dir``.
        data_name_or_path: the data directory the task reads dictionaries from (default: the one
            recorded in the checkpoint, resolved against the working directory, ``model_dir`` and
            the repository).
        bpe_model: the sentencepiece model (default: ``spm.model`` in the data directory or above).
        device: ``"cpu"``, ``"cuda"`` (default: cuda if available).

    Returns:
        CodeSwitchHubInterface

    Raises:
        FileNotFoundError: checkpoint, data directory or sentencepiece model not found (a missing
            data file names the checkpoint's task and architecture).
        user_dir.checkpoint_loading.CheckpointError: an empty, truncated or corrupted file, or not a
            fairseq checkpoint (names the file).
    """
    from .checkpoint_loading import load_model_and_task, read_checkpoint

    path = os.path.join(model_dir, checkpoint_file)
    state = read_checkpoint(path)
    task_cfg = state["cfg"]["task"]
    saved_data = (task_cfg.get("data") or "").split(os.pathsep)[0]
    data = _resolve(data_name_or_path or saved_data, os.path.abspath(model_dir), _REPO)
    if data is None:
        raise FileNotFoundError(f"data directory {data_name_or_path or saved_data!r} of {path} not found; "
                                "pass data_name_or_path")
    overrides = {"data": data}
    if task_cfg.get("_name") == "codeswitch_masked_lm":
        overrides.update(cs_mode="none", cs_tables="", cs_table_name="")  # tables are loaded on demand
    del state  # fairseq reads it again, applying the overrides
    models, cfg, task, _ = load_model_and_task(path, overrides)
    bpe = bpe_model or find_upwards(data, "spm.model", 5) or find_upwards(model_dir, "spm.model", 5)
    if bpe is None or not os.path.exists(bpe):
        raise FileNotFoundError(f"no sentencepiece model (spm.model) near {data} or {model_dir}; pass bpe_model")
    hub = CodeSwitchHubInterface(cfg, task, models[0], bpe, data, dict(task_cfg))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return hub.to(device)


class CodeSwitchHubInterface(nn.Module):
    """A loaded csfair model with its vocabulary and task (see :func:`from_pretrained`)."""

    def __init__(self, cfg, task, model, bpe_model: str, data_dir: str, saved_task_cfg: dict):
        super().__init__()
        import sentencepiece as spm

        self.cfg = cfg
        self.task = task
        self.model = model
        self.model.eval()
        self.bpe_model = bpe_model
        self.sp = spm.SentencePieceProcessor(model_file=bpe_model)
        self.data_dir = data_dir
        self.saved_task_cfg = saved_task_cfg
        self.dictionary = task.source_dictionary
        self._tables = {}
        self.register_buffer("_float_tensor", torch.tensor([0], dtype=torch.float), persistent=False)

    @property
    def device(self):
        return self._float_tensor.device

    @property
    def dict_path(self) -> str:
        for p in (os.path.join(self.data_dir, "dict.txt"), os.path.join(self.data_dir, "input0", "dict.txt")):
            if os.path.exists(p):
                return p
        langs = [x for x in (self.saved_task_cfg.get("langs") or "").split(",") if x]
        # per-language layouts: codeswitch_masked_lm (DATA/<lang>/), tlm and weam (DATA/src/)
        tried = [os.path.join(self.data_dir, sub, "dict.txt") for sub in langs[:1] + ["src"]]
        for p in tried:
            if os.path.exists(p):
                return p
        raise FileNotFoundError(f"no dict.txt of this model's vocabulary under {self.data_dir}: looked for "
                                f"dict.txt, input0/dict.txt, {', '.join(os.path.relpath(p, self.data_dir) for p in tried)}")

    # ------------------------------------------------------------------ text <-> ids
    def tokenize(self, text: str, lang: Optional[str] = "en") -> List[str]:
        """Moses tokenisation (``lang``; None: text is already tokenised), then sentencepiece pieces."""
        from csfair.text import moses_tokenize

        if lang:
            text = moses_tokenize(text, lang)
        return self.sp.encode(text, out_type=str)

    def encode(self, sentence: str, *addl_sentences: str, lang: Optional[str] = "en", no_separator=False) -> torch.LongTensor:
        """``<s> a </s>`` (+ ``</s> b </s>`` per additional sentence) as dictionary ids.

        >>> cs.encode("a dog runs .")            # tensor([0, <ids of ▁a ▁dog ▁run s ▁.>, 2])
        """
        ids = [self.dictionary.bos()] + [self.dictionary.index(p) for p in self.tokenize(sentence, lang)]
        ids.append(self.dictionary.eos())
        for s in addl_sentences:
            ids += ([] if no_separator else [self.dictionary.eos()])
            ids += [self.dictionary.index(p) for p in self.tokenize(s, lang)] + [self.dictionary.eos()]
        return torch.LongTensor(ids)

    def encode_batch(self, sentences: Sequence[str], lang: Optional[str] = "en") -> torch.LongTensor:
        """Padded ``(B, T)`` ids of several sentences."""
        from fairseq.data import data_utils

        return data_utils.collate_tokens([self.encode(s, lang=lang) for s in sentences], self.dictionary.pad())

    def decode(self, tokens: torch.LongTensor) -> str:
        """Ids back to text (sentencepiece decoding; specials dropped; sentences joined by " | ")."""
        d = self.dictionary
        parts, cur = [], []
        for t in tokens.tolist():
            if t == d.eos():
                if cur:
                    parts.append(cur)
                cur = []
            elif t not in (d.bos(), d.pad()):
                cur.append(d[t])
        if cur:
            parts.append(cur)
        return " | ".join(self.sp.decode_pieces(p) for p in parts)

    # ------------------------------------------------------------------ batching
    def _batched(self, items: List[torch.LongTensor], fn, batch_size: int):
        """Run ``fn(padded_batch) -> list`` over length-sorted batches; results in input order."""
        from fairseq.data import data_utils

        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        out = [None] * len(items)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = data_utils.collate_tokens([items[i] for i in idx], self.dictionary.pad()).to(self.device)
            for i, r in zip(idx, fn(batch)):
                out[i] = r
        return out

    @torch.no_grad()
    def extract_features(self, tokens: Union[torch.LongTensor, List[torch.LongTensor]], layer: Optional[int] = None,
                         return_all_hiddens: bool = False, batch_size: int = 32):
        """Hidden states.

        Args:
            tokens: one ``(T,)`` / ``(B, T)`` tensor, or a list of ``(T_i,)`` tensors (batched by length).
            layer: 0 = embeddings, ``L`` = last layer (default: last).
            return_all_hiddens: return the list of all layers (embeddings first).
            batch_size: sentences per forward pass for list input.

        Returns:
            ``(B, T, H)`` for a tensor input, or a list of ``(T_i, H)`` for a list input (or lists of
            layers with ``return_all_hiddens``).
        """
        def run(batch):
            _, extra = self.model(batch, features_only=True, return_all_hiddens=True)
            states = [s.transpose(0, 1) for s in extra["inner_states"]]  # T x B x C -> B x T x C
            return states if return_all_hiddens else [states[-1 if layer is None else layer]]

        if isinstance(tokens, list):
            def per_item(batch):
                states = run(batch)
                lens = batch.ne(self.dictionary.pad()).sum(1)
                rows = [[s[b, : lens[b]] for s in states] for b in range(batch.size(0))]
                return [r if return_all_hiddens else r[0] for r in rows]
            return self._batched(tokens, per_item, batch_size)
        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        states = run(tokens.to(self.device))
        return states if return_all_hiddens else states[0]

    @torch.no_grad()
    def fill_mask(self, masked_input: str, topk: int = 5, lang: Optional[str] = "en"):
        """Top-k fillers of the single ``<mask>`` in ``masked_input``: ``[(text, prob, piece), ...]``.

        >>> cs.fill_mask("a man is riding a <mask> .", topk=2)   # e.g. [('a man is riding a bike .', 0.31, '▁bike'), ...]
        """
        if masked_input.count("<mask>") != 1:
            raise ValueError("fill_mask needs exactly one <mask>")
        left, right = masked_input.split("<mask>")
        d = self.dictionary
        ids = [d.bos()] + [d.index(p) for p in (self.tokenize(left, lang) if left.strip() else [])]
        pos = len(ids)
        ids += [self.task.mask_idx] + [d.index(p) for p in (self.tokenize(right, lang) if right.strip() else [])] + [d.eos()]
        tokens = torch.LongTensor(ids).unsqueeze(0).to(self.device)
        logits = self.model(tokens)[0][0, pos]
        probs = logits.float().softmax(-1)
        values, index = probs.topk(topk)
        out = []
        for v, i in zip(values.tolist(), index.tolist()):
            filled = ids[:pos] + [i] + ids[pos + 1:]
            out.append((self.decode(torch.LongTensor(filled)), v, d[i]))
        return out

    # ------------------------------------------------------------------ fine-tuned heads
    @torch.no_grad()
    def predict_tags(self, words: Union[List[str], List[List[str]]], batch_size: int = 32):
        """One label per word (token_tagging checkpoints); labels from each word's first piece.

        >>> tagger.predict_tags(["A", "dog", "runs", "."])      # ['DET', 'NOUN', 'VERB', 'PUNCT']
        """
        from csfair.evaluation.tagging import align_first_piece

        from .models.token_tagging_head import TokenTaggingHead

        head_name = getattr(self.task.cfg, "classification_head_name", None)
        heads = getattr(self.model, "classification_heads", {})
        if not head_name or head_name not in heads or not isinstance(heads[head_name], TokenTaggingHead):
            raise ValueError("not a token_tagging checkpoint (no tagging head)")
        single = bool(words) and isinstance(words[0], str)
        sents = [words] if single else words
        enc = lambda w: self.sp.encode(w, out_type=str)  # noqa: E731
        d = self.dictionary
        items, firsts, kept = [], [], []
        for s in sents:
            a = align_first_piece(s, ["x"] * len(s), enc, self.task.max_positions() - 2)
            items.append(torch.LongTensor([d.bos()] + [d.index(p) for p in a.pieces] + [d.eos()]))
            firsts.append([i + 1 for i, lab in enumerate(a.piece_labels) if lab == "x"])
            kept.append(len(a.words))
        head = self.model.classification_heads[head_name]
        names = self.task.label_names()

        def run(batch):
            em = self.model(batch, features_only=True, classification_head_name=head_name)[0]
            return [em[b] for b in range(em.size(0))]

        ems = self._batched(items, run, batch_size)
        out = []
        for em, pos, n, s in zip(ems, firsts, kept, sents):
            e = em[pos]
            if head.crf is not None:
                path = head.crf.decode(e.float().unsqueeze(0))[0]
            else:
                path = e.argmax(-1).tolist()
            out.append([names[c] for c in path] + [None] * (len(s) - n))  # None: beyond max positions
        return out[0] if single else out

    @torch.no_grad()
    def predict(self, sentence: str, pair: Optional[str] = None, lang: Optional[str] = "en", return_probs: bool = False):
        """Class of a sentence or sentence pair (cs_sentence_prediction checkpoints).

        >>> nli.predict("A man is sleeping .", "Nobody sleeps .")   # 'contradiction'
        """
        head_name = getattr(self.task.cfg, "classification_head_name", "sentence_classification_head")
        if head_name not in getattr(self.model, "classification_heads", {}):
            raise ValueError("not a sentence classification checkpoint")
        tokens = self.encode(sentence, *([pair] if pair is not None else []), lang=lang).unsqueeze(0).to(self.device)
        logits = self.model(tokens, features_only=True, classification_head_name=head_name)[0][0]
        nspec = self.task.label_dictionary.nspecial
        names = self.task.label_dictionary.symbols[nspec:nspec + logits.size(-1)]
        probs = F.softmax(logits.float(), -1)
        label = names[int(probs.argmax())]
        return (label, dict(zip(names, probs.tolist()))) if return_probs else label

    # ------------------------------------------------------------------ code-switching
    def table_for(self, lang: str, table: Optional[str] = None):
        """The substitution table applied to ``lang`` text (from the checkpoint's task, or a path)."""
        from csfair.pretraining.substitution_table import SubstitutionTable

        key = table or lang
        if key in self._tables:
            return self._tables[key]
        path = table
        if path is None:
            cfg = self.saved_task_cfg
            langs = [x for x in (cfg.get("langs") or "").split(",") if x]
            if cfg.get("cs_table_name") and len(langs) == 2 and lang in langs:
                other = langs[1 - langs.index(lang)]
                path = os.path.join(self.data_dir, "tables", f"{cfg['cs_table_name']}.{lang}-{other}")
            for part in (cfg.get("cs_tables") or "").split(","):
                if part.startswith(f"{lang}:"):
                    p = part.split(":", 1)[1]
                    path = p if os.path.isabs(p) else os.path.join(self.data_dir, p)
        if path is None:
            raise ValueError(f"this checkpoint names no substitution table for {lang!r}; pass table=PATH")
        t = SubstitutionTable.load(path).with_sampling(
            float(self.saved_task_cfg.get("cs_temperature", 3.0)), float(self.saved_task_cfg.get("cs_min_prob", 0.02)))
        self._tables[key] = t
        return t

    def codeswitch(self, text: str, lang: str, seed: int = 0, word_prob: float = 0.03, mode: str = "multiview",
                   table: Optional[str] = None) -> str:
        """Apply the substitution table to raw text, as pretraining does to unmasked words.

        Every eligible word is replaced with probability ``word_prob`` (pretraining: 0.03, in half
        of the instances); draws are seeded by ``seed``. For data augmentation and for showing
        what the model saw.

        >>> cs.codeswitch("Two young men are working outside .", lang="en", seed=3, word_prob=0.5)
        'Two jeunes men are working dehors .'
        """
        from csfair.pretraining.sampler import CodeSwitchConfig, code_switch

        from .data.codeswitch_mask_tokens_dataset import special_mask, word_start_mask

        tab = self.table_for(lang, table)
        ids = self.encode(text, lang=lang).numpy().astype(np.int64)
        target = np.full(len(ids), self.dictionary.pad(), dtype=np.int64)
        cfg = CodeSwitchConfig(mode, 1.0, word_prob, max_len=max(len(ids), self.task.max_positions() or len(ids)))
        src, _, _ = code_switch(ids, target, ids, self.dictionary.pad(), word_start_mask(self.dictionary),
                                special_mask(self.dictionary), tab, np.random.default_rng(seed), cfg)
        return self.decode(torch.from_numpy(src))
