"""csfair: code-switched masked-LM pretraining and zero-shot cross-lingual evaluation on fairseq.

Dependencies are installed by scripts/setup.sh (torch must be the CPU wheel and fairseq-fixed
needs a no-deps build), so install_requires is deliberately empty: `pip install -e .` must never
pull another torch.
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
    # any directory; fairseq's --user-dir user_dir imports the same files. csfair_hf is the transformers glue.
    packages=find_packages(include=["csfair", "csfair.*", "csfair_hf", "csfair_hf.*", "user_dir", "user_dir.*"]),
    python_requires=">=3.11,<3.12",
    install_requires=[],
    entry_points={
        "console_scripts": [
            "csfair-lexicon = csfair.cli.lexicon:main",
            "csfair-prep = csfair.cli.prep:main",
        ]
    },
)
