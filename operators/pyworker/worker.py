# The fletch Python worker: runs a repository's resolver functions for the
# fletch server, which starts it (`python -c <this file> <repository>`) and
# talks to it over two pipes, fd 3 (requests) and fd 4 (answers).
#
# A frame is a 4-byte big-endian length and a JSON header, a 4-byte count
# of Arrow IPC streams, and each stream as an 8-byte length and its bytes.
#   ready  (worker -> server): {"ready": true, "python": ..., "pyarrow": ...}
#   call   (server -> worker): {"file", "function", "outputs"} + the input
#          rows (one column per parameter, in order) + the output schema
#   answer (worker -> server): {} + one batch: the outputs and __error__,
#          or {"error": "..."} when the call as a whole failed.
# The repository's files are imported as Python would import them, with
# `from __future__ import annotations` in effect (feature classes name each
# other before they are defined) and with a stand-in for the `chalk`
# package: fletch needs the functions, not Chalk's runtime.
import __future__
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import struct
import sys
import traceback
import types

ROOT = os.path.realpath(sys.argv[1])


class _Sink:
    """Any name of the chalk package: every attribute, call, index and
    operator gives another sink, so class bodies (`_.a + _.b`,
    `windowed("7d", expression=...)`) evaluate. Called with a function or a
    class alone, it is a decorator and returns it (`@online`, `@features`)."""

    __slots__ = ("_name",)

    def __init__(self, name):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Sink(self._name + "." + name)

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and not kwargs and (isinstance(args[0], type) or callable(args[0]) and not isinstance(args[0], _Sink)):
            return _decorate(args[0])
        return _Sink(self._name + "(...)")

    def __getitem__(self, key):
        return _Sink(self._name + "[...]")

    def __iter__(self):
        return iter(())

    def __mro_entries__(self, bases):
        return (object,)

    def __repr__(self):
        return "<chalk " + self._name + ">"

    def __bool__(self):
        return True

    __hash__ = object.__hash__


def _op(name):
    return lambda self, *args: _Sink("(" + self._name + " " + name + ")")


for _name in ("add radd sub rsub mul rmul truediv rtruediv floordiv rfloordiv mod rmod pow rpow "
              "and rand or ror xor rxor lshift rshift eq ne lt le gt ge neg pos abs invert").split():
    setattr(_Sink, "__" + _name + "__", _op(_name))


# The classes decorated as feature classes: a resolver returning an
# instance of one gives its outputs as attributes.
_FEATURE_CLASSES = set()


def _decorate(obj):
    # A feature class gets a keyword constructor, the way resolvers return
    # several features: `return Transaction(total=..., tax=...)`.
    if not isinstance(obj, type):
        return obj
    try:
        if "__init__" not in obj.__dict__:
            def __init__(self, **kwargs):
                for k, v in kwargs.items():
                    setattr(self, k, v)
            obj.__init__ = __init__
        _FEATURE_CLASSES.add(obj)
    except TypeError:  # a built-in type given to a chalk function: not a feature class
        pass
    return obj


class _ChalkFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Provides `chalk` and every `chalk.*` module as sinks."""

    def find_spec(self, fullname, path, target=None):
        if fullname == "chalk" or fullname.startswith("chalk."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__path__ = []
        name = module.__name__
        module.__getattr__ = lambda attr: _Sink(name + "." + attr) if not attr.startswith("__") else _raise(attr)


def _raise(attr):
    raise AttributeError(attr)


class _RepoLoader(importlib.abc.Loader):
    """Executes a repository file with postponed annotations."""

    def __init__(self, path):
        self.path = path

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        with open(self.path, "rb") as f:
            src = f.read()
        code = compile(src, self.path, "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
        exec(code, module.__dict__)


class _RepoFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return spec
        origin = os.path.realpath(spec.origin)
        if not origin.startswith(ROOT + os.sep):
            return spec
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=_RepoLoader(spec.origin),
            submodule_search_locations=spec.submodule_search_locations)


def _where(tb):
    """The innermost line of the repository in a traceback: its file,
    relative to the repository, and line; ("", 0) when none."""
    at = ("", 0)
    for fr in traceback.extract_tb(tb):
        f = os.path.realpath(fr.filename)
        if f.startswith(ROOT + os.sep):
            at = (os.path.relpath(f, ROOT), fr.lineno)
    return at


def _describe(e, resolver=None):
    """The exception as a row's error. For a resolver's call it ends as
    the compiled resolvers' errors do, `(resolver, line N)` (the line of
    its own file; another file's is named); else `(at file:line)`."""
    msg = type(e).__name__
    if str(e):
        msg += ": " + str(e)
    file, line = _where(e.__traceback__)
    if resolver is not None:
        name, own = resolver
        if not file:
            return "%s (%s)" % (msg, name)
        if file == own:
            return "%s (%s, line %d)" % (msg, name, line)
        return "%s (%s, %s line %d)" % (msg, name, file, line)
    return msg + (" (at %s:%d)" % (file, line) if file else "")


