"""The dataset phase: README chunks in, SFT samples out.

Takes `RepoRecord`s (collect/), gives `ReadmeChunk`s (`chunk.py`) and `SftSample`s (`samples.py`): one per
model-written section, with the exact prompt `moxi generate` uses (readme/prompts.py) and the real section,
cleaned and grounded, as the answer. Instructions come from the fixed per-section wording or from an
OpenAI-compatible model (`instructions_openai.py`, its wire format in `instruction_requests.py`);
`assembly.py` dedupes, splits by repository, merges a public dataset and writes the exports and card.
"""
