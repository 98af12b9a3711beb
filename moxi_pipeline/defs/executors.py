"""The run executor, from MOXI_EXECUTOR: Dagster's default, or one Kubernetes pod per step."""

import dagster as dg


def run_executor(name: str) -> dg.ExecutorDefinition | None:
    """None keeps Dagster's default (multiprocess, or in-process for `dg.materialize`).

    k8s_job: the K8sRunLauncher starts the run in a pod and each step (asset) gets a pod of its own, so
    lora_adapter alone asks for a GPU (its `dagster-k8s/config` op tag; see defs.training.GPU_TAGS).
    """
    if name == "k8s_job":
        from dagster_k8s import (
            k8s_job_executor,  # the deploy extra; only a Kubernetes deployment needs it
        )

        return k8s_job_executor
    return None
