"""`moxi serve`: a web page (Gradio, the `web` extra) where someone who wants a README gets one.

Takes a repository (a folder on the server, a GitHub URL, or an uploaded .zip unpacked safely), a model
(the template floor, the base model, an adapter run, a merged model) and, in completion mode, the
repository's own README; gives the facts, the README rendered and raw, what grounding removed, a file to
download and the diff against the original. Gradio is imported only inside `app.build_app`.
"""
