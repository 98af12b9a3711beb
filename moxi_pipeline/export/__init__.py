"""The export phase: a trained adapter in, a model anyone can run out.

Takes a PEFT adapter folder and its base model; gives a merged model (safetensors + tokenizer +
generation config + a Hugging Face model card, `merge.merge_adapter`) and that model as GGUF files for
llama.cpp, Ollama and LM Studio (f16, q8_0, q4_0; `gguf.export_gguf`). Each step checks its output
against its input on a fixed README text and returns the figures.
"""
