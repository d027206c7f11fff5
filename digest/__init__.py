"""The weekly email: ``tastebud digest``.

For every chosen user the digest asks the public gRPC API (``tastebud.v1``, nothing else) for
the user's profile (``GetUser``: no email to a user who unsubscribed) and for their picks
(``Recommend`` with diversity, leaving out what the homepage showed them in the last 7 days and
what they have seen), renders one multipart/alternative message (plain text + HTML, Jinja2
templates in ``templates/``), delivers it (``.eml`` files or SMTP) and records what it showed as
``impression`` events, so that the homepage does not repeat the email either.

``tokens`` holds the unsubscribe-link signature, shared with whatever serves the link.
"""
