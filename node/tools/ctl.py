"""`gossip-ctl`: a command-line client of a running node, in the manner of `serf members`.

    gossip-ctl [--node URL] [--json] members | get KEY | set KEY VALUE | delete KEY
                                    | watch [PREFIX] | health

The node is `--node`, else $GOSSIP_NODE, else http://127.0.0.1:8001; the api token, when
the node has one, comes from $GOSSIP_API_TOKEN (never a flag: flags show in `ps`).

Exit status: 0 done; 1 the node answered with an error (its message on stderr), is not
healthy, or cut the watch stream; 2 bad arguments; 3 the node could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import httpx

DEFAULT_NODE = "http://127.0.0.1:8001"
REFUSED, USAGE, UNREACHABLE = 1, 2, 3


class Failure(Exception):
    """A command that did not succeed: the message for stderr and the exit status."""

    def __init__(self, message: str, status: int = REFUSED) -> None:
        super().__init__(message)
        self.status = status


def error_text(reply: httpx.Response) -> str:
    """The node's own words for an error answer: `detail` (FastAPI's errors), the health
    problems, or the body as it came."""
    try:
        body = reply.json()
    except ValueError:
        return reply.text.strip()[:500] or reply.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):  # request validation: where, and what
        return "; ".join(f"{'.'.join(map(str, e.get('loc', ())[1:]))}: {e.get('msg')}" for e in detail)
    if isinstance(body, dict) and isinstance(body.get("problems"), list):  # /health
        return "; ".join(f"{p.get('problem')}: {p.get('detail')}" for p in body["problems"])
    return json.dumps(body)


def answer(reply: httpx.Response) -> Any:
    """The JSON of a successful answer; Failure with the node's message otherwise."""
    if reply.is_success:
        return reply.json()
    raise Failure(f"{reply.status_code} from {reply.request.url.copy_with(query=None)}: {error_text(reply)}")


