"""csfair: code-switched masked-LM pretraining and zero-shot cross-lingual evaluation on fairseq.

Dependencies are installed by scripts/setup.sh (torch is the build it chose: CPU, CUDA or the
system's; fairseq-fixed needs a no-deps install), so install_requires is deliberately empty:
`pip install -e .` must never pull another torch.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(
    r'^__version__ = "([^"]+)"', (Path(__file__).parent / "csfair" / "__init__.py").read_text(), re.M
).group(1)

setup(
    name="csfair",
    version=version,
    description="Code-switched MLM pretraining and zero-shot cross-lingual evaluation (fairseq user-dir)",
    # user_dir is installed too, so that `from user_dir.hub_interface import from_pretrained` works from
    # any directory; fairseq's --user-dir user_dir imports the same files. csfair_hf is the transformers glue,
    # csfair_cli the command-line tools (beside the library, as fairseq_cli/ beside fairseq/).
    packages=find_packages(include=["csfair", "csfair.*", "csfair_cli", "csfair_hf", "csfair_hf.*", "user_dir", "user_dir.*"]),
    # the data sources of csfair-data (URLs, layout, pinned checksums), the pairs table and the declared evaluation tasks
    package_data={"csfair_cli": ["data_sources.toml", "pairs.toml", "staged_sources.tsv"], "csfair.evaluation": ["tasks.toml"]},
    python_requires=">=3.11,<3.13",
    install_requires=[],
    entry_points={
        "console_scripts": [
            "csfair-data = csfair_cli.data:main",
            "csfair-lexicon = csfair_cli.lexicon:main",
            "csfair-prep = csfair_cli.prep:main",
        ]
    },
)
