"""The training phase: SFT samples and a base model in, a LoRA adapter folder out.

`train.py` is the entry point (`train_adapter`, and `python -m moxi_pipeline.training.train`), thin over
TRL's SFTTrainer + PEFT; `config.py` validates a YAML profile from `configs/`; `backends.py` picks plain
PEFT, QLoRA or Unsloth; `tokenize.py` is the one prompt-completion tokenization (training and eval loss);
`checkpoints.py` publishes checkpoints to S3 and resumes from them; `adapter_card.py` writes the model
card, config and loss plot beside the adapter.
"""
