"""Writing a README: a repository in, grounded Markdown out.

`facts/` reads what is true (name, install, commands, license) from the tree and key files; `outline.py`
picks the sections the facts support; `prompts.py` is the one prompt format (training uses it too);
`compose.py` writes the sections with a model; `decoding.py` is batched generation and `cleaning.py` the
clean-up of what a small model writes; `evidence.py` is what a README may cite and the checks against it;
`grounding.py` is the last word, removing any path, URL or command the repository does not support; `markdown.py` is the one CommonMark parser; `sections.py` names a heading's kind.
"""
