"""Hydra configs for fairseq-hydra-train (issue 15, part 4): configs/pretrain/demo.yaml is the recipe's
fairseq-train command with its defaults, field by field; both configs compose with fairseq's schema and
convert to its dataclasses with the user dir's task, criterion and architectures registered."""
import re
import shlex

from omegaconf import OmegaConf, open_dict

from conftest import ROOT

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


def recipe_fairseq_train_cfg():
    """The recipe's fairseq-train command for en-fr with its default options, parsed by fairseq-train."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    text = RECIPE.read_text()
    block = text[text.index('PAIR="" '):text.index("while [ $# -gt 0 ]")]
    env = {k: v.strip('"') for k, v in re.findall(r"\b([A-Z_]+)=(\"[^\"]*\"|\S+)", block)}
    # NUM_WORKERS="" means: 2 with a CUDA GPU, else 1 (the CPU demo, which demo.yaml is)
    env["NUM_WORKERS"] = env.get("NUM_WORKERS") or "1"
    env.update(DATA_BIN="data-bin/en-fr", SRC="en", TGT="fr", SAVE="checkpoints/en-fr/" + env["CS"])
    cmd = text[text.index('fairseq-train "$DATA_BIN"'):text.index('"${EXTRA[@]}"')].replace("\\\n", " ")
    argv = []
    for tok in shlex.split(cmd)[1:]:
        if tok == "${CS_ARGS[@]}":  # the recipe's CS_ARGS for a code-switching run
            argv += ["--cs-mode", env["CS_MODE"], "--cs-table-name", env["CS"]]
        else:
            argv.append(re.sub(r"\$\{?(\w+)\}?", lambda m: env[m.group(1)], tok))
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
