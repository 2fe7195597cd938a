# Runs the resolvers of a feature repository file in CPython, row by row,
# for the differential tests of features/pysym: reads {"file", "calls":
# [{"fn", "rows": [{param: value}]}]} on stdin (floats as repr strings
# tagged {"f": "..."}), writes per call and row {"v": value} or {"exc":
# "ZeroDivisionError"}. The chalk module is stubbed: fletch's repositories
# are plain Python once their decorators are identities.
import json
import math
import sys
import types


def stub_chalk():
    chalk = types.ModuleType("chalk")
    feats = types.ModuleType("chalk.features")
    funcs = types.ModuleType("chalk.functions")

    def identity(*args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda f: f

    class Anything:
        def __getattr__(self, name):
            return Anything()

        def __getitem__(self, key):
            return Anything()

        def __call__(self, *a, **k):
            return Anything()

        def _op(self, *a):
            return Anything()

        __gt__ = __lt__ = __ge__ = __le__ = __eq__ = __ne__ = _op
        __add__ = __sub__ = __mul__ = __truediv__ = __and__ = __or__ = _op

    for m in (chalk, feats):
        m.features = identity
        m.online = identity
        m.offline = identity
        m.feature = lambda *a, **k: None
        m.windowed = lambda *a, **k: None
        m._ = Anything()
        m.DataFrame = Anything()
        m.Features = Anything()
        m.Windowed = Anything()
        m.FeatureTime = Anything()
        m.Primary = Anything()
    chalk.features = feats
    chalk.functions = funcs
    sys.modules["chalk"] = chalk
    sys.modules["chalk.features"] = feats
    sys.modules["chalk.functions"] = funcs


def decode(v):
    if isinstance(v, dict):
        return float(v["f"])
    return v


def encode(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return {"i": str(v)}
    if isinstance(v, float):
        return {"f": repr(v)}
    if isinstance(v, tuple):
        return [encode(x) for x in v]
    return {"other": repr(v)}


def main():
    stub_chalk()
    req = json.load(sys.stdin)
    ns = {"__name__": "repo"}
    with open(req["file"]) as f:
        exec(compile(f.read(), req["file"], "exec"), ns)
    out = []
    for call in req["calls"]:
        fn = ns[call["fn"]]
        res = []
        for row in call["rows"]:
            args = {k: decode(v) for k, v in row.items()}
            try:
                res.append({"v": encode(fn(**args))})
            except Exception as e:  # every exception is a row's error
                res.append({"exc": type(e).__name__})
        out.append(res)
    json.dump(out, sys.stdout)


main()
