"""Word and sentence vectors of csfair checkpoints for the alignment measures (csfair issue 24).

``python -m user_dir.features SPEC.json`` loads each model of the spec in turn (a trained checkpoint,
or the same architecture with random weights: the ``random-init`` control), encodes the spec's
inputs and writes one ``.npz`` per model; the measures themselves are computed by
``csfair.evaluation.crosslingual`` (no framework there). Inputs are *tokenised* text (Moses for
natural languages; the synthetic language is mapped from tokenised English): each word is encoded
as in running text (``▁word`` pieces).

Spec (JSON)::

    {"data": DATA_BIN, "spm": SPM_MODEL, "layers": null | [0, 1, ...], "threads": 2, "device": "cpu" | "cuda",
     "words": {NAME: [word, ...]}, "sentences": {NAME: [line, ...]}, "tagged": {NAME: [[word, ...], ...]},
     "models": [{"name": N, "checkpoint": PATH, "random_init": null | SEED, "out": PATH.npz}, ...]}

Arrays written (float32; ``L`` = layer, 0 the embedding layer's output, as fairseq's
``inner_states``):

* ``words/NAME/emb`` ``[n, H]``: mean of the word's input embedding rows (the embedding matrix);
* ``words/NAME/L{l}`` ``[n, H]``: the word encoded alone (``<s> pieces </s>``), mean over its pieces;
* ``sent/NAME/L{l}`` ``[n, H]``: mean over a sentence's pieces (without ``<s>``/``</s>``); lines
  longer than the model's positions are truncated, counted in ``sent/NAME/truncated`` (and warned);
  ``sent/NAME/CLS{l}``: the ``<s>`` state;
* ``tagged/NAME/L{l}`` ``[words, H]``: each word in its sentence, mean over its pieces; sentences
  longer than the positions are encoded in consecutive windows (counted in ``tagged/NAME/windowed``).

Word means leave out the bare word-boundary piece ``▁`` (it is the one piece every language shares;
in the synthetic control it would be the only common input), unless a word has no other piece.
"""
import argparse
import json
import os
import sys
import time
from typing import Dict, List, Sequence

import numpy as np
import torch


def load(checkpoint: str, data: str, spm: str, random_init=None, device: str = "cpu"):
    """A hub interface (user_dir.hub_interface) for ``checkpoint`` on ``device``; with ``random_init``
    (an int seed) its model is replaced by a freshly initialised one of the same configuration."""
    from fairseq import utils

    from user_dir.hub_interface import from_pretrained

    hub = from_pretrained(os.path.dirname(os.path.abspath(checkpoint)), os.path.basename(checkpoint),
                          data_name_or_path=data, bpe_model=spm, device="cpu")
    if random_init is not None:
        utils.set_torch_seed(int(random_init))
        model = hub.task.build_model(hub.cfg.model)
        model.eval()
        hub.model = model
    return hub.to(device)


class Encoder:
    """Piece ids of tokenised text for one hub (running-text encoding of each word)."""

    def __init__(self, hub):
        self.hub = hub
        self.d = hub.dictionary
        self.space = self.d.index("\u2581")
        self.max_len = int(hub.model.max_positions()) - 2  # room for <s> and </s>
        self._cache: Dict[str, List[int]] = {}

    def word(self, w: str) -> List[int]:
        ids = self._cache.get(w)
        if ids is None:
            ids = [self.d.index(p) for p in self.hub.sp.encode(w, out_type=str)]
            self._cache[w] = ids
        return ids

    def content(self, ids: Sequence[int]) -> List[int]:
        """Positions of ``ids`` to average for a word vector (all but a bare ``▁``, unless nothing else)."""
        keep = [k for k, t in enumerate(ids) if t != self.space]
        return keep or list(range(len(ids)))


def _forward(hub, batch_ids: List[List[int]], batch_size: int = 64) -> List[List[torch.Tensor]]:
    """All layers' states ``[T_i, H]`` of ``<s> ids </s>`` per item (``hub.extract_features`` batching)."""
    d = hub.dictionary
    items = [torch.LongTensor([d.bos()] + list(ids) + [d.eos()]) for ids in batch_ids]
    return hub.extract_features(items, return_all_hiddens=True, batch_size=batch_size)


