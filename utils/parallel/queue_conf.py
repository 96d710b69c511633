"""Kaldi's queue configuration files (conf/slurm.conf, conf/queue.conf), read by launch.py.

A config turns the launcher's generic options (`--gpu 1`, `--mem 8G`, `--num-threads 4`,
`--time 2:00:00`, any `--name value`) into the scheduler's own options, so one cmd.sh line
works with Kaldi's slurm.pl and with utils/parallel/run_slurm.sh. The format, one rule per line:

    command <program and fixed options>   # how to submit (srun ... or sbatch ...)
    option <name>=* <options with $0>     # any value: $0 is replaced by it
    option <name>=<value> [options]       # this exact value (wins over name=*)
    default <name>=<value>                # value used when the option is not given

Option names use '_' for the '-' of the command line (--num-threads -> num_threads);
everything after '#' is a comment.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

# Used when neither --config nor conf/slurm.conf exists. Like Kaldi's built-in default,
# but submitting one `srun` per job (so the launcher writes each log itself) and without
# site-specific partition names: a GPU job asks for GPUs, nothing else.
DEFAULT_SLURM_CONF = """\
command srun --export=ALL --ntasks=1
option time=* --time=$0
option mem=* --mem-per-cpu=$0
option mem=0
option num_threads=* --cpus-per-task=$0
option num_threads=1
default gpu=0
option gpu=0
option gpu=* --gres=gpu:$0
option partition=* --partition=$0
option account=* --account=$0
"""

_COMMAND = re.compile(r"^command\s+(.+)$")
_ANY_VALUE = re.compile(r"^option\s+([^=\s]+)=\*\s+(.+)$")
_ONE_VALUE = re.compile(r"^option\s+([^=\s]+)=(\S+)\s*(.*)$")
_DEFAULT = re.compile(r"^default\s+([^=\s]+)=(\S+)\s*$")


class ConfError(Exception):
    """A config line that cannot be parsed, or an option the config does not describe."""


@dataclass
class QueueConf:
    """A parsed config: the submit command and the per-option translation rules."""

    name: str
    command: list[str] = field(default_factory=list)
    any_value: dict[str, str] = field(default_factory=dict)
    one_value: dict[tuple[str, str], str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)

    def translate(self, options: dict[str, str]) -> list[str]:
        """Scheduler arguments for the given options (defaults added for absent ones).

        Exact `name=value` rules win over `name=*`; an option without a rule is an error,
        as in Kaldi, so a typo never silently drops a resource request.
        """
        merged = {**options, **{k: v for k, v in self.defaults.items() if k not in options}}
        args: list[str] = []
        for name, value in merged.items():
            if (name, value) in self.one_value:
                text = self.one_value[(name, value)]
            elif name in self.any_value:
                text = self.any_value[name].replace("$0", value)
            else:
                raise ConfError(f"option --{name.replace('_', '-')} {value} is not described "
                                f"in {self.name} (or that value is not allowed)")
            args += shlex.split(text)
        return args


def parse_conf(text: str, name: str) -> QueueConf:
    """Parse the config format of the module docstring; `name` is used in messages."""
    conf = QueueConf(name)
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"\s*#.*", "", raw).strip()
        if not line:
            continue
        if match := _COMMAND.match(line):
            conf.command = shlex.split(match.group(1))
        elif match := _ANY_VALUE.match(line):
            conf.any_value[match.group(1)] = match.group(2)
        elif match := _ONE_VALUE.match(line):
            conf.one_value[(match.group(1), match.group(2))] = match.group(3)
        elif match := _DEFAULT.match(line):
            conf.defaults[match.group(1)] = match.group(2)
        else:
            raise ConfError(f"{name}:{lineno}: cannot parse '{raw.strip()}'")
    if not conf.command:
        raise ConfError(f"{name}: no 'command ...' line")
    return conf
