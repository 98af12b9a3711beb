"""Models: import the base model once as safetensors (`base.py`), and resolve and load the model to write
with (`writer.py`: an adapter, 'latest', s3://, or the base model), for `moxi generate`, `moxi evaluate`
and `eval_report` alike."""
