"""The run executor, from MOXI_EXECUTOR: Dagster's default, all steps in one process, or one Kubernetes pod per step."""

import dagster as dg


def run_executor(name: str) -> dg.ExecutorDefinition | None:
    """None keeps Dagster's default (multiprocess, or in-process for `dg.materialize`).

    in_process: every step in the run's own process, one after another. `make demo` uses it: on 2 cores the
    steps run one at a time anyway, and each subprocess would import dagster, torch and transformers again
    (~6 s a step, 16 steps).

    k8s_job: the K8sRunLauncher starts the run in a pod and each step (asset) gets a pod of its own, so
    lora_adapter alone asks for a GPU (its `dagster-k8s/config` op tag; see defs.training.GPU_TAGS).
    """
    if name == "k8s_job":
        from dagster_k8s import (
            k8s_job_executor,  # the deploy extra; only a Kubernetes deployment needs it
        )

        return k8s_job_executor
    if name == "in_process":
        return dg.in_process_executor
    return None
