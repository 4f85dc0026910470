"""Hydra configs for fairseq-hydra-train (issue 15, part 4): configs/pretrain/demo.yaml is the recipe's
fairseq-train command with its defaults, field by field (the command as the recipe prints it with
--print-train, not read from its source); both configs compose with fairseq's schema and convert to its
dataclasses with the user dir's task, criterion and architectures registered; a pair of the pairs table
(csfair_cli/pairs.toml) is selected with the overrides `python -m csfair_cli.pairs hydra PAIR` prints."""
import os
import shlex
import subprocess
import sys

import pytest
from omegaconf import OmegaConf, open_dict

from conftest import ROOT, VENV_BIN

CONFIGS = ROOT / "configs" / "pretrain"
RECIPE = ROOT / "scripts" / "recipes" / "pair.sh"


def compose(name, overrides=()):
    """The config fairseq-hydra-train --config-dir configs/pretrain --config-name NAME runs (before its main)."""
    from fairseq.dataclass.initialize import add_defaults, hydra_init
    from hydra import compose as hydra_compose, initialize_config_dir

    import user_dir  # noqa: F401  (registers the task, criterion and architectures, as common.user_dir does)

    hydra_init(name)
    # version_base 1.1: what fairseq-hydra-train runs under (its @hydra.main gives none), and what its
    # convert_namespace_to_omegaconf needs (hydra.experimental.initialize refuses a base >= 1.2)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.1"):
        cfg = hydra_compose(config_name=name, overrides=list(overrides))
    add_defaults(cfg)
    return cfg


def recipe_argv(pair="en-fr", *options):
    """The fairseq-train command the recipe runs for ``pair`` with its defaults (``pair.sh --print-train``)."""
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    p = subprocess.run(["bash", str(RECIPE), pair, *options, "--print-train"], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    argv = shlex.split(p.stdout)
    assert argv[0] == "fairseq-train", p.stdout
    return argv[1:]


def recipe_fairseq_train_cfg():
    """The recipe's fairseq-train command for en-fr with its default options (the CPU demo: one DataLoader
    worker without a CUDA GPU, as demo.yaml is), parsed by fairseq-train."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    argv = recipe_argv("en-fr", "--num-workers", "1")
    argv[argv.index("--user-dir") + 1] = str(ROOT / "user_dir")
    args = options.parse_args_and_arch(options.get_training_parser(), input_args=argv)
    return convert_namespace_to_omegaconf(args)


def _leaves(d, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, prefix + (k,))
        else:
            yield prefix + (k,), v


def test_demo_config_is_the_recipes_fairseq_train_command_and_builds(tiny_pair):
    cfg = compose("demo", [f"task.data={tiny_pair['bin']}", "common.cpu=true"])
    cli = recipe_fairseq_train_cfg()
    yaml = OmegaConf.to_container(OmegaConf.load(CONFIGS / "demo.yaml"))
    yaml.pop("hydra")
    checked = 0
    for path, _ in _leaves(yaml):
        if path in (("common", "user_dir"), ("task", "data")):
            continue
        got = OmegaConf.select(cfg, ".".join(path))
        if path[0] == "model":  # a legacy (argparse) architecture: fairseq keeps the namespace as cfg.model
            want = getattr(cli.model, "arch" if path[1] == "_name" else path[1])
        else:
            want = OmegaConf.select(cli, ".".join(path))
        assert got == want, (path, got, want)
        checked += 1
    assert checked >= 25
    # converted with the user dir's dataclasses: the paper's code-switching rates as defaults
    assert cfg.task.cs_instance_prob == 0.5 and cfg.task.cs_word_prob == 0.03
    from fairseq import tasks

    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    assert model.args.encoder_layers == 4 and model.args.encoder_embed_dim == 256  # cs_roberta_tiny
    assert type(task.build_criterion(cfg.criterion)).__name__ == "CodeSwitchMaskedLmLoss"


def test_paper_config_is_bert_base_at_128_tokens_batch_512_for_1m_steps():
    from fairseq.models import ARCH_CONFIG_REGISTRY

    cfg = compose("paper", ["task.data=data-bin/en-fr"])
    assert cfg.task._name == "codeswitch_masked_lm" and cfg.task.tokens_per_sample == 128
    assert cfg.dataset.batch_size * cfg.optimization.update_freq[0] == 512  # on one GPU; see the config's comment
    assert cfg.optimization.max_update == 1_000_000 == cfg.lr_scheduler.total_num_update
    assert cfg.optimization.lr == [1e-4] and cfg.lr_scheduler.warmup_updates == 10_000
    assert cfg.optimizer.adam_betas == "(0.9,0.999)" and cfg.optimizer.weight_decay == 0.01
    with open_dict(cfg.model):
        ARCH_CONFIG_REGISTRY[cfg.model._name](cfg.model)
    assert (cfg.model.encoder_layers, cfg.model.encoder_embed_dim, cfg.model.encoder_attention_heads) == (12, 768, 12)


def _pairs_query(*args):
    p = subprocess.run([sys.executable, "-m", "csfair_cli.pairs", *args], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return p


def test_a_pair_of_the_table_selects_its_data_languages_and_run_folder():
    from csfair_cli.pairs import load_pairs

    table = load_pairs()
    yaml = OmegaConf.load(CONFIGS / "demo.yaml")
    # the demo config is the table's en-fr with the recipe's default run (--cs ibm1)
    overrides = dict(x.split("=", 1) for x in _pairs_query("hydra", "en-fr").stdout.split())
    assert set(overrides) == {"task.data", "task.langs", "checkpoint.save_dir"}
    assert all(str(OmegaConf.select(yaml, k)) == v.strip("'") for k, v in overrides.items()), overrides
    paper = OmegaConf.load(CONFIGS / "paper.yaml")
    assert paper.task.langs in {f"{r.src},{r.tgt}" for r in table.values()}
    for name in ("en-de", "en-xh"):
        p = _pairs_query("hydra", name)
        assert p.returncode == 0, p.stderr
        cfg = compose("demo", p.stdout.split() + ["common.cpu=true"])
        r = table[name]
        assert cfg.task.langs == f"{r.src},{r.tgt}" and cfg.task.data == f"data-bin/{name}"
        assert cfg.checkpoint.save_dir == f"checkpoints/{name}/ibm1"
        # the recipe trains the same pair into the same folders
        argv = recipe_argv(name, "--num-workers", "1")
        assert argv[argv.index("--langs") + 1] == cfg.task.langs and argv[0] == cfg.task.data
        assert argv[argv.index("--save-dir") + 1] == cfg.checkpoint.save_dir
    p = _pairs_query("hydra", "en-es")
    assert p.returncode == 1 and "unknown pair 'en-es'" in p.stderr
