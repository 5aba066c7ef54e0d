"""One pipeline per kind of content: :mod:`image` (PNG, PNM), :mod:`audio` (WAV), :mod:`text`
and :mod:`bytes` (anything else), over what they share (:mod:`common`). :mod:`dulzip.api`
sniffs an input, hands it to the first pipeline that takes it, and dispatches a file to the
pipeline of its header's kind."""
