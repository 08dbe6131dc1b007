"""QA review: the records of a batch ordered by what most needs a person, a page to listen,
see why and correct, and corrections that count (exported for ``evaluate``, enrolled into
the sample library, added to the training recordings). ``discover`` groups the recordings
no enrolled sample explains by how alike they sound.

``store.ReviewStore`` holds the queue and the verdicts; ``app.review_router`` serves the
page and its API; ``cli`` has the commands. Nothing is imported here: the CLI starts fast."""