def word_vectors(hub, enc: Encoder, words: Sequence[str], layers: Sequence[int]) -> Dict[str, np.ndarray]:
    emb = hub.model.encoder.sentence_encoder.embed_tokens.weight.detach().float().cpu()
    ids = [enc.word(w)[: enc.max_len] for w in words]
    out = {"emb": np.stack([emb[[i[k] for k in enc.content(i)]].mean(0).numpy() for i in ids]).astype(np.float32)}
    states = _forward(hub, ids)
    for layer in layers:
        out[f"L{layer}"] = np.stack([
            s[layer][1:-1][enc.content(i)].mean(0).float().cpu().numpy() for s, i in zip(states, ids)]).astype(np.float32)
    return out


def sentence_vectors(hub, enc: Encoder, lines: Sequence[str], layers: Sequence[int], name: str) -> Dict[str, np.ndarray]:
    ids, truncated = [], 0
    for line in lines:
        t = [p for w in line.split() for p in enc.word(w)]
        if len(t) > enc.max_len:
            truncated += 1
            t = t[: enc.max_len]
        ids.append(t)
    if truncated:
        print(f"[features] warning: {truncated} of {len(lines)} {name} sentences are longer than the model's "
              f"{enc.max_len} positions: truncated", file=sys.stderr)
    states = _forward(hub, ids)
    out = {f"L{layer}": np.stack([s[layer][1:-1].mean(0).float().cpu().numpy() for s in states]).astype(np.float32)
           for layer in layers}
    out.update({f"CLS{layer}": np.stack([s[layer][0].float().cpu().numpy() for s in states]).astype(np.float32)
                for layer in layers})
    out["truncated"] = np.array(truncated)
    return out


def tagged_vectors(hub, enc: Encoder, sentences: Sequence[Sequence[str]], layers: Sequence[int]) -> Dict[str, np.ndarray]:
    windows, spans, windowed = [], [], 0  # windows of piece ids; per window the (start, end) of each word
    for words in sentences:
        cur, cur_spans, split = [], [], False
        for w in words:
            p = enc.word(w)[: enc.max_len]
            if cur and len(cur) + len(p) > enc.max_len:
                windows.append(cur)
                spans.append(cur_spans)
                cur, cur_spans, split = [], [], True
            cur_spans.append((len(cur), len(cur) + len(p), p))
            cur.extend(p)
        windows.append(cur)
        spans.append(cur_spans)
        windowed += int(split)
    states = _forward(hub, windows)
    out = {}
    for layer in layers:
        vecs = []
        for s, sp in zip(states, spans):
            h = s[layer][1:-1]
            for a, b, p in sp:
                vecs.append(h[a:b][enc.content(p)].mean(0).float().cpu().numpy())
        out[f"L{layer}"] = np.stack(vecs).astype(np.float32)
    out["windowed"] = np.array(windowed)
    return out


def run(spec: dict) -> None:
    from csfair.io import atomic_write

    torch.set_num_threads(int(spec.get("threads") or 1))
    for m in spec["models"]:
        t0 = time.time()
        device = spec.get("device") or "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("features: device 'cuda' asked but torch sees no CUDA device")
        hub = load(m["checkpoint"], spec["data"], spec["spm"], m.get("random_init"), device)
        n_layers = len(hub.model.encoder.sentence_encoder.layers)
        layers = spec.get("layers") or list(range(n_layers + 1))
        if max(layers) > n_layers:
            raise ValueError(f"{m['checkpoint']}: layer {max(layers)} asked, the model has {n_layers}")
        enc = Encoder(hub)
        arrays = {"layers": np.array(layers), "max_len": np.array(enc.max_len)}
        with torch.no_grad():
            for name, words in (spec.get("words") or {}).items():
                arrays.update({f"words/{name}/{k}": v for k, v in word_vectors(hub, enc, words, layers).items()})
            for name, lines in (spec.get("sentences") or {}).items():
                arrays.update({f"sent/{name}/{k}": v for k, v in sentence_vectors(hub, enc, lines, layers, name).items()})
            for name, sents in (spec.get("tagged") or {}).items():
                arrays.update({f"tagged/{name}/{k}": v for k, v in tagged_vectors(hub, enc, sents, layers).items()})
        with atomic_write(m["out"], mode="wb", encoding=None) as fh:
            np.savez(fh, **arrays)
        print(f"[features] {m['name']}: {len(arrays)} arrays -> {m['out']} ({time.time() - t0:.1f} s)", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spec", help="JSON spec (see the module docstring)")
    args = p.parse_args(argv)
    with open(args.spec, encoding="utf-8") as fh:
        run(json.load(fh))


if __name__ == "__main__":
    main()
