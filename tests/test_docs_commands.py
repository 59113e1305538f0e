"""Every command README.md and docs/ show is one the suite accepts as written.

Each ``glioma STEP ...``, ``python -m entrypoints STEP ...`` (``torchrun ... -m`` too) and
``mlflow run ...`` in a fenced block or an inline code span is taken from the Markdown, turned
into the step's own arguments (``mlflow run`` through MLflow's own rendering of MLproject's
command) and given to the step's real parser and config: unknown flags, bad values and a
non-phantom site without its data fail here. Nothing runs and nothing is trained.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
from mlflow.projects import _project_spec

from glioma.cli import TOOLS, build_parser, chosen_profile, predict_parser
from glioma.config import CrossEvalConfig, MainConfig, build_config
from glioma.config.prepare import check_phantom_site
from glioma.config.steps import configs
from glioma.errors import GliomaError

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^ *```[a-z]*\n(.*?)^ *```", re.S | re.M)
SPAN = re.compile(r"`([^`]+)`")
SHELL_OPERATORS = {"&&", "||", "|", ";", "&"}
# mlflow run's own options that take a value (the rest of its flags take none)
MLFLOW_RUN_VALUED = {"--env-manager", "--experiment-name", "--experiment-id", "--run-name"}
MLFLOW_RUN_VALUED |= {"-b", "--backend", "-c", "--backend-config", "-v", "--version"}


def pieces(text: str) -> list[str]:
    """Shell lines of the fenced blocks (continuations joined) and the inline code spans."""
    found = []
    for block in FENCE.findall(text):
        found += block.replace("\\\n", " ").splitlines()
    found += [span.replace("\n", " ") for span in SPAN.findall(FENCE.sub("", text))]
    return found


def simple_commands(piece: str) -> list[list[str]]:
    try:
        tokens = shlex.split(piece, comments=True)
    except ValueError:  # prose in backticks, not a command
        return []
    commands, current = [], []
    for token in tokens:
        if token in SHELL_OPERATORS:
            commands.append(current)
            current = []
        else:
            current.append(token)
    return [c for c in [*commands, current] if c]


def mlflow_run_args(tokens: list[str], repo: Path = REPO) -> tuple[str, list[str]] | None:
    """(step, its arguments) of ``mlflow run URI [options]``, rendered as MLflow renders it;
    None for a mention of an option (``mlflow run --experiment-name`` in prose)."""
    entry, params = "main", {}
    pairs = {"-e", "--entry-point", "-P", *MLFLOW_RUN_VALUED}
    rest = iter(tokens)
    for token in rest:
        value = next(rest, None) if token in pairs else ""
        if value is None:
            return None
        if token in ("-e", "--entry-point"):
            entry = value
        elif token == "-P":
            key, _, params[key] = value.partition("=")[0], None, value.partition("=")[2]
    command = _project_spec.load_project(str(repo)).get_entry_point(entry)
    return step_args(shlex.split(command.compute_command(params, str(repo))), repo)


def step_args(tokens: list[str], repo: Path = REPO) -> tuple[str, list[str]] | None:
    """The step a command runs and the arguments the step's parser gets; None for other
    commands (``glioma`` in prose, ``ray start``, ``git clone``)."""
    for i, token in enumerate(tokens):
        if token == "glioma" and i + 1 < len(tokens) and tokens[i + 1] in configs():
            return tokens[i + 1], tokens[i + 2 :]
        if token == "glioma" and tokens[i + 1 : i + 2] and tokens[i + 1] in TOOLS:
            return (tokens[i + 1], tokens[i + 2 :]) if tokens[i + 2 :] else None  # else prose
        module = tokens[i + 1] if token == "-m" and i + 1 < len(tokens) else ""
        step = tokens[i + 2] if module == "entrypoints" and i + 2 < len(tokens) else ""
        if re.fullmatch(r"[a-z_]+", step):  # MLproject's -m entrypoints <step>, not a placeholder
            return step, tokens[i + 3 :]
        if token == "mlflow" and tokens[i + 1 : i + 2] == ["run"]:
            return mlflow_run_args(tokens[i + 2 :], repo)
    return None


def documented_commands(
    docs: list[Path] = DOCS, repo: Path = REPO
) -> list[tuple[str, str, list[str]]]:
    """(where, step, its arguments) of every step command the Markdown files show."""
    found = []
    for path in docs:
        for piece in pieces(path.read_text()):
            for tokens in simple_commands(piece):
                parsed = step_args(tokens, repo)
                if parsed is not None:
                    found.append((f"{path.name}: {shlex.join(tokens)}", *parsed))
    return found


def data_pairs(config) -> list[tuple[str, str]]:
    """(site, data) pairs a step would prepare from, when it declares prepare itself."""
    if isinstance(config, MainConfig):
        return [(config.site_a, config.data_a), (config.site_b, config.data_b)]
    if isinstance(config, CrossEvalConfig):
        return [(config.source_site, config.source_data), (config.target_site, config.target_data)]
    given_upstream = any(getattr(config, f, "") for f in ("prepare_run", "model", "sample_run"))
    return [] if given_upstream else [(config.site, config.data)]


def parser_problem(parser, args: list[str]) -> str | None:
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(args)
    except SystemExit as exit:
        return None if exit.code == 0 else errors.getvalue().strip().splitlines()[-1]
    return None


def problem_of(step: str, args: list[str]) -> str | None:
    """Why the step refuses ``args`` (its parser's or config's one line), or None."""
    if step in TOOLS:
        return parser_problem(predict_parser(), args) if step == "predict" else "no parser"
    if step not in configs():
        return f"unknown step {step!r}"
    cls = configs()[step]
    parser = build_parser(cls, f"glioma {step}", chosen_profile(args))
    if {"-h", "--help"} & set(args):
        return None
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            parsed = parser.parse_args(args)
    except SystemExit:
        return errors.getvalue().strip().splitlines()[-1]
    try:
        config = build_config(cls, vars(parsed))
        for site, data in data_pairs(config):
            check_phantom_site(site, data)
    except GliomaError as exc:
        return str(exc)
    return None


COMMANDS = documented_commands()


def test_the_docs_show_the_commands_of_every_step():
    assert len(COMMANDS) >= 30, [c[0] for c in COMMANDS]
    assert {step for _, step, _ in COMMANDS} >= {*configs(), *TOOLS}


@pytest.mark.parametrize(("where", "step", "args"), COMMANDS, ids=[c[0][:90] for c in COMMANDS])
def test_a_documented_command_is_accepted_as_written(where, step, args):
    assert problem_of(step, args) is None, f"{where}: {problem_of(step, args)}"


@pytest.mark.parametrize(
    ("command", "phrase"),
    [
        ("glioma train_ddpm --site brats --grade HGG", "give its BraTS root or manifest CSV"),
        ("glioma main --prepare_run abc", "unrecognized arguments: --prepare_run abc"),
        ("mlflow run . -e sample -P grade=XGG", "grade: expected one of"),
        ("glioma main --site_a brats --data_b /d/b.csv", "site: the phantom has sites"),
    ],
)
def test_the_check_refuses_what_the_suite_refuses(command, phrase):
    step, args = step_args(shlex.split(command))
    assert phrase in (problem_of(step, args) or "")
