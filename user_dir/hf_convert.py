"""Convert between csfair (fairseq) checkpoints and Hugging Face transformers directories.

Usage:
    python scripts/hf_convert.py export CHECKPOINT OUT_DIR [--model-type xlm-roberta|roberta]
    python scripts/hf_convert.py import HF_DIR OUT_CHECKPOINT OUT_DATA_DIR

Both directions run the two models on the same inputs and fail if any logit differs by more than
--atol (1e-4). ``export`` also writes a model card (OUT_DIR/README.md: languages, training data,
code-switching mode and table checksums, Moses-then-sentencepiece input, a usage example that runs;
csfair_hf/model_card.py). An imported checkpoint continues pretraining with
``fairseq-train DATA --user-dir user_dir --task codeswitch_masked_lm ... --finetune-from-model OUT_CHECKPOINT``
where DATA is binarised with OUT_DATA_DIR/dict.txt.

The command of ``scripts/hf_convert.py`` over :mod:`user_dir.hf_interop` (not a registering module).
"""
import argparse
import json
import sys


def main(argv=None):
    p = argparse.ArgumentParser(prog="hf_convert.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="csfair checkpoint -> transformers directory (MLM; "
                         "sentence classification heads under heads/<name>/)")
    e.add_argument("checkpoint")
    e.add_argument("out_dir")
    e.add_argument("--model-type", default="xlm-roberta", choices=["xlm-roberta", "roberta"])
    e.add_argument("--spm", default=None, help="sentencepiece model (default: the checkpoint's data dir)")
    e.add_argument("--atol", type=float, default=1e-4)
    e.add_argument("--license", default=None,
                   help="license of the model card's metadata (an SPDX id, or 'other'); default: left out")
    e.add_argument("--no-card", action="store_true", help="do not write OUT_DIR/README.md")
    i = sub.add_parser("import", help="transformers RoBERTa / XLM-R MLM directory -> csfair checkpoint")
    i.add_argument("hf_dir")
    i.add_argument("out_checkpoint")
    i.add_argument("out_data")
    i.add_argument("--atol", type=float, default=1e-4)
    args = p.parse_args(argv)
    from .hf_interop import export_checkpoint, import_hf

    try:
        if args.cmd == "export":
            res = export_checkpoint(args.checkpoint, args.out_dir, spm_model=args.spm, model_type=args.model_type,
                                    atol=args.atol)
            if not args.no_card:
                from csfair_hf.model_card import write_model_card

                res["model_card"] = write_model_card(args.out_dir, res, license=args.license)
        else:
            res = import_hf(args.hf_dir, args.out_checkpoint, args.out_data, atol=args.atol)
    except (ValueError, FileNotFoundError) as err:
        print(f"hf_convert {args.cmd}: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(res, indent=2))
