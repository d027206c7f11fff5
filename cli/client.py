"""Client subcommands: call a running server and print what it answered.

Also the small library the demo, tests and load scripts use to talk to a server: every call
carries a deadline (``timeout``), and gRPC errors become one readable line.
"""

from __future__ import annotations

import argparse
import json
import sys

import grpc
from google.protobuf import json_format

from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc

DEFAULT_TIMEOUT = 5.0


def parse_clause(text: str, flag: str) -> pb.AttributeValues:
    """``genres=Comedy,Drama`` -> AttributeValues; argparse-style error on a bad spec."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise SystemExit(f"tastebud: {flag} expects ATTR=V1,V2, got {text!r}")
    return pb.AttributeValues(attribute=name.strip(), values=[v.strip() for v in values.split(",") if v.strip()])


def filter_from_args(args: argparse.Namespace) -> pb.Filter | None:
    if not (args.include or args.exclude or args.year_min is not None or args.year_max is not None):
        return None
    f = pb.Filter(include=[parse_clause(c, "--include") for c in args.include],
                  exclude=[parse_clause(c, "--exclude") for c in args.exclude])
    if args.year_min is not None:
        f.year_min = args.year_min
    if args.year_max is not None:
        f.year_max = args.year_max
    return f


def ids(text: str) -> list[str]:
    return [i.strip() for i in text.split(",") if i.strip()]


def format_items(response: pb.RecommendResponse) -> str:
    lines = [f"{'#':>3}  {'item':>8}  {'score':>6}  title  -- reason"]
    for rank, item in enumerate(response.items, 1):
        lines.append(f"{rank:>3}  {item.item_id:>8}  {item.score:6.3f}  {item.title}  -- {item.reason}")
    footer = f"index {response.index_version}"
    if response.degraded:
        footer += f"  DEGRADED: {'; '.join(response.notes)}"
    lines.append(footer)
    return "\n".join(lines)


def _ask(args: argparse.Namespace, method: str, request: object, stub_class: type = pb_grpc.RecommenderStub):
    """The response of one call to ``--target`` with ``--timeout``; None (after saying why) on an error."""
    with grpc.insecure_channel(args.target) as channel:
        try:
            return getattr(stub_class(channel), method)(request, timeout=args.timeout)
        except grpc.RpcError as exc:
            print(f"tastebud: {method} failed: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return None


def _call(args: argparse.Namespace, method: str, request: object, stub_class: type = pb_grpc.RecommenderStub) -> int:
    """Call and print the response (a table, or JSON with --json); exit code 1 on an error."""
    response = _ask(args, method, request, stub_class)
    if response is None:
        return 1
    if args.json:
        print(json.dumps(json_format.MessageToDict(response, preserving_proto_field_name=True), indent=2))
    elif isinstance(response, pb.RecommendResponse):
        print(format_items(response))
    else:
        print(json_format.MessageToJson(response, preserving_proto_field_name=True).strip())
    return 0


def _with_filter(request, args: argparse.Namespace):
    """Set ``request.filter`` from the --include/--exclude/--year-* flags, when any is given."""
    f = filter_from_args(args)
    if f is not None:
        request.filter.CopyFrom(f)
    return request


def run_recommend(args: argparse.Namespace) -> int:
    request = pb.RecommendRequest(user_id=args.user, k=args.k, history=ids(args.history), taste=args.taste,
                                  diversity=args.diversity, include_seen=args.include_seen,
                                  restrict_to=ids(args.restrict_to))
    return _call(args, "Recommend", _with_filter(request, args))


def run_similar(args: argparse.Namespace) -> int:
    return _call(args, "SimilarItems", _with_filter(pb.SimilarItemsRequest(item_id=args.item, k=args.k), args))


def run_search(args: argparse.Namespace) -> int:
    return _call(args, "SearchItems", _with_filter(pb.SearchItemsRequest(text=args.text, k=args.k), args))


def run_record(args: argparse.Namespace) -> int:
    request = pb.RecordInteractionsRequest(interactions=[
        pb.Interaction(user_id=args.user, item_id=args.item, event=args.event, weight=args.weight)])
    return _call(args, "RecordInteractions", request)


def run_info(args: argparse.Namespace) -> int:
    return _call(args, "GetIndexInfo", pb.GetIndexInfoRequest())


def run_forget(args: argparse.Namespace) -> int:
    from tastebud.v1 import admin_pb2, admin_pb2_grpc

    code = _call(args, "ForgetUser", admin_pb2.ForgetUserRequest(user_id=args.user), admin_pb2_grpc.AdminStub)
    if code == 0 and args.outbox is not None:
        from tastebud.digest.deliver import forget_in_outbox

        removed = forget_in_outbox(args.outbox, args.user)
        print(f"outbox {args.outbox}: removed {len(removed)} message(s) to {args.user}")
    return code


def run_export(args: argparse.Namespace) -> int:
    from tastebud.v1 import admin_pb2, admin_pb2_grpc

    answer = _ask(args, "ExportUser", admin_pb2.ExportUserRequest(user_id=args.user), admin_pb2_grpc.AdminStub)
    if answer is None:
        return 1
    print(answer.json)
    return 0