class Protocol:
    def __init__(self, rd, wr):
        self.rd, self.wr = rd, wr

    def _exact(self, n):
        buf = self.rd.read(n)
        if buf is None or len(buf) < n:
            raise EOFError
        return buf

    def read(self):
        (hlen,) = struct.unpack(">I", self._exact(4))
        header = json.loads(self._exact(hlen))
        (count,) = struct.unpack(">I", self._exact(4))
        streams = []
        for _ in range(count):
            (n,) = struct.unpack(">Q", self._exact(8))
            streams.append(self._exact(n))
        return header, streams

    def write(self, header, streams=()):
        h = json.dumps(header).encode()
        parts = [struct.pack(">I", len(h)), h, struct.pack(">I", len(streams))]
        for s in streams:
            parts.append(struct.pack(">Q", len(s)))
            parts.append(s)
        self.wr.write(b"".join(parts))
        self.wr.flush()


def main():
    proto = Protocol(os.fdopen(3, "rb", buffering=1 << 16), os.fdopen(4, "wb", buffering=1 << 16))
    try:
        import pyarrow as pa
    except ImportError as e:
        print("pyarrow is not installed for Python %s (%s): pip install pyarrow" % (sys.version.split()[0], e), file=sys.stderr)
        sys.exit(3)
    sys.path.insert(0, ROOT)
    sys.meta_path.insert(0, _RepoFinder())
    sys.meta_path.insert(0, _ChalkFinder())
    sys.dont_write_bytecode = True
    proto.write({"ready": True, "python": sys.version.split()[0], "pyarrow": pa.__version__})
    functions = {}

    def function(header):
        key = (header["file"], header["function"])
        fn = functions.get(key)
        if fn is None:
            mod = header["file"][:-3].replace("/", ".")
            if mod.endswith(".__init__"):
                mod = mod[: -len(".__init__")]
            try:
                module = importlib.import_module(mod)
            except BaseException as e:
                raise CallError("importing %s: %s" % (header["file"], _describe(e)))
            fn = getattr(module, header["function"], None)
            if not callable(fn):
                raise CallError("%s defines no function %s" % (header["file"], header["function"]))
            functions[key] = fn
        return fn

    while True:
        try:
            header, (inputs, out_schema) = proto.read()
        except EOFError:
            return
        try:
            batch = pa.ipc.open_stream(inputs).read_all()
            schema = pa.ipc.open_stream(out_schema).schema
            answer = call(pa, function(header), header, batch, schema)
        except CallError as e:
            proto.write({"error": str(e)})
            continue
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, answer.schema) as w:
            w.write_batch(answer)
        proto.write({}, [sink.getvalue().to_pybytes()])


class CallError(Exception):
    pass


def call(pa, fn, header, batch, schema):
    """Calls fn row by row: each row's exception is that row's error. The
    arguments are positional, in the order of the parameters (the columns'
    order): keywords cost a dict per row, 7 times the call itself."""
    names = header["outputs"]
    resolver = (header["function"], header["file"])
    n = batch.num_rows
    cols = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
    outs = [[None] * n for _ in names]
    errs = [None] * n
    single = outs[0] if len(names) == 1 else None
    features = _FEATURE_CLASSES
    for i, args in enumerate(zip(*cols) if cols else [()] * n):
        try:
            ret = fn(*args)
        except BaseException as e:
            errs[i] = _describe(e, resolver)
            continue
        if type(ret) in features:
            attrs = vars(ret)
            for j, name in enumerate(names):
                outs[j][i] = attrs.get(name)
        elif single is not None:
            single[i] = ret
        elif isinstance(ret, dict):
            for j, name in enumerate(names):
                outs[j][i] = ret.get(name)
        elif isinstance(ret, (tuple, list)) and len(ret) == len(names):
            for j in range(len(names)):
                outs[j][i] = ret[j]
        else:
            errs[i] = "returned %s; %d features are expected (%s)" % (_short(ret), len(names), ", ".join(names))
    arrays = []
    for j, field in enumerate(schema):
        arrays.append(_column(pa, outs[j], field, errs))
    arrays.append(pa.array(errs, type=pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=[f.name for f in schema] + ["__error__"])


def _column(pa, values, field, errs):
    try:
        return pa.array(values, type=field.type)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    # Some row returned a value the feature's type cannot hold: that row's error.
    for i, v in enumerate(values):
        if v is None:
            continue
        try:
            pa.array([v], type=field.type)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            values[i] = None
            if errs[i] is None:
                errs[i] = "returned %s for %s, which is a %s" % (_short(v), field.name, field.type)
    return pa.array(values, type=field.type)


def _short(v):
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


if __name__ == "__main__":
    main()
