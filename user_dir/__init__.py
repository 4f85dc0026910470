"""csfair's fairseq plugin (``--user-dir user_dir``).

Importing it registers csfair's components with fairseq's registries and changes nothing else in the
process: no ``sys.path`` entry, no environment variable, no patched function (a test checks each).
fairseq auto-imports only ``tasks/`` and ``models/`` of a user dir; everything that registers
something is imported here so that criterions, the optimizer and data wrappers are always available.
(``csfair`` itself is found as an installed package, or next to this directory: fairseq puts the user
dir's parent on ``sys.path`` when it imports it.)

The one exception is fairseq's own command-line tools (``fairseq-train``, ``fairseq-hydra-train``,
... ``python -m fairseq_cli.X``): in those processes the last line applies csfair's command-line
behaviour (``--bf16`` as bf16 autocast, safe checkpoint loading and precise errors when resuming,
full-disk errors, one-line user errors); :mod:`user_dir.command_hooks` says what and why there.
"""
from . import criterions, data, models, optim, tasks  # noqa: F401
from .command_hooks import install_in_fairseq_command

install_in_fairseq_command()