def parse_value(text: str, as_string: bool) -> Any:
    """VALUE as JSON if it parses as JSON (`42`, `true`, `{"a": 1}`, `"quoted"`), else the text itself."""
    if as_string:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def when(wall_ms: int | None) -> str:
    if wall_ms is None:
        return "never"
    return datetime.fromtimestamp(wall_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def describe(entry: dict[str, Any]) -> str:
    """An entry for a person: `key = value` and who wrote it, when."""
    wall, counter = entry["timestamp"]
    head = f"{entry['key']} " + ("deleted" if entry.get("deleted") else f"= {json.dumps(entry['value'])}")
    expiry = f", expires {when(entry['expires_at'])}" if entry.get("expires_at") else ""
    verb = "deleted" if entry.get("deleted") else "written"
    return f"{head}\n  {verb} by {entry['node']} at {when(wall)} (counter {counter}){expiry}"


def change_line(entry: dict[str, Any]) -> str:
    """A change for a person, on one line: when and where it was written, and what."""
    what = "deleted" if entry.get("deleted") else f"= {json.dumps(entry['value'])}"
    return f"{when(entry['timestamp'][0])}  {entry['node']}  {entry['key']} {what}"


def table(rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned to their widest cell, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(event, data) for each Server-Sent Event in a stream's lines; comments skipped."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


# -- the commands: each takes the client and the arguments, prints, returns the exit status


def members(client: httpx.Client, args: argparse.Namespace, out: TextIO) -> int:
    listed = answer(client.get("/members"))
    if args.json:
        print(json.dumps(listed), file=out)
        return 0
    rows = [("ID", "ADDRESS", "STATUS", "PHI", "LAST HEARD", "")]
    for m in listed["members"]:
        heard = f"{m.get('last_heard_ms_ago', 0) / 1000:.1f} s ago"
        rows.append((str(m["id"]), str(m["address"]), str(m["status"]), f"{m.get('phi', 0):.2f}", heard,
                     "(this node)" if m.get("self") else ""))
    print(table(rows), file=out)
    return 0


def show_entry(entry: dict[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    print(json.dumps(entry) if args.json else describe(entry), file=out)
    return 0


def get(client: httpx.Client, args: argparse.Namespace, out: TextIO) -> int:
    return show_entry(answer(client.get("/get", params={"key": args.key})), args, out)


def set_(client: httpx.Client, args: argparse.Namespace, out: TextIO) -> int:
    body: dict[str, Any] = {"key": args.key, "value": parse_value(args.value, args.string)}
    if args.ttl is not None:
        body["ttl"] = args.ttl
    return show_entry(answer(client.post("/set", json=body)), args, out)


def delete(client: httpx.Client, args: argparse.Namespace, out: TextIO) -> int:
    return show_entry(answer(client.post("/delete", json={"key": args.key})), args, out)


def health(client: httpx.Client, args: argparse.Namespace, out: TextIO) -> int:
    reply = client.get("/health")
    body = reply.json() if reply.status_code == 503 else answer(reply)  # 503: not in the cluster, and why
    if args.json:
        print(json.dumps(body), file=out)
    else:
        print(f"{body.get('node')}: {body.get('status')}", file=out)
        for problem in body.get("problems", []) + body.get("warnings", []):
            print(f"  {problem.get('problem')}: {problem.get('detail')}", file=out)
    if not reply.is_success:
        raise Failure(f"{reply.status_code} from {reply.request.url}: {error_text(reply)}")
    return 0


def watch(client: httpx.Client, args: argparse.Namespace, out: TextIO) -> int:
    import httpx

    endless = httpx.Timeout(args.timeout, read=None)  # a quiet stream is no failure
    with client.stream("GET", "/watch", params={"prefix": args.prefix}, timeout=endless) as reply:
        if not reply.is_success:
            reply.read()
            answer(reply)
        for event, data in sse_events(reply.iter_lines()):
            if event == "dropped":
                raise Failure(f"the node cut the watch: {json.loads(data).get('reason')}")
            if event != "change":
                continue
            print(data if args.json else change_line(json.loads(data)), file=out, flush=True)
    raise Failure("the watch stream ended (the node stopped?)", UNREACHABLE)


COMMANDS: dict[str, Callable[[httpx.Client, argparse.Namespace, TextIO], int]] = {
    "members": members, "get": get, "set": set_, "delete": delete, "watch": watch, "health": health,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gossip-ctl", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--node", default=os.environ.get("GOSSIP_NODE", DEFAULT_NODE),
                   help="the node's URL (default: $GOSSIP_NODE or %(default)s)")
    p.add_argument("--json", action="store_true", help="print the node's JSON answers, one per line")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer (default 5)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("members", help="the members as this node sees them: status, phi, last heard")
    sub.add_parser("get", help="a key's value and who wrote it").add_argument("key")
    s = sub.add_parser("set", help="write a value: VALUE is JSON if it parses, else a string",
                       description="Write KEY. VALUE is parsed as JSON if it parses (42, true, null, "
                       '[1, 2], {"a": 1}, "quoted"), else taken as a string (blue); --string always '
                       "takes it as a string.")
    s.add_argument("key")
    s.add_argument("value")
    s.add_argument("--string", action="store_true", help="take VALUE as a string even if it parses as JSON")
    s.add_argument("--ttl", type=float, help="seconds until the value expires")
    sub.add_parser("delete", help="delete a key on every node").add_argument("key")
    w = sub.add_parser("watch", help="print each change as the node applies it, until Ctrl-C")
    w.add_argument("prefix", nargs="?", default="", help="only keys starting with this")
    sub.add_parser("health", help="whether the node is in the cluster, and if not why (exit 1)")
    return p


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, transport: httpx.BaseTransport | None = None
) -> int:
    args = parser().parse_args(argv)  # bad arguments: exit status 2, from argparse
    import httpx  # (only now: --help and a mistyped command answer without loading it)

    node = args.node if "://" in args.node else f"http://{args.node}"
    token = os.environ.get("GOSSIP_API_TOKEN")
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(
            base_url=node, headers=headers, timeout=args.timeout, transport=transport
        ) as client:
            return COMMANDS[args.command](client, args, out or sys.stdout)
    except Failure as exc:
        print(f"gossip-ctl: {exc}", file=sys.stderr)
        return exc.status
    except httpx.TransportError as exc:
        print(f"gossip-ctl: cannot reach {node}: {exc or type(exc).__name__}", file=sys.stderr)
        return UNREACHABLE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
