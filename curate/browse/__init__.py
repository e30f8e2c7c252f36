"""Browse a manifest in the FiftyOne App and bring reviewers' decisions back.

::

    from curate.browse.db import import_fiftyone          # checks mongod first, one-line errors
    from curate.browse.context import find_context
    from curate.browse.dataset import build_dataset
    from curate.browse.review import pull_review, write_review, read_review, apply_review

    fo = import_fiftyone()                                # FiftyOne imported only here
    rows = load_manifest("kl-balanced")
    dataset = build_dataset(rows, context=find_context(rows), media_dir="~/.curate/fiftyone/media")
    write_review(pull_review(dataset), "review.csv")

Installing FiftyOne with a working database: ``make browse-deps``.
"""
