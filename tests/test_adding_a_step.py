"""A step is added in four touches (docs/DESIGN.md, "Adding a step"), shown with a throw-away
step: its module, its row in the step table (with its config, in the config layer), its
MLproject entry and its docs line. Nothing else is edited, and the step then runs as users run
steps: the console's dispatch, a real prepare run upstream, the one get-or-run that reuses it.
"""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from typing import ClassVar

import mlflow
from test_config import check_mlproject, check_step_table
from test_docs_commands import REPO, documented_commands, problem_of

from glioma.cli import main as cli_main
from glioma.config.fields import UPSTREAM, StepConfig, param
from glioma.config.steps import TABLE, Step
from glioma.data.dataset import read_dataset
from glioma.names import DATASET_ARTIFACT, lineage_tag
from glioma.pipeline.inputs import artifact_folder
from glioma.pipeline.steps import spec_of

# Touch 1: the step module (here written to a folder of the test; in the suite,
# glioma/pipeline/steps/count_subjects.py).
STEP_MODULE = '''
"""``count_subjects``: how many subjects of each grade a prepared site holds."""

from dataclasses import dataclass
from typing import Generic

import mlflow

from glioma.pipeline.graph import Node, node
from glioma.pipeline.inputs import load_prepared
from glioma.pipeline.invoke import run_target
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.spec import StepInputs, StepSpec, T
from glioma.pipeline.steps.prepare import upstream_prepare, with_site_of


@dataclass(frozen=True)
class CountInputs(StepInputs, Generic[T]):
    prepare: T


def run(config, inputs: CountInputs[NodeResult]) -> None:
    dataset, _ = load_prepared(inputs.prepare.run_id)
    per_grade = dataset.subjects.drop_duplicates("subject_id")["grade"].value_counts()
    mlflow.log_metrics({f"n_{grade}": int(n) for grade, n in per_grade.items()})


STEP = StepSpec("count_subjects", run, inputs=CountInputs, uses_torch=False)


def count_node(prepare: Node, config) -> Node:
    return node("count_subjects", config, CountInputs(prepare), tags={"site": config.site})


def run_count_subjects(config) -> NodeResult:
    prepare = upstream_prepare(config, config.site)
    target = count_node(prepare, with_site_of(config, prepare))
    return run_target(target, config)
'''


# Touch 2: the step's row in the step table, and its config beside it in the config layer.
@dataclass(frozen=True, kw_only=True)
class CountSubjectsConfig(StepConfig):
    """Count the subjects of each grade in a prepared site."""

    step: ClassVar[str] = "count_subjects"

    site: str = param("phantom-a", "the site")
    data: str = param("phantom", "what prepare reads", role=UPSTREAM)
    prepare_run: str = param("", "a finished prepare run to count", role=UPSTREAM)


ROW = Step(CountSubjectsConfig, module="added_steps.count_subjects")

# Touch 3: its MLproject entry.
MLPROJECT_ENTRY = """
  count_subjects:
    parameters:
      site: {type: string, default: phantom-a}
      data: {type: string, default: phantom}
      prepare_run: {type: string, default: ""}
    command: >-
      python -m entrypoints count_subjects --site {site} --data {data}
      --prepare_run {prepare_run}
"""

# Touch 4: its docs line.
DOCS_LINE = """Count a prepared site's subjects: `glioma count_subjects --site phantom-a`, or

```bash
mlflow run . -e count_subjects --env-manager local -P prepare_run=<id>
```
"""


def test_a_step_is_added_in_four_touches_and_runs(tmp_path, monkeypatch, tiny_prepared, capsys):
    package = tmp_path / "code" / "added_steps"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "count_subjects.py").write_text(textwrap.dedent(STEP_MODULE))
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.setitem(TABLE, "count_subjects", ROW)
    project = tmp_path / "project"
    project.mkdir()
    (project / "MLproject").write_text((REPO / "MLproject").read_text() + MLPROJECT_ENTRY)
    shutil.copy(REPO / "python_env.yaml", project / "python_env.yaml")
    (project / "STEPS.md").write_text(DOCS_LINE)
    try:
        # The checks the real steps pass hold with the added one, and nothing else changed.
        check_step_table()
        check_mlproject(project / "MLproject")
        shown = documented_commands([project / "STEPS.md"], project)
        assert [step for _, step, _ in shown] == ["count_subjects", "count_subjects"]
        problems = [problem_of(step, args.copy()) for _, step, args in shown]
        assert problems == [None, None]

        prepare = tiny_prepared.run_id
        assert cli_main(["count_subjects", "--prepare_run", prepare]) == 0
        runs = mlflow.search_runs(
            filter_string="tags.step = 'count_subjects'", search_all_experiments=True
        )
        assert len(runs) == 1
        folder = artifact_folder(prepare, DATASET_ARTIFACT)
        subjects = read_dataset(folder).subjects.drop_duplicates("subject_id")
        expected = subjects["grade"].value_counts()
        for grade, n in expected.items():
            assert runs[f"metrics.n_{grade}"].iloc[0] == n
        assert runs[f"tags.{lineage_tag('prepare')}"].iloc[0] == prepare
        assert cli_main(["count_subjects", "--prepare_run", prepare]) == 0  # reused, not rerun
        again = mlflow.search_runs(
            filter_string="tags.step = 'count_subjects'", search_all_experiments=True
        )
        assert len(again) == 1
        assert "count_subjects: reusing count_subjects-phantom-a" in capsys.readouterr().out
    finally:
        spec_of.cache_clear()
