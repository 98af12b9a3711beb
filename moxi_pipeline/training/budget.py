"""A wall-clock budget for training: `max_train_minutes` in the profile.

A slow machine (the demo ran ~21 s a step on an Intel Xeon against ~8.4 s on AMD) must still finish on time,
and say so. Past the budget, training stops at the next optimizer-step boundary, like HF's own
`should_training_stop`: the step in flight completes, `train_adapter` then evaluates and saves the adapter as
usual, and the result records the steps done against the steps planned with `stopped_by_budget`.

The clock starts when `Trainer.train` begins (after the model loads), and a resumed run gets a fresh budget:
it measures this session's training, not the run's.
"""

from __future__ import annotations

import time


def budget_callback(max_train_minutes: float):
    """A TrainerCallback that stops training at the first step boundary past `max_train_minutes`."""
    from transformers import TrainerCallback

    class TrainBudgetCallback(TrainerCallback):
        def __init__(self) -> None:
            self.max_train_s = max_train_minutes * 60
            self.started = time.monotonic()
            self.stopped_by_budget = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):
            if time.monotonic() - self.started < self.max_train_s or state.global_step >= state.max_steps:
                return control  # within budget, or the last planned step: a normal finish
            self.stopped_by_budget = True
            control.should_training_stop = True
            # with checkpoints on, keep this step too: a killed eval/save that follows resumes from here
            control.should_save = args.save_strategy != "no"
            return control

    return TrainBudgetCallback()
