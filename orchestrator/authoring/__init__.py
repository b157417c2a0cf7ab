"""Writing DAGs: ``@dag``/``@task`` in Python, YAML files, and discovery of a DAG folder."""

from orchestrator.authoring.python import Dag, Output, dag, task

__all__ = ["Dag", "Output", "dag", "task"]
