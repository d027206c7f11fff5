"""``tastebud digest``: the weekly email, to ``.eml`` files or through SMTP."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from tastebud.digest.compose import (DEFAULT_ADDRESS_TEMPLATE, DEFAULT_SENDER, DEFAULT_SITE_URL,
                                     DEFAULT_UNSUBSCRIBE_MAILTO, DEFAULT_UNSUBSCRIBE_URL, Composer, DigestStyle)
from tastebud.digest.deliver import EmlOutbox, SmtpSender, parse_hostport
from tastebud.digest.run import WEEK_SECONDS, DigestOptions, parse_users, send_digests
from tastebud.digest.tokens import SECRET_ENV
from tastebud.errors import TastebudError

DESCRIPTION = """\
Send every chosen user one email (plain text + HTML) with their personalised picks and the
reasons, through the tastebud gRPC API only: GetUser (users who unsubscribed are skipped),
Recommend with diversity and exclude_shown_within_seconds (what the homepage showed them in
the last --exclude-shown-days days and what they have seen are left out), then
RecordInteractions with event "impression" for what the message showed (after it was
delivered). One user's failure is reported in the summary and does not stop the others.
Exit code 0 when every user was sent or skipped, 1 when any failed.

The catalog holds no email addresses: each recipient is made from --address-template,
'{user}' replaced by the user id. The unsubscribe link (in the body and in the
List-Unsubscribe header, with a mailto and List-Unsubscribe-Post: List-Unsubscribe=One-Click)
is --unsubscribe-url with ?user=ID&token=T, T an HMAC-SHA256 of the id under --secret
(or $TASTEBUD_DIGEST_SECRET)."""


def add_digest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("digest", help="the weekly email: one message per user, to .eml files or SMTP",
                       description=DESCRIPTION, formatter_class=_Formatter)
    p.add_argument("--target", default="localhost:50051", help="host:port of a tastebud server")
    p.add_argument("--users", default="all", help="'all' (every user, paged from ListUsers) or comma-separated ids")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, metavar="DIR", help="write one <user>.eml per user into DIR")
    where.add_argument("--smtp", metavar="HOST:PORT", help="send through this SMTP server (plain SMTP)")
    p.add_argument("--k", type=int, default=10, help="picks per email (1..1000)")
    p.add_argument("--diversity", type=float, default=0.3, help="0..1, MMR trade-off of the picks")
    p.add_argument("--exclude-shown-days", type=float, default=WEEK_SECONDS / 86400,
                   help="leave out items shown to the user (impressions) within this many days; 0: none")
    p.add_argument("--no-record", dest="record", action="store_false",
                   help="do not record impressions (a preview run; the next run will show the same)")
    p.add_argument("--address-template", default=DEFAULT_ADDRESS_TEMPLATE,
                   help="recipient address; {user} is replaced by the user id (the catalog has no addresses)")
    p.add_argument("--from", dest="sender", default=DEFAULT_SENDER, help="From: header")
    p.add_argument("--label", default="watched", help="what users do with items, in the wording: "
                                                     "'watched' (movies) or 'listened' (music)")
    p.add_argument("--unsubscribe-url", default=DEFAULT_UNSUBSCRIBE_URL,
                   help="page that unsubscribes; ?user=ID&token=T is added")
    p.add_argument("--unsubscribe-mailto", default=DEFAULT_UNSUBSCRIBE_MAILTO,
                   help="address of the List-Unsubscribe mailto")
    p.add_argument("--site-url", default=DEFAULT_SITE_URL, help="link to the homepage in the message")
    p.add_argument("--secret", default=None,
                   help=f"HMAC key of the unsubscribe tokens (default: ${SECRET_ENV}; one of them is required)")
    p.add_argument("--templates", type=Path, metavar="DIR",
                   help="folder with digest.txt.j2 / digest.html.j2 / subject.txt.j2 overriding the bundled ones")
    p.add_argument("--concurrency", type=int, default=8, help="users in flight at once")
    p.add_argument("--timeout", type=float, default=5.0, help="deadline of every RPC, seconds")
    p.add_argument("--smtp-timeout", type=float, default=30.0, help="SMTP socket timeout, seconds")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run_digest_command)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def run_digest_command(args: argparse.Namespace) -> int:
    secret = args.secret if args.secret is not None else os.environ.get(SECRET_ENV, "")
    style = DigestStyle(secret=secret, sender=args.sender, address_template=args.address_template,
                        unsubscribe_url=args.unsubscribe_url, unsubscribe_mailto=args.unsubscribe_mailto,
                        site_url=args.site_url, label=args.label, templates=args.templates)
    options = DigestOptions(target=args.target, k=args.k, diversity=args.diversity,
                            exclude_shown_within_seconds=args.exclude_shown_days * 86400.0, timeout=args.timeout,
                            concurrency=args.concurrency, record_impressions=args.record,
                            progress=not args.no_progress)
    options.validate()
    composer = Composer(style)
    users = parse_users(args.users)
    if args.out is not None:
        sink = EmlOutbox(args.out)
    else:
        host, port = parse_hostport(args.smtp)
        sink = SmtpSender(host, port, timeout=args.smtp_timeout, pool_size=args.concurrency)
    summary = asyncio.run(send_digests(options, users, composer, sink))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary.report())
    return 0 if summary.ok else 1


__all__ = ["add_digest", "run_digest_command", "TastebudError"]
