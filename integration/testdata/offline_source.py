"""The offline store as a source (issue 13 item 4), through the Python SDK:
run by integration TestOfflineStoreAsSource, which changes the source rows
between the steps and checks the answers written to OUT against the log
(Postgres SQL) and the sources.

    offline_source.py serve NOW IDS OUT     serve IDS (comma-separated) at NOW
    offline_source.py offline SPINE OUT     the spine's training sets:
                                            recompute_features False, True,
                                            and ["account.name"]
    offline_source.py online IDS OUT        IDS' tier as the online store holds it

FLETCH_URL names the server. Answers are JSON: {output: [values]}."""

import json
import os
import sys
from datetime import datetime

import fletch

OUTPUTS = ["account.name", "account.score", "account.label", 'account.spent["1d"]']


def columns(table):
    return {name: table.column(name).to_pylist() for name in table.column_names}


def main():
    client = fletch.FletchClient(os.environ["FLETCH_URL"])
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "serve":
        now, ids, out = args[0], [int(i) for i in args[1].split(",")], args[2]
        answer = columns(client.query_bulk(input={"account.id": ids}, output=OUTPUTS, now=now))
    elif mode == "offline":
        with open(args[0]) as f:
            spine = json.load(f)
        out = args[1]
        inputs = {"account.id": spine["ids"]}
        times = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in spine["times"]]
        answer = {
            "logged": columns(client.offline_query(input=inputs, input_times=times, output=OUTPUTS,
                                                   recompute_features=False)),
            # account.tier is etl_offline_to_online: this query writes it
            # to the online store.
            "recomputed": columns(client.offline_query(input=inputs, input_times=times,
                                                       output=OUTPUTS + ["account.tier"])),
            "name_recomputed": columns(client.offline_query(input=inputs, input_times=times, output=OUTPUTS,
                                                            recompute_features=["account.name"])),
        }
        try:
            client.offline_query(input=inputs, input_times=times, output=["F.lower(_.name)"],
                                 recompute_features=False)
            answer["expression_error"] = None
        except fletch.FletchError as e:
            answer["expression_error"] = str(e)
    elif mode == "online":
        ids, out = [int(i) for i in args[0].split(",")], args[1]
        table = client.query_bulk(input={"account.id": ids}, output=["account.tier"],
                                  staleness={"account.tier": "infinity"}, meta=True)
        answer = columns(table)
    else:
        raise SystemExit(f"unknown mode {mode}")
    with open(out, "w") as f:
        json.dump(answer, f, default=str)


if __name__ == "__main__":
    main()
