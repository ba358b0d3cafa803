"""great-expectations' own INFO chatter stays out of stage logs."""

import logging

from headflow.validation import runner


def test_no_ephemeral_docs_site_line(caplog):
    # great_expectations.data_context.types.base sets its own logger to INFO when first imported, which
    # the package-level ERROR does not override; put it back in that state and build a fresh context
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.INFO)
    runner._context.cache_clear()
    with caplog.at_level(logging.INFO):
        runner._context()
    assert not [r for r in caplog.records if "ephemeral docs site" in r.getMessage()]
