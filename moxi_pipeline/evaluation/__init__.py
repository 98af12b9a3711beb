"""Evaluation: a model and held-out repositories in, scores out.

`evaluate.py` writes READMEs with the template, the base model and the fine-tuned model and scores them
(`metrics.py`: ROUGE, section coverage, trust metrics), with intervals and paired differences;
`report.py` writes report.md, metrics.json and plots, and compares runs (`moxi compare`).
"""
